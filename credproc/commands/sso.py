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
    base = f"{account_name or account_id}-{role_name}".lower()
    return re.sub(r"[^a-z0-9_.-]+", "-", base).strip("-.")[:64] or account_id


def _blocks(client, token, idp_name):
    """The [role.*] block of every account and role the token reaches (a 401 anywhere: TokenRejected)."""
    blocks, used = [], set()
    for account_id, name in client.accounts(token):
        for role_name in client.roles(token, account_id):
            role = block_name(name, account_id, role_name)
            if role in used:  # account names are not unique in an organisation: a table twice is invalid TOML
                role = block_name(f"{name}-{account_id}" if name else None, account_id, role_name)
            used.add(role)
            blocks.append(f"# {name or 'account'} ({account_id})\n[role.{role}]\n"
                          f"idp = \"{idp_name}\"\naccount_id = \"{account_id}\"\nrole_name = \"{role_name}\"\n")
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
