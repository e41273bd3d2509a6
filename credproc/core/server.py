"""The container credentials endpoint the AWS SDKs speak (what ECS and EKS Pod Identity serve), on
loopback, for `credproc serve` and `credproc exec --server`.

A program finds it through two environment variables:
    AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:PORT/
    AWS_CONTAINER_AUTHORIZATION_TOKEN=TOKEN
and sends `GET <uri>` with the header `Authorization: TOKEN`. The answer (botocore
ContainerProvider, JS fromHttp, Go endpointcreds) is
    {"AccessKeyId": ..., "SecretAccessKey": ..., "Token": ..., "Expiration": "...Z", "AccountId": ...}
SDKs accept plain http only to a loopback address (botocore: any loopback IP, or localhost), so the
server binds 127.0.0.1 and nothing else. Every request runs the role's chain afresh (cache, refresh,
prompts), so a long-running program refreshes its credentials and never holds expired ones.

Hardening: a request whose Host is not 127.0.0.1 or localhost (with or without the port) is refused
(a web page rebinding its own name to 127.0.0.1 cannot reach it); connections are handled by at most
MAX_CONNECTIONS threads (more are closed at once); a reset or broken connection is no traceback,
at most one debug line.
"""

import hmac
import http.server
import ipaddress
import json
import secrets
import socket
import sys
import threading

from . import log as _log
from .errors import CredprocError, LockTimeout, UsageError

HOST = "127.0.0.1"
MAX_CONNECTIONS = 16


def default_profile_warning():
    """The SDKs' default chains try the shared files' [default] profile before the container
    endpoint: if it holds credentials, a program would silently use those instead."""
    from .awsfiles import sections, shared_files

    creds_path, config_path = shared_files()
    for path, section in ((creds_path, "default"), (config_path, "default")):
        try:
            values = sections(path).get(section) or {}
        except CredprocError:
            continue
        found = [k for k in ("aws_access_key_id", "credential_process", "role_arn", "sso_session", "sso_start_url")
                 if k in values]
        if found:
            return (f"the [default] profile in {path} sets {found[0]}: SDKs use it before this endpoint, so programs "
                    "may not get this role's credentials; remove it, or use credproc exec without --server")
    return None


def container_document(creds):
    """The container-credentials JSON for one Credentials value."""
    from .credentials import format_expiration

    if creds.expiration is None:  # every SDK requires Expiration here; long-lived keys have none
        raise CredprocError("the role's credentials are long-lived keys, which the container protocol cannot serve")
    doc = {"AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key,
           "Token": creds.session_token, "Expiration": format_expiration(creds.expiration)}
    if creds.account_id:
        doc["AccountId"] = creds.account_id
    return doc


def log_line(message):
    from .text import clean

    sys.stderr.write(f"credproc: {clean(message)}\n")
    sys.stderr.flush()


class CredentialServer:
    """fetch() -> Credentials is called once per request, never two at a time (so at most one
    prompt is on the terminal); a request that cannot get its turn within `wait` seconds fails."""

    def __init__(self, fetch, port=0, token=None, wait=45.0, log=log_line):
        self.fetch = fetch
        self.token = token or secrets.token_urlsafe(32)
        self.wait = wait
        self.log = log
        self._turn = threading.Lock()
        self._thread = None
        handler = _handler_class(self)
        try:
            self.httpd = _BoundedServer((HOST, port), handler)
        except OSError as e:
            raise UsageError(f"cannot listen on {HOST}:{port}: {e.strerror}",
                              hint="choose another --port, or leave it out for a random free one") from None
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}/"

    def env(self):
        """The variables a program needs to use this server."""
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url, "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.token}

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="credproc-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()

    def authorized(self, headers):
        values = headers.get_all("Authorization") or []
        if len(values) != 1:
            return False
        return hmac.compare_digest(values[0].encode("utf-8", "surrogateescape"), self.token.encode())

    def host_allowed(self, headers):
        """Host must name this server by loopback address or localhost (DNS rebinding)."""
        values = headers.get_all("Host") or []
        if len(values) != 1:
            return False
        host = values[0].strip().lower()
        return host in ("127.0.0.1", "localhost", f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    def answer(self):
        """(status, document) for an authorized request."""
        if not self._turn.acquire(timeout=self.wait):
            e = LockTimeout("another request is still getting credentials (waiting for a prompt?)")
            self.log(f"serve: request failed: {e}")
            return 500, {"Code": "LockTimeout", "Message": str(e)}
        try:
            return 200, container_document(self.fetch())
        except CredprocError as e:
            self.log("serve: request failed: " + "; ".join(l.strip() for l in str(e).splitlines() if l.strip()))
            return 500, {"Code": type(e).__name__, "Message": str(e)}
        except Exception as e:  # a bug: say which, without internals that could hold secrets
            self.log(f"serve: request failed: unexpected error ({type(e).__name__}); run with --debug and report it")
            return 500, {"Code": "InternalError", "Message": f"unexpected error ({type(e).__name__})"}
        finally:
            self._turn.release()


class _BoundedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler):
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):  # all workers busy: close, do not queue a thread
            _log.debug("serve: %d connections already open; closed a new one", MAX_CONNECTIONS)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):  # the default prints a traceback per connection
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, socket.timeout, TimeoutError)):
            _log.debug("serve: a connection ended early (%s)", type(error).__name__)
        else:
            _log.debug("serve: a request failed (%s)", type(error).__name__)


def _handler_class(server):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "credproc"
        sys_version = ""
        timeout = 10  # a client that connects and sends nothing does not hold a worker for long

        def log_message(self, fmt, *args):  # no access log (the default writes every request to stderr)
            pass

        def _send(self, status, doc=None):
            body = b"" if doc is None else json.dumps(doc).encode()
            self.send_response(status)
            if doc is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if not _loopback(self.client_address[0]) or not server.authorized(self.headers):
                self._send(403)
                return
            if not server.host_allowed(self.headers):
                server.log(f"serve: refused a request for host {self.headers.get('Host', '')[:100]!r} (only 127.0.0.1 "
                           "and localhost are served)")
                self._send(403)
                return
            self._send(*server.answer())

    return Handler


def _loopback(address):
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
