"""credproc doctor: check the setup end to end and say how to fix what is wrong.

Every check prints one line, "✓ what" or "✗ what: problem — fix" ("!" for a warning, which does
not fail the run). Network checks have 5-second timeouts and run in parallel. Nothing here prints
a secret or changes a file (the writability probe creates and removes one empty temp file).
"""

import os
import shlex
import stat
import sys
from concurrent.futures import ThreadPoolExecutor

from .. import app
from .. import sources as idp_registry
from ..core import paths
from ..core.diagnose import TIMEOUT, Check, fail, ok, warn  # noqa: F401 (Check: the type doctor's checks are)
from ..core.errors import ChecksFailed, ConfigError, CredprocError, LocalFileError
from ..core.text import clean

HELP = "check the configuration, files, terminal, endpoints and AWS profiles"
DESCRIPTION = """\
Checks, each printed as "✓ what" or "✗ what: problem — fix" ("ok"/"FAIL" when the output cannot
show those characters; "!" marks a warning, which does not fail the run):
  - the configuration parses and every role's provider chain resolves; where each iam idp's keys
    live and that they can be read there (plain-text keys are a warning naming the command that
    moves them to the OS keyring); with cache_key = "keyring", that the keyring unwraps the cache key
  - the cache key is mode 0600 and yours; the cache and data directories are 0700, yours and
    writable (or, before the first login, can be created)
  - no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment (SDKs use those instead of
    any profile's credential_process)
  - a terminal is available for prompts (a warning when not: run `credproc login` in one)
  - each identity provider answers (CAS: its URL; OpenID Connect: its discovery document) and each
    STS endpoint in use answers (any HTTP answer counts; 5-second timeouts)
  - every ~/.aws/config profile whose credential_process runs credproc names an absolute, existing
    path (no unquoted spaces, no '#' or ';') and a --role that exists
Exit code 0 when every check passes, 12 when one fails."""
EXAMPLES = """\
  credproc doctor
  credproc doctor --config ~/work/credproc.toml"""

def add_arguments(parser):
    pass


def _symbols(stream):
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "✓✗—".encode(encoding)
        return {"ok": "✓", "fail": "✗", "warn": "!"}, "—"
    except (UnicodeEncodeError, LookupError):
        return {"ok": "ok", "fail": "FAIL", "warn": "WARN"}, "-"


def format_check(check, symbols, dash):
    line = f"{symbols[check.status]} {check.what}"
    if check.problem:
        problem = str(check.problem).replace("\n", "\n    ")
        line += f": {problem}"
        if check.fix:
            line += f" {dash} {check.fix}"
    return line


def run(args):
    symbols, dash = _symbols(sys.stdout)
    checks = []

    def emit(check):
        checks.append(check)
        print(clean(format_check(check, symbols, dash)), flush=True)

    cfg = None
    config_path = paths.config_file(getattr(args, "config", None))
    try:
        cfg = app.load_config(args)
        emit(ok(f"configuration {config_path} parses"))
    except (ConfigError, LocalFileError) as e:
        emit(fail(f"configuration {config_path}", _without_path(e.message, config_path),
                  e.hint or "fix the keys listed (see the README's configuration reference)"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        pending = [pool.submit(fn, *a) for fn, *a in network_checks(cfg)] if cfg is not None else []
        if cfg is not None:
            for check in config_checks(cfg):
                emit(check)
        for check in file_checks():
            emit(check)
        emit(terminal_check())
        emit(environment_check())
        for future in pending:
            emit(future.result())
    for check in aws_profile_checks(cfg, config_path):
        emit(check)
    summary = summarize(checks)
    if any(c.status == "fail" for c in checks):
        raise ChecksFailed(summary)
    print(summary)
    return 0


def summarize(checks):
    """One line whose numbers add up to the lines printed: "13 checks: 1 warning, 12 passed"."""
    counts = [(sum(c.status == s for c in checks), s) for s in ("fail", "warn", "ok")]
    words = {"fail": ("failed", "failed"), "warn": ("warning", "warnings"), "ok": ("passed", "passed")}
    parts = [f"{n} {words[s][n != 1]}" for n, s in counts if n]
    return f"{len(checks)} check{'s' if len(checks) != 1 else ''}: {', '.join(parts)}"


def _without_path(message, path):
    """A ConfigError message without the path the check's label already names."""
    if message.startswith(f"{path}: "):
        return message[len(path) + 2:]
    return message.replace(f" at {path}", "")


# -- the configuration ----------------------------------------------------------------------------
def config_checks(cfg):
    from ..chain import build
    from ..context import Context
    from ..core.prompt import Terminal

    if not cfg.roles:
        yield fail("roles", f"{cfg.path} configures none", "add a [role.NAME] table")
    ctx = Context(cfg, app.store(cfg), Terminal("credproc login --role NAME", interactive=False))
    for name in cfg.roles:
        try:
            build(ctx, name)  # no network: the factory only composes providers
            yield ok(f"role {name} resolves")
        except CredprocError as e:
            yield fail(f"role {name}", e.message, e.hint)
        except Exception as e:  # noqa: BLE001 - a check reports, it does not crash
            yield fail(f"role {name}", f"does not resolve ({type(e).__name__})", "run credproc --role "
                       f"{name} --debug")
    for idp in cfg.idps.values():
        yield from idp_registry.source_for(idp).doctor_checks(cfg, idp)
        yield from command_checks(idp)
    yield from region_checks(cfg)
    if cfg.settings.get("cache_key") == "keyring":
        from ..core import keywrap

        yield Check(*keywrap.doctor_check(cfg))


def region_checks(cfg):
    """A region the config names that botocore's endpoint data does not know is most likely a typo
    (eu-wset-1), which would surface only as 'cannot reach STS at https://sts.eu-wset-1...'. A warning:
    a region newer than this botocore is possible."""
    try:
        import botocore.session

        session = botocore.session.get_session()
        known = set()
        for partition in session.get_available_partitions():
            known |= set(session.get_available_regions("sts", partition))
    except Exception:  # noqa: BLE001 - no data: nothing to check against
        return
    named = {}
    for where, region in ([("settings.region", cfg.settings.get("region"))]
                          + [(f"role.{n}.region", r.get("region")) for n, r in cfg.roles.items()]
                          + [(f"idp.{n}.region", i.get("region")) for n, i in cfg.idps.items()]):
        if isinstance(region, str) and region and known and region not in known:
            named.setdefault(region, where)
    for region, where in sorted(named.items()):
        import difflib

        close = difflib.get_close_matches(region, sorted(known), n=1, cutoff=0.7)
        yield warn(f"{where} = {region}", "is not a region this botocore knows",
                   f"did you mean {close[0]}?" if close else "check the spelling (e.g. eu-west-1)")


def command_checks(idp):
    """Every *_command key of an idp (mfa_command, password_command, keys_command, ...) names a
    program that exists: otherwise the first refresh fails, at the worst moment."""
    import shutil

    for key, value in sorted(idp.items()):
        if not key.endswith("_command") or not isinstance(value, str) or not value.strip():
            continue
        where = f"idp.{idp['name']}.{key}"
        try:
            program = shlex.split(value)[0]
        except (ValueError, IndexError):
            yield fail(where, "cannot be split into a program and its arguments", "check the quotes")
            continue
        found = (os.path.isfile(program) and os.access(program, os.X_OK)) if os.sep in program else shutil.which(program)
        if found:
            yield ok(f"{where}: {program} is installed")
        else:
            yield fail(where, f"its program {program!r} is not found or not executable"
                              f"{'' if os.sep in program else ' on PATH'}", f"install {program}, or fix {key}")


# -- files and permissions ------------------------------------------------------------------------------
def _private(path, want, kind):
    """A check that `path` (if it exists) has no group/other bits beyond `want` and is ours."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ok(f"{kind} {path}: not created yet (the first login creates it)")
    except OSError as e:
        return fail(f"{kind} {path}", f"cannot inspect it: {e.strerror}")
    if os.name != "posix":
        return ok(f"{kind} {path} exists")
    mode = stat.S_IMODE(st.st_mode)
    chmod = f"chmod {want:o} '{path}'"
    if stat.S_ISLNK(st.st_mode):
        return fail(f"{kind} {path}", "is a symbolic link", f"replace it with a real {'directory' if want == 0o700 else 'file'}")
    if st.st_uid != os.getuid():
        return fail(f"{kind} {path}", f"is owned by uid {st.st_uid}, not by you (uid {os.getuid()})",
                    "remove it and let credproc create it again (a new key means a new cache)"
                    if want == 0o600 else "remove it (as its owner) and let credproc create it again")
    if mode & 0o077:
        return fail(f"{kind} {path}", f"has mode {mode:04o}: others can read or change it", chmod)
    return ok(f"{kind} {path}: mode {mode:04o}, yours")


def file_checks():
    key = _private(paths.key_file(), 0o600, "cache key")
    if key.status == "ok" and os.path.exists(paths.key_file()):
        try:
            with open(paths.key_file(), "rb") as f:
                f.read(1)
        except OSError as e:
            key = fail(f"cache key {paths.key_file()}", f"cannot be read: {e.strerror}",
                       f"chmod 600 '{paths.key_file()}'")
    yield key
    for path, kind in ((paths.cache_dir(), "cache directory"), (os.path.dirname(paths.key_file()), "data directory")):
        check = _private(path, 0o700, kind)
        if check.status == "ok":
            check = _writable(path, kind) or check
        yield check


def _writable(path, kind):
    """None when credproc can write in `path` (or, if it does not exist yet, create it), else the
    failed check. A real create-and-remove, not os.access: that trusts mode bits where a read-only
    mount, ACLs or a network file system decide."""
    target = path
    while not os.path.lexists(target):  # not created yet: the first existing ancestor must take it
        parent = os.path.dirname(target)
        if parent == target:
            return None
        target = parent
    if not os.path.isdir(target):
        return fail(f"{kind} {path}", f"{target} is not a directory")
    probe = os.path.join(target, f".tmp-doctor-{os.getpid()}-{os.urandom(4).hex()}")  # store sweeps .tmp-*
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as e:
        where = "it" if target == path else f"{target}, where it would be created,"
        return fail(f"{kind} {path}", f"credproc cannot write in {where}: {e.strerror}",
                    "make it writable (not on a read-only file system), or point $XDG_CACHE_HOME / "
                    "$XDG_DATA_HOME at a writable place")
    os.close(fd)
    os.unlink(probe)
    return None


def environment_check():
    present = [v for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if os.environ.get(v)]
    if not present:
        return ok("no AWS keys in the environment")
    extra = " AWS_SESSION_TOKEN" if os.environ.get("AWS_SESSION_TOKEN") else ""
    return fail("AWS keys in the environment", f"{' and '.join(present)} {'is' if len(present) == 1 else 'are'} set: "
                "the SDKs and the AWS CLI use them instead of any profile's credential_process (unless a profile is "
                "chosen with --profile)", f"unset {' '.join(present)}{extra}")


def terminal_check():
    from ..core.prompt import open_tty

    fds = open_tty()
    if fds is not None:
        for fd in set(fds):
            os.close(fd)
        return ok("a terminal is available for prompts")
    why = "CREDPROC_NO_PROMPT is set" if os.environ.get("CREDPROC_NO_PROMPT") else "this process has no controlling terminal"
    return warn("no terminal for prompts", f"{why}, so a password, MFA code or sign-in cannot be asked for here",
                "fine under an IDE or CI if you run `credproc login --role NAME` in a terminal first")


# -- the network -----------------------------------------------------------------------------------------
def _reachable(label, what, url, ca_bundle=None):
    """label: who this is ("idp corp"); what: the thing at url, for messages."""
    from ..core import http

    try:
        resp = http.request("GET", url, timeout=TIMEOUT, ca_bundle=ca_bundle, what=what)
    except CredprocError as e:
        return fail(label, e.message, e.hint or "check the URL, the network and any proxy")
    except Exception as e:  # noqa: BLE001
        return fail(label, f"cannot reach {what} at {url} ({type(e).__name__})", "check the URL, the network and any proxy")
    return ok(f"{label}: {what} {url} is reachable (HTTP {resp.status})")


def _reachable_sts(label, what, url, ca_bundle=None):
    """A real, harmless STS call (sts.probe), not a GET: a captive portal's page, a proxy's 5xx
    and an endpoint that takes the connection and never answers all fail it."""
    from ..core import sts

    try:
        answered = sts.probe(url, TIMEOUT)
    except CredprocError as e:
        return fail(label, e.message, e.hint or "check the URL, the network and any proxy")
    except Exception as e:  # noqa: BLE001
        return fail(label, f"cannot reach {what} at {url} ({type(e).__name__})", "check the URL, the network and any proxy")
    return ok(f"{label}: {what} {url}: {answered}")


def sts_endpoints(cfg):
    """{url: [who uses it]} for every STS endpoint credproc itself calls."""
    used = {}
    for name, role in cfg.roles.items():
        idp = cfg.idps[cfg.chain_of(name)[-1]["idp"]]
        if not role.get("source_role") and not idp_registry.source_for(idp).role_calls_sts:  # e.g. CAS calls STS itself
            continue
        url = cfg.sts_endpoint_for(role) or f"https://sts.{cfg.region_for(role)}.amazonaws.com"
        used.setdefault(url, []).append(f"role {name}")
    for name, idp in cfg.idps.items():
        for url in idp_registry.source_for(idp).idp_sts_endpoints(cfg, idp):  # e.g. the IAM (MFA) session
            used.setdefault(url, []).append(f"idp {name}")
    return used


def network_checks(cfg):
    """(function, args...) tuples, run in parallel."""
    for name, idp in cfg.idps.items():
        for what, url, ca_bundle in idp_registry.source_for(idp).doctor_probes(idp):
            yield _reachable, f"idp {name}", what, url, ca_bundle
        yield from idp_registry.source_for(idp).doctor_network_checks(cfg, idp)
    for url, users in sts_endpoints(cfg).items():
        yield _reachable_sts, f"STS for {', '.join(users)}", "the STS endpoint", url


# -- ~/.aws/config -------------------------------------------------------------------------------------
def _credentials_file_profiles():
    import configparser

    path = os.path.expanduser(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials")
    from ..core.awsfiles import read_bytes

    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string((read_bytes(path) or b"").decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError, OSError):
        return path, {}
    return path, {s: dict(parser.items(s)) for s in parser.sections()}


def aws_profile_checks(cfg, config_path):
    from ..core.awsfiles import config_path as aws_config_path
    from ..core.awsfiles import parse_profiles

    path = aws_config_path()
    from ..core.awsfiles import read_bytes

    try:
        data = read_bytes(path)
    except OSError as e:
        yield fail(f"AWS config {path}", f"cannot be read: {e.strerror or e}", "it must be a regular file of at most 1 MiB")
        return
    if data is None:
        yield warn(f"AWS config {path}", "does not exist, so no AWS profile runs credproc", "run: credproc setup")
        return
    text = data.decode("utf-8", errors="replace")
    profiles = {p: v for p, v in parse_profiles(text).items() if "credproc" in v.get("credential_process", "")}
    if not profiles:
        yield warn(f"AWS config {path}", "no profile runs credproc", "run: credproc setup")
        return
    creds_path, creds_profiles = _credentials_file_profiles()
    configs = {os.path.abspath(config_path): cfg}
    for profile, values in profiles.items():
        problems, fixes = _profile_problems(values["credential_process"], configs)
        keys = creds_profiles.get(profile, {})
        if keys.get("aws_access_key_id"):
            problems.append(f"{creds_path} has static keys for [{profile}], which the SDKs use instead")
            fixes.append(f"remove them from [{profile}] in {creds_path}")
        what = f"profile {profile} in {path}"
        if problems:
            yield fail(what, "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
        else:
            yield ok(f"{what} runs credproc correctly")


def _profile_problems(value, configs):
    problems, fixes = [], []
    setup_fix = "rewrite it with: credproc setup --role ROLE (after removing the old stanza)"
    comment = _trailing_comment(value)
    if comment:
        problems.append(f"the line ends with a comment ({comment!r}): botocore passes it to credproc as arguments, "
                        "and the Go SDK cuts the line there")
        fixes.append("move the comment to a line of its own, above the credential_process line")
    elif "#" in value or ";" in value:
        problems.append("the credential_process line contains '#' or ';' (the Go SDK cuts the line there)")
        fixes.append("install credproc under a path without them, then " + setup_fix)
    if "\n" in value:
        problems.append("credential_process spans several lines")
        fixes.append(setup_fix)
    try:
        argv = shlex.split(value)
    except ValueError as e:
        return problems + [f"credential_process cannot be parsed ({e})"], fixes + [setup_fix]
    if not argv:
        return problems + ["credential_process is empty"], fixes + [setup_fix]
    exe = argv[0]
    if not os.path.isabs(exe):
        problems.append(f"{exe!r} is not an absolute path (botocore runs it without a shell: no ~ or $HOME)")
        fixes.append(setup_fix)
    elif not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        unquoted = value.split(" --", 1)[0].strip()
        if unquoted != exe and os.path.isfile(unquoted):
            problems.append(f"the path {unquoted!r} has spaces and is not quoted")
            fixes.append("quote it with single quotes, or " + setup_fix)
        else:
            problems.append(f"{exe} does not exist or is not executable")
            fixes.append(setup_fix)
    role, config = _option(argv, "--role"), _option(argv, "--config")
    if config and not os.path.isabs(config):
        problems.append(f"--config {config} is not an absolute path (the SDKs start credproc in whatever directory "
                        "the program runs in, with no shell to expand ~)")
        fixes.append(setup_fix)
    if role is None:
        problems.append("it names no --role")
        fixes.append(setup_fix)
        return problems, fixes
    cpath = os.path.abspath(os.path.expanduser(config) if config else paths.config_file(None))
    if cpath not in configs:
        try:
            from .. import config as config_mod

            configs[cpath] = config_mod.load(cpath)
        except ConfigError:
            configs[cpath] = None
    cfg = configs[cpath]
    if cfg is None:
        problems.append(f"its configuration {cpath} does not load")
        fixes.append(f"run: credproc doctor --config {shlex.quote(cpath)}")
    elif role not in cfg.roles:
        problems.append(f"--role {role}: no such role in {cpath} (configured: {', '.join(cfg.roles) or 'none'})")
        fixes.append(f"add [role.{role}] or correct the profile")
    return problems, fixes


def _trailing_comment(value):
    """The ' # ...' or ' ; ...' at the end of a credential_process line (as the README warns), or None."""
    for marker in (" #", "\t#", " ;", "\t;"):
        i = value.find(marker)
        if i > 0:
            return value[i:].strip()
    return None


def _option(argv, name):
    for i, arg in enumerate(argv[1:], 1):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None
