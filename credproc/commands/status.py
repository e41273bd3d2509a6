"""credproc status: what is cached for each role and identity session, read-only.

Reads the cache without taking a lock, refreshing or prompting, and shows no secret (not even an
access key id): states, times left and account ids only.
"""

import json
import time

from .. import app
from .. import sources as idp_registry
from ..core.text import format_left
from ..sources.base import entry_state as _state  # shared with the identity sources
from ..sources.base import entry_times as _times

HELP = "show what is cached for each role and sign-in (read-only, no secrets)"
DESCRIPTION = """\
Show every configured role and identity session with the state of its cached entry. Never
refreshes, never prompts, never takes a lock, never prints a secret; needs no terminal.

States:
  valid        served from the cache
  refresh due  past its refresh time: the next use refreshes it (or serves it while it can)
  expired      past its expiry, or 15 minutes or less left: never served
  stale        made from other settings (the config changed): never served
  none         nothing cached
  unreadable   a cache file is there but cannot be used (damaged, or made under another key): the next
               use replaces it

--json prints one object (a stable structure for scripts):
  {"roles": [{"role": NAME, "idp": ROOT_IDP, "idp_type": TYPE (the idp's type),
              "source_role": NAME|null, "state": STATE, "expires_at": "YYYY-mm-ddTHH:MM:SSZ"|null,
              "seconds_left": INT|null, "account": "123456789012"|null, "role_choice": ARN|null}],
   "sessions": [{"identity": "idp:NAME"|"oidc:NAME"|"saml:NAME", "idp": NAME, "type": TYPE,
                 "kind": "mfa session"|"session"|"oidc sign-in"|"saml assertion", "state": STATE,
                 "expires_at": ...|null, "seconds_left": INT|null,
                 "refresh_token": BOOL (oidc only), "id_token_seconds_left": INT|null (oidc only),
                 "issuer": URL (oidc only), "lifetime_known": BOOL (oidc only: false when the
                 IdP did not say how long its refresh token lasts; expires_at and seconds_left are
                 then null), "flow": "ecp"|"form" and "url": URL (saml only)}]}
Keys may be added later, never renamed or removed."""
EXAMPLES = """\
  credproc status
  credproc status --json
  credproc status --json | jq -r '.roles[] | select(.state != "valid") | .role'"""

def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print a JSON document (structure above) instead of a table")


def run(args):
    cfg = app.load_config(args)
    report = collect(cfg, app.store(cfg), int(time.time()))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from ..core.text import clean

        print(clean(render(report), limit=None))
    return 0


# -- collecting --------------------------------------------------------------------------------
def _account(entry, role):
    from ..core.credentials import account_from_arn

    if entry is not None:
        try:
            account = json.loads(entry.body).get("AccountId")
            if isinstance(account, str) and account.isdigit():
                return account
        except (ValueError, AttributeError):
            pass
    # a role that names its account (an IAM Identity Center role's account_id) before any call
    named = role.get("account_id")
    return account_from_arn(role.get("arn")) or (named if isinstance(named, str) and named.isdigit() else None)


def _role_choice(store, name):
    entry = store.get(f"role-choice:{name}")
    if entry is None or entry.expires_at <= time.time():
        return None
    return entry.body.decode(errors="replace")


def collect(cfg, store, now):
    """The status report as plain data (what --json prints)."""
    from ..sources.base import role_identity  # not ..chain: that imports the STS client

    roles = []
    for name, role in cfg.roles.items():
        root = cfg.chain_of(name)[-1]
        idp = cfg.idps[root["idp"]]
        entry = store.get(role_identity(name))
        floor = None if role.get("source_role") else idp_registry.source_for(idp).min_remaining(role)
        state = _state(entry, cfg.fingerprint(name), now, floor,
                       present=entry is None and store.present(role_identity(name)))
        expires_at, left = _times(entry, now)
        choice = _role_choice(store, root["name"]) if not role.get("source_role") else None
        account = _account(entry if state != "stale" else None, role)
        if account is None and choice:
            from ..core.credentials import account_from_arn

            account = account_from_arn(choice)
        roles.append({"role": name, "idp": idp["name"], "idp_type": idp["type"], "source_role": role.get("source_role"),
                      "state": state, "expires_at": expires_at, "seconds_left": left, "account": account,
                      "role_choice": choice})
    sessions = []
    for idp in cfg.idps.values():
        sessions.extend(idp_registry.source_for(idp).sessions(cfg, store, idp, now))
    return {"roles": roles, "sessions": sessions}


# -- rendering ---------------------------------------------------------------------------------
def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for r in [header] + rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def render(report):
    out = []
    if report["roles"]:
        rows = [[r["role"], f"via {r['source_role']}" if r["source_role"] else r["idp"], r["state"],
                 format_left(r["seconds_left"]) if r["state"] not in ("none", "unreadable") else "-", r["account"] or "-"]
                for r in report["roles"]]
        out.append(_table(["ROLE", "IDP", "CACHED", "LEFT", "ACCOUNT"], rows))
    else:
        out.append("no roles configured")
    if report["sessions"]:
        rows = []
        for s in report["sessions"]:
            what, detail = idp_registry.get(s["type"]).session_columns(s)
            unknown = not s.get("lifetime_known", True) and s["state"] == "valid"
            rows.append([s["identity"], what, s["state"], "unknown" if unknown else format_left(s["seconds_left"]), detail])
        out.append("")
        out.append(_table(["SESSION", "WHAT", "STATE", "LEFT", "DETAIL"], rows))
    return "\n".join(out)
