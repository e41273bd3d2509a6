"""credproc serve: a role's credentials over the container credentials protocol, on loopback, for
long-running programs (IDEs, notebooks, test runners) that should never see expired keys."""

import signal
import sys
import threading

from .. import app

HELP = "serve a role's credentials to SDKs over the container credentials protocol (127.0.0.1 only)"
DESCRIPTION = """\
Answer the AWS SDKs' container credentials requests (the protocol of ECS and EKS Pod Identity) on
127.0.0.1 with the role's credentials, refreshed as needed on every request: long-running programs
never hold expired keys. A refresh that needs an MFA code or password prompts on this terminal
(run `credproc login` first to make that rare: SDKs give up on the endpoint after a few seconds).

It prints two `export` lines on stdout: set them in the environment of the programs that should use
the role, where AWS_PROFILE and AWS_ACCESS_KEY_ID must be unset (SDKs prefer those). Each request
must carry the printed token, which is new on every start. Runs until Ctrl-C or SIGTERM."""
EXAMPLES = """\
  credproc serve --role admin                  # then, in another shell, paste the two export lines it prints
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
    from ..prompt import terminal_modes_restored
    from ..server import CredentialServer, default_profile_warning

    app.role_credentials(args)  # authenticate first: prompts and config errors come now, not on a request
    server = CredentialServer(request_fetcher(args, args.role), port=args.port)
    warning = default_profile_warning()
    if warning:
        sys.stderr.write(f"credproc: warning: {warning}\n")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    with terminal_modes_restored():
        try:
            server.start()
            sys.stdout.write("".join(f"export {name}={value}\n" for name, value in server.env().items()))
            sys.stdout.flush()
            sys.stderr.write(f"credproc: serving role {args.role} on {server.url}; Ctrl-C to stop\n")
            sys.stderr.flush()
            while not stop.wait(1.0):
                pass
        finally:
            server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


def request_fetcher(args, role):
    """fetch() for the server: each request gets a fresh Context (fresh lock deadline, config read
    again, its own terminal), so refreshes and prompts happen as for any other credproc run."""

    def fetch():
        return app.role_credentials(args, role)

    return fetch
