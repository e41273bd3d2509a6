"""The command line: parse, run, emit. The only place that turns errors into exit codes.

stdout carries the credential_process document (written once, at the end) or a command's output;
everything else goes to stderr or the terminal.
"""

import argparse
import os
import shlex
import shutil
import sys
import time

from . import __version__, log, paths
from .errors import EXIT_CODES, ConfigError, CredprocError, Interrupted, RecursionDetected, ServiceError

EPILOG = """\
examples:
  credproc --role admin                 print credentials for role 'admin' (for credential_process)
  credproc login --role admin           authenticate ahead of time, in a terminal

~/.aws/config:
  [profile admin]
  credential_process = /absolute/path/to/credproc --role admin

exit codes:
""" + "\n".join(f"  {code:<4}{text}" for code, text in EXIT_CODES)


def _common(parser, suppress):
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", metavar="PATH", default=default,
                        help="configuration file (default: $CREDPROC_CONFIG, else config.toml in the user config dir)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="diagnostics on stderr (never secrets), and tracebacks")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="credproc", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="An AWS credential_process helper: prints credentials for a configured role, from an encrypted "
                    "cache when it can, refreshing them (with a prompt on the terminal only when needed) when it must.")
    _common(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"credproc {__version__}")
    parser.add_argument("--role", metavar="NAME", help="the [role.NAME] to print credential_process JSON for")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    login = sub.add_parser("login", help="authenticate ahead of time (prompts allowed) and cache the credentials",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Run the role's whole chain in a terminal, prompting as needed, and cache the result; "
                                       "prints a one-line summary, never the secrets.",
                           epilog="example:\n  credproc login --role admin\n  credproc login --role admin --force   # ignore cached sessions")
    _common(login, suppress=True)
    login.add_argument("--role", metavar="NAME", required=True, help="the role to log in for")
    login.add_argument("--force", action="store_true", help="ignore cached credentials and sessions; authenticate again")
    return parser


def login_command(args):
    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(argv0) == "credproc":  # the console script: name it as the user can run it
        found = shutil.which("credproc")
        prog = "credproc" if found and os.path.realpath(found) == os.path.realpath(argv0) else argv0
    else:
        prog = f"{sys.executable} -m credproc"
    cmd = f"{prog} login --role {shlex.quote(args.role)}"
    if args.config:
        cmd += f" --config {shlex.quote(os.path.abspath(args.config))}"
    return cmd


def _context(args, interactive, force=False, lock_wait=None):
    from . import config as config_mod
    from .context import LOCK_WAIT, Context
    from .prompt import Terminal
    from .store import EncryptedFileCache

    if os.environ.get("CREDPROC_ACTIVE"):
        raise RecursionDetected(
            "credproc was started by a command credproc itself runs (mfa_command or password_command, or a "
            "credential_process loop); refusing to recurse",
            hint="make that command independent of credproc")
    os.environ["CREDPROC_ACTIVE"] = str(os.getpid())
    cfg = config_mod.load(paths.config_file(args.config))
    store = EncryptedFileCache(paths.cache_dir(), paths.key_file())
    terminal = Terminal(login_command(args), interactive=interactive)
    return Context(cfg, store, terminal, force=force, lock_wait=lock_wait or LOCK_WAIT)


def _credentials(ctx, role):
    from .chain import build
    from .credentials import MIN_REMAINING

    provider = build(ctx, role)
    log.debug("chain for role %s: %s", role, provider.describe())
    creds = provider.retrieve()
    left = creds.remaining(ctx.now())
    if left is not None and left <= MIN_REMAINING:
        raise ServiceError(f"the credentials obtained for role {role!r} expire in {left} s; SDKs reject credentials "
                           "with 15 minutes or less left",
                           hint="raise the role's duration, and check the system clock")
    return creds


def cmd_process(args):
    if not args.role:
        raise ConfigError("which role? pass --role NAME", hint="see credproc --help")
    ctx = _context(args, interactive=True)
    try:
        creds = _credentials(ctx, args.role)
    finally:
        ctx.terminal.close()
    out = sys.stdout.buffer
    out.write(creds.to_process_json())
    out.flush()
    return 0


def cmd_login(args):
    from .context import LOGIN_LOCK_WAIT

    ctx = _context(args, interactive=True, force=args.force, lock_wait=LOGIN_LOCK_WAIT)
    try:
        creds = _credentials(ctx, args.role)
    finally:
        ctx.terminal.close()
    print(summary(args.role, creds, ctx.now()))
    return 0


def summary(role, creds, now):
    account = f" (account {creds.account_id})" if creds.account_id else ""
    if creds.expiration is None:
        return f"role {role}{account}: long-lived credentials"
    left = creds.expiration - now
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(creds.expiration))
    return f"role {role}{account}: credentials valid until {until} ({left // 3600} h {left % 3600 // 60} min left)"


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        log.enabled = True
        os.environ["CREDPROC_DEBUG"] = "1"
    try:
        if args.command == "login":
            return cmd_login(args)
        if args.command is None and not args.role:
            parser.print_usage(sys.stderr)
            sys.stderr.write("credproc: error: pass --role NAME (or a command; see credproc --help)\n")
            return 2
        return cmd_process(args)
    except CredprocError as e:
        sys.stderr.write(f"credproc: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("credproc: interrupted\n")
        return Interrupted.exit_code
    except Exception as e:  # a bug: say so without dumping internals (which could hold secrets)
        if args.debug:
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"credproc: unexpected error ({type(e).__name__}); run again with --debug and report it\n")
        return 1
