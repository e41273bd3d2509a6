"""credproc sso roles --idp NAME: every account and role an IAM Identity Center sign-in reaches, each
with the [role.*] block to paste into the config. credproc sso sync --idp NAME: the same written into
the config (and the profiles into ~/.aws/config) as generated roles, marked so that the next sync
adds the new ones and prunes those no longer granted, leaving hand-written roles alone."""

import re

from .. import app
from ..core.errors import ConfigError, UsageError

HELP = "IAM Identity Center: list (sso roles) or write (sso sync) every account and role you can reach"
DESCRIPTION = ("Sign in to the IAM Identity Center [idp.NAME] if needed (or use its cached sign-in), then list every "
               "account and role (permission set) it gives you, from ListAccounts and ListAccountRoles, each with "
               "the [role.*] block to paste into your credproc config.\n\n"
               "sso sync writes them instead: between two marker comments in config.toml (one region per idp; "
               "nothing outside it is changed), named by --template from {account_name}, {account_id} and "
               "{role_name} (made valid role and profile names whatever the portal returns), with a profile each in "
               "~/.aws/config. A later sync adds the roles granted since and removes (prunes) the generated ones no "
               "longer granted, and their profiles; a role you wrote yourself is never touched, and an account and "
               "role it already covers is not generated again. It shows the diff and asks first (--yes: no "
               "question; --dry-run: the diff only). Both files are backed up first.")
EXAMPLES = """\
  credproc sso roles --idp corp-sso
  credproc sso roles --idp corp-sso >> ~/.config/credproc/config.toml   # then rename the roles you keep
  credproc sso sync --idp corp-sso --dry-run
  credproc sso sync --idp corp-sso --template "{account_name}-{role_name}" --yes"""

DEFAULT_TEMPLATE = "{account_name}-{role_name}"


def add_arguments(parser):
    parser.add_argument("action", choices=["roles", "sync"],
                        help="roles: list accounts and roles; sync: write them as generated roles and profiles")
    parser.add_argument("--idp", required=True, metavar="NAME", help="the [idp.NAME] (IAM Identity Center)")
    parser.add_argument("--template", metavar="T", default=DEFAULT_TEMPLATE,
                        help="sync: role and profile names, from {account_name}, {account_id}, {role_name} "
                             f"(default: {DEFAULT_TEMPLATE})".replace("%", "%%"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--dry-run", action="store_true", help="sync: show the diff, write nothing")
    group.add_argument("--yes", action="store_true", help="sync: write without asking")


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
        kind = f"; idp {args.idp} is of type {idp['type']}" if idp is not None else ""
        raise UsageError(f"no IAM Identity Center [idp.{args.idp}] in {cfg.path}{kind} (IAM Identity Center idps "
                         f"configured: {known})")
    if args.action == "sync":
        _check_template(args.template)
    command = f"credproc sso roles --idp {args.idp}"
    terminal = Terminal(command)
    try:
        ctx = Context(cfg, app.store(cfg), terminal)
        session = SsoSession(ctx, idp)
        if args.action == "sync":
            grants = session.with_token(lambda token: [(account_id, name, role_name)
                                                       for account_id, name in session.client.accounts(token)
                                                       for role_name in session.client.roles(token, account_id)])
            from .sso_sync import sync

            return sync(args, cfg, idp, grants, terminal)
        blocks = session.with_token(lambda token: _blocks(session.client, token, args.idp))
    finally:
        terminal.close()
    if not blocks:
        raise ConfigError(f"IAM Identity Center ({idp['start_url']}) gives you no account and role")
    print("\n".join(blocks), end="")
    return 0


def _check_template(template):
    try:
        template.format(account_name="a", account_id="111111111111", role_name="r")
    except (KeyError, IndexError, ValueError) as e:
        raise UsageError(f"--template {template!r} is not usable ({type(e).__name__}: {e})",
                         hint="use {account_name}, {account_id} and {role_name}, e.g. " + DEFAULT_TEMPLATE) from None
