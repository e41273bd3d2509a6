"""A one-shot HTTP listener on 127.0.0.1 for the answer of a browser sign-in (OAuth's redirect)."""

import errno
import http.server
import secrets
import threading
import urllib.parse

from . import log
from .errors import ConfigError


class Listener:
    """A one-shot HTTP listener on 127.0.0.1 for the authorization response: on a random port, or on
    `port` (a provider that compares redirect URIs exactly). A port someone else holds is an error at
    once, before any browser is opened: whoever holds it would receive the authorization code."""

    PAGE = (b"<!doctype html><meta charset=utf-8><title>credproc</title>"
            b"<body style='font-family:sans-serif;margin:3em'><h2>Signed in.</h2>"
            b"<p>You can close this tab and return to the terminal.</p></body>")

    def __init__(self, path, state, port=0, key="redirect_port"):
        self.path = path
        self.state = state
        self.params = None
        self.done = threading.Event()
        self._start = None  # (path, target) of the one-shot start link, see start_link()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5  # an idle connection (a browser's preconnect) cannot block the real answer

            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urllib.parse.urlsplit(self.path)
                params = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                start = listener._start
                if start is not None and parts.path == start[0]:
                    listener._start = None  # one-shot: whoever opens it first, and only once
                    self.send_response(302)
                    self.send_header("Location", start[1])
                    self.send_header("Content-Length", "0")
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    return
                # only the answer to this login counts: a stray request cannot end or spoil it
                if parts.path != listener.path or params.get("state") != listener.state or listener.done.is_set():
                    self.send_error(404)
                    return
                listener.params = params
                listener.done.set()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(listener.PAGE)))
                    self.end_headers()
                    self.wfile.write(listener.PAGE)
                except OSError:
                    pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # no tracebacks on the user's stderr
                log.debug("loopback listener: a connection failed")

        try:
            self.server = Server(("127.0.0.1", port or 0), Handler)
        except OSError as e:
            if port and e.errno in (errno.EADDRINUSE, errno.EACCES):
                raise ConfigError(f"127.0.0.1:{port} ({key}) is in use by another program, so the browser sign-in "
                                  "cannot receive its answer there; no browser was opened",
                                  hint=f"stop that program, or choose another {key} (and register "
                                       "http://127.0.0.1:PORT/... for it at the provider)") from None
            raise
        self.port = self.server.server_address[1]
        self.thread = None

    def start_link(self, target):
        """A one-shot http://127.0.0.1:PORT/start/<random> that redirects (once) to `target`: what
        the browser is given, so that the target's state and code challenge never appear on a
        command line (a browser is started with its URL in argv, which other local users can read)."""
        path = "/start/" + secrets.token_urlsafe(16)
        self._start = (path, target)
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self):
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.server.timeout = 0.2
        while not self.done.is_set() and not getattr(self, "_stopped", False):
            self.server.handle_request()

    def wait(self, timeout):
        return self.params if self.done.wait(timeout) else None

    def stop(self):
        self._stopped = True
        if self.thread:
            self.thread.join(2)
        self.server.server_close()
