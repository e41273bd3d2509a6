"""credproc sso roles --idp NAME: every account and role an IAM Identity Center sign-in reaches, each
with the [role.*] block to paste into the config."""

import re

from .. import app
from ..core.errors import ConfigError, UsageError

HELP = "IAM Identity Center: list every account and role you can reach (sso roles --idp NAME)"
DESCRIPTION = ("Sign in to the IAM Identity Center [idp.NAME] if needed (or use its cached sign-in), then list every "
               "account and role (permission set) it gives you, from ListAccounts and ListAccountRoles, each with "
               "the [role.*] block to paste into your credproc config.")
EXAMPLES = """\
  credproc sso roles --idp corp-sso
  credproc sso roles --idp corp-sso >> ~/.config/credproc/config.toml   # then rename the roles you keep"""


def add_arguments(parser):
    parser.add_argument("action", choices=["roles"], help="what to do (roles: list accounts and roles)")
    parser.add_argument("--idp", required=True, metavar="NAME", help="the [idp.NAME] (IAM Identity Center)")


def block_name(account_name, account_id, role_name):
    """A role name that is a TOML bare key and a valid [role.NAME]: lower-case ASCII letters,
    digits, '-' and '_' (no '.', which TOML reads as a nested table), starting with a letter or
    digit, at most 64 characters."""
    base = f"{account_name or account_id}-{role_name}".lower()
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_-]+", "-", base))
    name = re.sub(r"^[^a-z0-9]+", "", name)[:64].rstrip("-_")
    return name or f"{account_id}-{re.sub(r'[^a-z0-9_-]+', '-', str(role_name).lower())}"[:64].rstrip("-_")


def _unique(name, used):
    if name not in used:
        return name
    for n in range(2, 10000):
        suffix = f"-{n}"
        candidate = name[:64 - len(suffix)].rstrip("-_") + suffix
        if candidate not in used:
            return candidate
    raise ConfigError("too many roles with the same name")


def _toml_string(value):
    """A TOML basic string (JSON escapes backslash, quote and control characters as TOML does)."""
    import json

    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")  # TOML escapes DEL too


def _comment(text):
    """Text from the portal as one comment line: no line breaks or control characters."""
    from ..core.text import clean

    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", clean(str(text)))


def _blocks(client, token, idp_name):
    """The [role.*] block of every account and role the token reaches (a 401 anywhere: TokenRejected).
    Everything from the portal is untrusted text: a name becomes a bare key (block_name), values are
    escaped TOML strings, and the account name in the comment stays on its line."""
    blocks, used = [], set()
    for account_id, name in client.accounts(token):
        for role_name in client.roles(token, account_id):
            role = block_name(name, account_id, role_name)
            if role in used:  # account names are not unique in an organisation: a table twice is invalid TOML
                role = block_name(f"{name}-{account_id}" if name else None, account_id, role_name)
            role = _unique(role, used)
            used.add(role)
            blocks.append(f"# {_comment(name or 'account')} ({_comment(account_id)})\n[role.{role}]\n"
                          f"idp = \"{idp_name}\"\naccount_id = {_toml_string(account_id)}\n"
                          f"role_name = {_toml_string(role_name)}\n")
    return blocks


def run(args):
    from ..context import Context
    from ..core.prompt import Terminal
    from ..sources.sso.protocol import SsoSession

    app.guard_recursion()
    cfg = app.load_config(args)
    from ..sources import source_for
    from ..sources.sso.source import SOURCE

    idp = cfg.idps.get(args.idp)
    if idp is None or source_for(idp) is not SOURCE:
        known = ", ".join(sorted(n for n, i in cfg.idps.items() if source_for(i) is SOURCE)) or "none"
        raise UsageError(f"no IAM Identity Center [idp.{args.idp}] in {cfg.path} (configured: {known})")
    command = f"credproc sso roles --idp {args.idp}"
    terminal = Terminal(command)
    try:
        ctx = Context(cfg, app.store(cfg), terminal)
        session = SsoSession(ctx, idp)
        blocks = session.with_token(lambda token: _blocks(session.client, token, args.idp))
    finally:
        terminal.close()
    if not blocks:
        raise ConfigError(f"IAM Identity Center ({idp['start_url']}) gives you no account and role")
    print("\n".join(blocks), end="")
    return 0
