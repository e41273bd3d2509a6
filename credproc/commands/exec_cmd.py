"""credproc exec: run a command with a role's credentials in its environment, or (--server) with a
loopback container-credentials endpoint that keeps them fresh for as long as the command runs."""

import argparse
import os
import shutil
import signal
import subprocess
import sys

from .. import app
from ..core.errors import CommandNotRun, UsageError

HELP = "run a command with a role's credentials in its environment"
DESCRIPTION = """\
Run COMMAND with the role's credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION, plus AWS_REGION and AWS_DEFAULT_REGION when the
role or [settings] sets a region. Variables that would make an SDK pick other credentials are
removed: AWS_PROFILE, AWS_DEFAULT_PROFILE, AWS_SECURITY_TOKEN, AWS_CONTAINER_*,
AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME. credproc replaces itself with
COMMAND, so COMMAND's exit status and signals are its own. A COMMAND that is not found exits 127.
Without COMMAND, your $SHELL (else /bin/sh) is started, as aws-vault does. COMMAND also gets
CREDPROC_ROLE (the role's name, for shell prompts); an exec inside it is refused (exit 2): the
inner one would drop the outer credentials without a word.

The keys stop working when they expire (after the role's duration at most). For commands that run
longer, --server gives COMMAND a container-credentials endpoint on 127.0.0.1 instead of keys, from
which SDKs fetch fresh credentials as needed. credproc then stays COMMAND's parent: it forwards
SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 (and SIGINT and SIGQUIT, unless typed at the terminal, which
already sent them to COMMAND), and exits with COMMAND's status, or 128+N if signal N ended it."""
EXAMPLES = """\
  credproc exec --role admin -- aws sts get-caller-identity
  credproc exec admin                                         # a shell with the credentials; exit to leave
  credproc exec --role admin -- terraform plan
  credproc exec --role admin --server -- terraform apply     # long runs: credentials refreshed as needed
  credproc exec --role admin -- sh -c 'echo "$AWS_ACCESS_KEY_ID"'"""

# Variables that make an SDK choose other credentials than the ones given here (environment keys win
# over these in some SDKs and lose in others), or that would stop the command from running credproc.
REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
           "AWS_ROLE_SESSION_NAME", "CREDPROC_ACTIVE")
KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION")
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
# Typed at the terminal (Ctrl-C, Ctrl-\), these reach the whole foreground process group, the
# command included: forwarding them again makes e.g. Terraform see "two interrupts" and abort.
TERMINAL_SIGNALS = ("SIGINT", "SIGQUIT")


def add_arguments(parser):
    parser.add_argument("--role", metavar="NAME", required=True, help="the role whose credentials COMMAND gets")
    parser.add_argument("--server", action="store_true",
                        help="give COMMAND a loopback container-credentials endpoint (refreshed credentials) "
                             "instead of keys in its environment")
    # dest is not "command": the top-level parser keeps the subcommand's name there
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]",
                        help="the command to run, after --")


def run(args):
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    active = os.environ.get("CREDPROC_ROLE")
    if active:
        raise UsageError(f"already inside `credproc exec` for role {active} (CREDPROC_ROLE is set); nested exec "
                         "is refused", hint="leave that shell (exit) first, or unset CREDPROC_ROLE")
    if not argv:
        argv = [os.environ.get("SHELL") or "/bin/sh"]
    _check_found(argv[0])  # before any prompt
    cfg = app.load_config(args)
    creds = app.role_credentials(args, cfg=cfg)
    role = cfg.role(args.role)
    region = cfg.region_for(role) if (role.get("region") or cfg.settings.get("region")) else None
    env = child_env(os.environ, region=region)
    env["CREDPROC_ROLE"] = role["name"]
    if args.server:
        return _run_with_server(args, argv, env)
    env.update(key_variables(creds))
    sys.stdout.flush()
    sys.stderr.flush()
    # Python ignores SIGPIPE (and SIGXFSZ); an exec'd program would inherit that: `yes | head`
    # would print "Broken pipe" instead of ending quietly.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        raise CommandNotRun(f"command not found: {argv[0]}", 127) from None
    except OSError as e:  # permission denied, not an executable format, ...
        raise CommandNotRun(f"cannot run {argv[0]}: {e.strerror}", 126) from None


def _check_found(name):
    if os.sep in name or (os.altsep and os.altsep in name):
        found = os.path.exists(name)
    else:  # a file on PATH that is there but not executable is left to exec, which says so (126)
        found = shutil.which(name) is not None or any(
            os.path.isfile(os.path.join(d, name)) for d in os.environ.get("PATH", os.defpath).split(os.pathsep) if d)
    if not found:
        raise CommandNotRun(f"command not found: {name}", 127)


def child_env(environ, region=None):
    """The command's environment without anything that selects other credentials."""
    env = {k: v for k, v in environ.items() if k not in REMOVED and k not in KEYS}
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    return env


def key_variables(creds):
    from .export import variables

    return dict(variables(creds))


def _run_with_server(args, argv, env):
    from ..core.prompt import terminal_modes_restored
    from ..core.server import CredentialServer, default_profile_warning
    from .serve import request_fetcher

    warning = default_profile_warning()
    if warning:
        sys.stderr.write(f"credproc: warning: {warning}\n")
    with terminal_modes_restored():
        return _serve_and_wait(args, argv, env, CredentialServer(request_fetcher(args, args.role)).start())


def _serve_and_wait(args, argv, env, server):
    env.update(server.env())
    proc = None
    pending = []

    def forward(signum, frame):
        if proc is None:
            pending.append(signum)
        elif not (signal.Signals(signum).name in TERMINAL_SIGNALS and _terminal_sent_it()):
            _send(proc, signum)

    signums = [getattr(signal, name) for name in FORWARDED if hasattr(signal, name)]
    previous = {s: signal.signal(s, forward) for s in signums}
    try:
        try:
            proc = subprocess.Popen(argv, env=env)
        except FileNotFoundError:
            raise CommandNotRun(f"command not found: {argv[0]}", 127) from None
        except OSError as e:
            raise CommandNotRun(f"cannot run {argv[0]}: {e.strerror}", 126) from None
        for signum in pending:  # arrived while starting: no terminal delivered these to the command
            _send(proc, signum)
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        server.stop()
    return 128 - code if code < 0 else code


def _send(proc, signum):
    try:
        proc.send_signal(signum)
    except ProcessLookupError:
        pass


def _terminal_sent_it():
    """True when a key typed at our controlling terminal would have signalled the command too: we
    are in the terminal's foreground process group, and so is the command (it is in ours)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)
