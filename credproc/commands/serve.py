"""credproc serve: a role's credentials over the container credentials protocol, on loopback, for
long-running programs (IDEs, notebooks, test runners) that should never see expired keys."""

import signal
import sys
import threading

from .. import app
from ..core.errors import Interrupted

HELP = "serve a role's credentials to SDKs over the container credentials protocol (127.0.0.1 only)"
DESCRIPTION = """\
Answer the AWS SDKs' container credentials requests (the protocol of ECS and EKS Pod Identity) on
127.0.0.1 with the role's credentials, refreshed as needed on every request: long-running programs
never hold expired keys. A refresh that needs an MFA code or password prompts on this terminal
(run `credproc login` first to make that rare: SDKs give up on the endpoint after a few seconds).

It prints `export` lines on stdout: the endpoint and its token, plus AWS_REGION and
AWS_DEFAULT_REGION when the role or [settings] has a region. Set them in the environment of the
programs that should use the role, where AWS_PROFILE and AWS_ACCESS_KEY_ID must be unset (SDKs
prefer those). Each request must carry the printed token, which is new on every start. Runs until
Ctrl-C (exit 130) or SIGTERM (exit 0)."""
EXAMPLES = """\
  credproc serve --role admin                  # then, in another shell, paste the export lines it prints
  credproc serve --role admin --port 9911      # a fixed port (the token is new on every start)
  python -c 'import boto3; print(boto3.client("sts").get_caller_identity()["Arn"])'   # in that other shell"""


def add_arguments(parser):
    parser.add_argument("--role", metavar="NAME", required=True, help="the role whose credentials to serve")
    parser.add_argument("--port", metavar="P", type=_port, default=0,
                        help="port on 127.0.0.1 to listen on (default: a random free port)")


def _port(text):
    import argparse

    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def run(args):
    from ..core.prompt import terminal_modes_restored
    from ..core.server import CredentialServer, default_profile_warning

    cfg = app.load_config(args)
    role = cfg.role(args.role)
    region = cfg.region_for(role) if (role.get("region") or cfg.settings.get("region")) else None
    app.role_credentials(args, cfg=cfg)  # authenticate first: prompts and config errors come now, not on a request
    server = CredentialServer(request_fetcher(args, args.role), port=args.port)
    warning = default_profile_warning()
    if warning:
        sys.stderr.write(f"credproc: warning: {warning}\n")
    stop = threading.Event()
    stopped_by = []

    def on_signal(sig, _frame):
        stopped_by.append(sig)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    with terminal_modes_restored():
        try:
            server.start()
            env = server.env()
            if region:  # without it boto3 and the AWS CLI stop at NoRegionError (boto3 reads AWS_DEFAULT_REGION)
                env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
            # the log line first: once the export lines are out a client may call, and its request's
            # log line must come after this one
            sys.stderr.write(f"credproc: serving role {args.role} on {server.url}; Ctrl-C to stop\n")
            sys.stderr.flush()
            sys.stdout.write("".join(f"export {name}={value}\n" for name, value in env.items()))
            sys.stdout.flush()
            while not stop.wait(1.0):
                pass
        finally:
            server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    # Ctrl-C is an interruption (130, as documented); SIGTERM is the ordinary way to stop a service.
    return Interrupted.exit_code if stopped_by[:1] == [signal.SIGINT] else 0


def request_fetcher(args, role):
    """fetch() for the server: each request gets a fresh Context (fresh lock deadline, config read
    again, its own terminal), so refreshes and prompts happen as for any other credproc run."""

    def fetch():
        return app.role_credentials(args, role)

    return fetch
