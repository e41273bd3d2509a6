"""Small helpers shared by the test peers: free ports and readiness probes (loopback only)."""

import http.server
import socket
import subprocess
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=20.0, proc=None):
    """Poll url until it answers any HTTP status; raise if it never does (or proc exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop_process(proc, grace=5):
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def forward(handler, upstream, body, method="POST", keep_host=False):
    """Relay the request a http.server handler is serving to `upstream` (a base URL; the handler's
    path is appended) with `body`, and write the upstream's answer back: the reverse proxies that
    record what credproc sent (tests/peers/moto.py CountingProxy, saml_sts.py, saml_idp.py
    HeaderRecorder). keep_host: pass Host on (SigV4 signs it, and moto in auth mode checks it)."""
    dropped = ("content-length", "connection") + (() if keep_host else ("host",))
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in dropped}
    req = urllib.request.Request(upstream + handler.path, data=body or None, method=method, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=30)
        status, rheaders, rbody = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, rheaders, rbody = e.code, e.headers, e.read()
    handler.send_response(status)
    for k, v in rheaders.items():
        if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
            handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(rbody)))
    handler.end_headers()
    handler.wfile.write(rbody)


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    """The test peers' HTTP server. Its listening socket never blocks in accept: a connection that
    went away between serve_forever's select and its accept once left accept waiting forever, and
    with it shutdown() and the whole test run."""

    def server_activate(self):
        super().server_activate()
        self.socket.settimeout(1.0)  # accept's socket.timeout is an OSError: serve_forever carries on
