"""credproc setup: write the `[profile P]` stanza that makes the AWS SDKs run credproc.

The line every SDK reads: botocore shlex-splits it (no shell), the JavaScript and Go SDKs run it
with `sh -c`, and Go's INI parser cuts a line at the first '#' or ';'. So the path is quoted with
single quotes when it needs quoting (both readings agree on those) and a path with '#' or ';' is
refused. The file is backed up, then replaced atomically with the old bytes plus the new stanza.
"""

import os
import re
import shlex
import shutil
import sys

from .. import app
from ..core import paths
from ..core.awsfiles import config_path as aws_config_path  # noqa: F401 (doctor's too)
from ..core.awsfiles import parse_profiles, read_file, replace_backed_up, section_headers
from ..core.errors import ConfigError, LocalFileError, UsageError

HELP = "add [profile NAME] stanzas for credproc to ~/.aws/config"
DESCRIPTION = """\
Write a [profile P] stanza to ~/.aws/config ($AWS_CONFIG_FILE if set) for a role, or for every
role when --role is omitted:

  [profile admin]
  credential_process = /absolute/path/to/credproc --role admin
  region = eu-west-1            (only if the role or [settings] sets one)
  services = credproc-admin     (only if the role or [settings] sets sts_endpoint_url:)

  [services credproc-admin]     (the same STS endpoint for the program using the profile)
  sts =
    endpoint_url = http://127.0.0.1:5000

--config PATH is added to the command when a configuration file other than the default one is in
use. The file is backed up first (config.bak-YYYYmmddTHHMMSS beside it, mode 0600); everything
else in it is kept byte for byte. A profile that already runs the same command is left alone; a
profile of that name that does something else is an error (exit 3): pick another name with
--profile-name."""
EXAMPLES = """\
  credproc setup --role admin
  credproc setup --role admin --profile-name work-admin
  credproc setup                        # every configured role, each as a profile of the same name
  credproc setup --role admin --print   # show the stanza, write nothing"""

_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+:/-]{0,127}\Z")


def add_arguments(parser):
    parser.add_argument("--role", metavar="NAME", help="the role to set up (default: every configured role)")
    parser.add_argument("--profile-name", metavar="P", help="the AWS profile name (default: the role's name)")
    parser.add_argument("--print", action="store_true", help="print the stanza(s) instead of writing them")


# -- what to write -------------------------------------------------------------------------------
def executable():
    """The absolute path of this credproc console script."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and os.path.basename(argv0) == "credproc" and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    found = shutil.which("credproc")
    if found:
        return os.path.abspath(found)
    raise ConfigError("cannot find the credproc executable to name in credential_process (it is not on PATH)",
                      hint="run setup through the installed `credproc` command (e.g. pipx install credproc)")


def quote(value, what):
    """A word both shlex.split (botocore) and sh -c (JS, Go) read back as `value`."""
    if "#" in value or ";" in value:
        raise ConfigError(f"{what} {value!r} contains '#' or ';': the Go SDK (Terraform) cuts the "
                          "credential_process line there",
                          hint="install credproc (or move the file) under a path without '#' or ';'")
    if "\n" in value or "\r" in value or "\0" in value:
        raise ConfigError(f"{what} {value!r} contains a line break")
    return shlex.quote(value)


def _is_default_config(path):
    """The one credproc finds without --config or $CREDPROC_CONFIG (an SDK's environment may lack those)."""
    return os.path.abspath(path) == os.path.abspath(os.path.join(paths.user_dir("config"), "config.toml"))


def command_for(exe, role, config_path=None):
    cmd = f"{quote(exe, 'the credproc path')} --role {quote(role, 'the role name')}"
    if config_path and not _is_default_config(config_path):
        cmd += f" --config {quote(os.path.abspath(config_path), 'the config path')}"
    return cmd


def header_for(profile):
    return "[default]" if profile == "default" else f"[profile {profile}]"


def services_name(profile):
    return f"credproc-{profile}"


def stanza(profile, command, region=None, sts_endpoint=None):
    """The profile's lines; with an STS endpoint, also a [services] section that gives the program
    using the profile the same one (botocore >= 1.31, AWS CLI v2.13, and the JS and Go SDKs read it)."""
    lines = [header_for(profile), f"credential_process = {command}"]
    if region:
        lines.append(f"region = {region}")
    if sts_endpoint:
        lines += [f"services = {services_name(profile)}", "", f"[services {services_name(profile)}]", "sts =",
                  f"  endpoint_url = {sts_endpoint}"]
    return lines


def run(args):
    cfg = app.load_config(args)
    config_path = paths.config_file(getattr(args, "config", None))
    if args.role:
        names = [cfg.role(args.role)["name"]]
    else:
        names = list(cfg.roles)
        if not names:
            raise ConfigError(f"{cfg.path}: no roles configured", hint="add a [role.NAME] table first")
    if args.profile_name and len(names) > 1:
        sys.stderr.write("credproc setup: error: --profile-name needs --role (it names one profile)\n")
        return 2
    profile_names = {name: args.profile_name or name for name in names}
    for profile in profile_names.values():
        if not _PROFILE_NAME.match(profile):
            raise UsageError(f"{profile!r} is not a usable AWS profile name",
                              hint="use letters, digits and _ . @ + : / - (pick one with --profile-name)")
    exe = executable()
    stanzas = []
    for name in names:
        role = cfg.roles[name]
        region = role.get("region") or cfg.settings.get("region")
        sts_endpoint = cfg.sts_endpoint_for(role)
        if sts_endpoint and ("\n" in sts_endpoint or "\r" in sts_endpoint):
            raise ConfigError(f"sts_endpoint_url {sts_endpoint!r} contains a line break")
        stanzas.append((name, profile_names[name], command_for(exe, name, config_path), region, sts_endpoint))
    if args.print:
        print("\n\n".join("\n".join(stanza(*s[1:])) for s in stanzas))
        return 0
    return _write(stanzas)


def _write(stanzas):
    shown = aws_config_path()
    path = os.path.realpath(shown)  # a symlinked ~/.aws/config (dotfiles): update the file it points to
    try:
        old = read_file(path)
    except OSError as e:
        raise LocalFileError(f"cannot read {shown}: {e.strerror}") from None
    text = (old or b"").decode("utf-8", errors="surrogateescape")
    existing = parse_profiles(text)
    headers = section_headers(text)
    new, conflicts, done = [], [], []
    for role, profile, command, region, sts_endpoint in stanzas:
        have = existing.get(profile)
        if have is None and sts_endpoint and f"services {services_name(profile)}" in headers:
            conflicts.append((role, profile, f"[services {services_name(profile)}] already exists in {shown}"))
        elif have is None:
            new.append((profile, command, region, sts_endpoint))
        elif have.get("credential_process", "").strip() == command:
            done.append(profile)
        else:
            # not quoted back: another tool's command line may carry something private
            what = "runs a different credential_process" if have.get("credential_process") else "holds other settings"
            conflicts.append((role, profile, f"{header_for(profile)} already exists in {shown} and {what}"))
    if conflicts:
        role, profile, _ = conflicts[0]
        raise ConfigError("; ".join(c[2] for c in conflicts) + "; nothing was written",
                          hint=f"choose another profile name: credproc setup --role {role} --profile-name {profile}-credproc")
    for profile in done:
        print(f"{header_for(profile)} is already set up in {shown}")
    if not new:
        return 0
    nl = b"\r\n" if b"\r\n" in (old or b"") else b"\n"
    data = old or b""
    if data and not data.endswith(b"\n"):
        data += nl
    if data and not data.endswith(nl + nl) and data.strip():
        data += nl
    data += nl.join(nl.join(line.encode() for line in stanza(*s)) + nl for s in new)
    try:
        backup = replace_backed_up(path, old, data)
    except OSError as e:
        raise LocalFileError(f"cannot update {shown}: {e.strerror}") from None
    for profile, _, _, sts_endpoint in new:
        extra = f" and [services {services_name(profile)}] (STS at {sts_endpoint})" if sts_endpoint else ""
        print(f"added {header_for(profile)}{extra} to {shown}")
    if backup:
        print(f"backup of the previous file: {backup}")
    print(try_it(new[0][0], new[0][3]))
    return 0


def aws_cli_version():
    """(major, minor) of the `aws` on PATH, or None (none there, or no answer within 5 s)."""
    import subprocess

    exe = shutil.which("aws")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(rb"aws-cli/(\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(m.group(1)), int(m.group(2))) if m else None


def try_it(profile, sts_endpoint):
    """The command that checks the new profile. With a custom STS endpoint the profile's [services]
    section carries it, which AWS CLI v2 reads only from 2.13 on: older ones would ask real AWS."""
    line = f"try it: aws sts get-caller-identity --profile {profile}"
    if not sts_endpoint:
        return line
    version = aws_cli_version()
    if version and version[0] == 2 and version[1] < 13:
        return (f"{line} --endpoint-url {sts_endpoint}   (your AWS CLI {version[0]}.{version[1]} ignores the "
                "profile's [services] section, read from 2.13 on: without --endpoint-url it would ask real AWS)")
    return line
