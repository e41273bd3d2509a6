"""credproc export: a role's credentials in the shapes `aws configure export-credentials` prints,
for a shell to take in, or as a block for ~/.aws/credentials.

STS values are [A-Za-z0-9+/=] and the expiry an ISO timestamp: for those the output is exactly the
AWS CLI's. Anything else (a value no STS would send, but a custom identity provider might) is quoted
so that the shell reads back the very same bytes and runs nothing, or refused where the target
cannot carry it safely (cmd.exe, the INI file).
"""

import json
import re
import shlex
import sys

from .. import app
from ..core.credentials import format_expiration
from ..core.errors import UsageError

HELP = "print a role's credentials as shell variables, JSON, or a ~/.aws/credentials block"
DESCRIPTION = """\
Get the role's credentials (prompting on the terminal if a refresh needs it) and print them on
stdout in the chosen format: the formats of `aws configure export-credentials`, plus `credentials`,
a block for ~/.aws/credentials. The output holds the secret key: it goes to stdout only because you
asked for it.

Variables, in this order: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, then AWS_SESSION_TOKEN and
AWS_CREDENTIAL_EXPIRATION when present, then (as `credproc exec` and `serve` set them, and as
aws-vault and granted users expect) AWS_REGION and AWS_DEFAULT_REGION when the role or [settings]
sets a region; --no-region leaves them out (the AWS CLI's exact output). Values that are not plain base64 are quoted for the shell
at hand; windows-cmd refuses values it cannot carry safely (%, ", !, line breaks, non-ASCII)."""
EXAMPLES = """\
  eval "$(credproc export --role admin --format env)"          # bash, zsh
  credproc export --role admin --format fish | source           # fish
  credproc export --role admin --format powershell | Invoke-Expression
  credproc export --role admin                                  # credential_process JSON, pretty-printed
  credproc export --role admin --format credentials --profile-name admin-static >> ~/.aws/credentials"""

FORMATS = ("process", "env", "env-no-export", "powershell", "windows-cmd", "fish", "credentials")  # not an idp type: the format

# What STS sends (base64 keys and tokens, ISO timestamps): printed bare, exactly as the AWS CLI does.
_PLAIN = re.compile(r"[A-Za-z0-9+/=:._-]*\Z")
# PowerShell ends a single-quoted string at any of these, and reads any of them doubled as one.
_PS_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
# cmd.exe expands %VAR% even inside quotes, ends a line at a newline, lets a " end the quoting (after
# which & | < > run commands), and expands !VAR! under delayed expansion: no quoting carries these.
# Outside printable ASCII, what a value becomes depends on the console code page.
_CMD_UNSAFE = re.compile(r'[%"!]|[^\x20-\x7e]')


def add_arguments(parser):
    parser.add_argument("--role", metavar="NAME", required=True, help="the role whose credentials to print")
    parser.add_argument("--format", choices=FORMATS, default="process", metavar="FORMAT",  # not an idp type
                        help="one of: " + ", ".join(FORMATS) + " (default: process)")
    parser.add_argument("--no-region", action="store_true",
                        help="leave out AWS_REGION and AWS_DEFAULT_REGION (shell formats)")
    parser.add_argument("--profile-name", metavar="P",
                        help="the [P] section name for --format credentials (default: the role name)")


def run(args):
    region = None
    if not args.no_region and args.format not in ("process", "credentials"):  # not an idp type: export formats
        cfg = app.load_config(args)
        role = cfg.role(args.role)
        region = cfg.region_for(role) if (role.get("region") or cfg.settings.get("region")) else None
    creds = app.role_credentials(args)
    # raises before anything is written
    text = render(creds, args.format, args.role if args.profile_name is None else args.profile_name, region)
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def variables(creds, region=None):
    """[(name, value)] in the AWS CLI's order, then the region (exec's two variables) when given."""
    pairs = [("AWS_ACCESS_KEY_ID", creds.access_key_id), ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key)]
    if creds.session_token:
        pairs.append(("AWS_SESSION_TOKEN", creds.session_token))
    if creds.expiration is not None:
        pairs.append(("AWS_CREDENTIAL_EXPIRATION", format_expiration(creds.expiration)))
    if region:
        pairs += [("AWS_REGION", region), ("AWS_DEFAULT_REGION", region)]
    return pairs


def render(creds, fmt, profile_name=None, region=None):
    """The whole output for one format, ending in a newline."""
    if fmt == "process":  # not an idp type: the format
        return json.dumps(creds.to_process_dict(), indent=4) + "\n"
    if fmt == "credentials":
        return _ini_block(creds, profile_name)
    line = _LINES[fmt]
    out = []
    for name, value in variables(creds, region):
        if "\x00" in value:  # no environment variable can hold a NUL, in any shell
            raise UsageError(f"{name} contains a NUL character, which no environment variable can hold")
        out.append(line(name, value))
    return "".join(l + "\n" for l in out)


def _bash(value):
    return shlex.quote(value)  # bare when shell-safe, else '...' with ' as '"'"'


def _fish(value):
    if _PLAIN.match(value):
        return f'"{value}"'
    # Inside fish single quotes only \\ and \' are escapes; $, newlines and the rest are literal.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _powershell(value):
    if _PLAIN.match(value):
        return f'"{value}"'
    # Single quotes: no $ or ` expansion; the only escape is a doubled quote (of any of its 4 kinds).
    return "'" + "".join(c + c if c in _PS_SINGLE_QUOTES else c for c in value) + "'"


def _windows_cmd(name, value):
    if _PLAIN.match(value):
        return f"set {name}={value}"
    bad = _CMD_UNSAFE.search(value)
    if bad:
        raise UsageError(f"{name} contains {bad.group()!r}, which cmd.exe cannot carry safely",
                          hint="use --format powershell (or another format) instead")
    # In `set "NAME=value"` the quotes make & | < > ^ ( ) and spaces literal and are not part of the value.
    return f'set "{name}={value}"'


_LINES = {
    "env": lambda name, value: f"export {name}={_bash(value)}",
    "env-no-export": lambda name, value: f"{name}={_bash(value)}",
    "fish": lambda name, value: f"set -gx {name} {_fish(value)}",
    "powershell": lambda name, value: f"$Env:{name}={_powershell(value)}",
    "windows-cmd": _windows_cmd,
}

_INI_SECTION = re.compile(r"[^\[\]\x00-\x1f\x7f]+\Z")
_INI_VALUE = re.compile(r"[^\x00-\x1f\x7f]*\Z")


def _ini_block(creds, profile_name):
    """A [profile_name] section for ~/.aws/credentials (read by botocore's RawConfigParser: no
    interpolation, no inline comments, values stripped, one line each)."""
    if not profile_name or profile_name != profile_name.strip() or not _INI_SECTION.match(profile_name):
        raise UsageError(f"cannot use {profile_name!r} as a section name in ~/.aws/credentials",
                          hint="pass --profile-name with letters, digits, '-', '_' or '.'")
    pairs = [("aws_access_key_id", creds.access_key_id), ("aws_secret_access_key", creds.secret_access_key)]
    if creds.session_token:
        pairs.append(("aws_session_token", creds.session_token))
    lines = [f"[{profile_name}]"]
    for key, value in pairs:
        if not _INI_VALUE.match(value) or value != value.strip():
            raise UsageError(f"the {key} value has a line break, control character or surrounding space, "
                              "which ~/.aws/credentials cannot hold", hint="use --format env or process instead")
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"
