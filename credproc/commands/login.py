"""credproc login: run a role's chain in a terminal ahead of time (prompts allowed)."""

import time

from .. import app

HELP = "authenticate ahead of time (prompts allowed) and cache the credentials"
DESCRIPTION = ("Run the role's whole chain in a terminal, prompting as needed, and cache the result. "
               "Prints a one-line summary, never the secrets.")
EXAMPLES = """\
  credproc login --role admin
  credproc login --role admin --force     # ignore cached credentials and sessions; authenticate again"""


def add_arguments(parser):
    parser.add_argument("--role", metavar="NAME", required=True, help="the role to log in for")
    parser.add_argument("--force", action="store_true", help="ignore cached credentials and sessions; authenticate again")


def run(args):
    from ..context import LOGIN_LOCK_WAIT

    creds = app.role_credentials(args, force=args.force, lock_wait=LOGIN_LOCK_WAIT)
    print(summary(args.role, creds, int(time.time())))
    return 0


def summary(role, creds, now):
    account = f" (account {creds.account_id})" if creds.account_id else ""
    if creds.expiration is None:
        return f"role {role}{account}: long-lived credentials"
    left = creds.expiration - now
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(creds.expiration))
    return f"role {role}{account}: credentials valid until {until} ({left // 3600} h {left % 3600 // 60} min left)"
