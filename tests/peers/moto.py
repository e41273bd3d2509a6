"""moto server on loopback (STS/IAM), started as a real process, plus a counting proxy.

See ../shared/reference/test-peers.md: no-auth mode checks almost nothing; auth mode
(INITIAL_NO_AUTH_ACTION_COUNT) enforces SigV4 and IAM after the first N requests.
"""

from tests.peers.net import LoopbackHTTPServer, forward
import http.server
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request

from .net import free_port, stop_process, wait_http


def _moto_server_cmd():
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if exe:
        return [exe]
    return [sys.executable, "-m", "moto.server"]


class MotoServer:
    def __init__(self, auth_after=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if auth_after is not None:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(auth_after)
        self.proc = subprocess.Popen(
            _moto_server_cmd() + ["-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(self.url + "/moto-api/", proc=self.proc)
        except Exception:
            self.stop()
            raise

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset", method="POST"), timeout=5).close()

    def set_auth(self, value):
        """value: "inf" turns auth off, a number N lets N more requests through unauthenticated."""
        req = urllib.request.Request(
            self.url + "/moto-api/reset-auth", data=str(value).encode(), method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(req, timeout=5).close()

    def stop(self):
        stop_process(self.proc)


class CountingProxy:
    """An HTTP reverse proxy in front of an upstream (moto) that records each request's STS/IAM
    `Action`, so tests count calls *at the endpoint*. `delay` (seconds) slows every response."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.actions = []
        self.delay = 0.0
        # fail(action, params, signing_key_id) -> None to forward, or (status, code) to answer with an
        # AWS query-protocol error instead (a failure injected at one step)
        self.fail = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = urllib.parse.parse_qs(body.decode("latin-1")) if body else {}
                params.update(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))
                action = (params.get("Action") or ["?"])[0]
                with proxy._lock:
                    proxy.actions.append(action)
                if proxy.delay:
                    import time

                    time.sleep(proxy.delay)
                auth = self.headers.get("Authorization") or ""
                signer = auth.partition("Credential=")[2].partition("/")[0] or None
                answer = proxy.fail(action, params, signer) if proxy.fail else None
                if answer:
                    status, code = answer
                    rbody = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the "
                             f"test</Message></Error><RequestId>test</RequestId></ErrorResponse>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(rbody)))
                    self.end_headers()
                    self.wfile.write(rbody)
                    return
                forward(self, proxy.upstream, body, self.command, keep_host=True)

            do_GET = do_POST = _forward


        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, action):
        with self._lock:
            return self.actions.count(action)

    def clear(self):
        with self._lock:
            self.actions.clear()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
