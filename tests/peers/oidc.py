"""A real OpenID Connect provider (panva's oidc-provider, tests/node/oidc-server.mjs) on loopback.

    with OidcProvider(roles=["arn:aws:iam::123456789012:role/dev"], id_token_ttl=60) as op:
        op.issuer            # "http://127.0.0.1:PORT"
        op.client_id         # public native client (auth method "none")
        op.stats()           # request counts, see oidc-server.mjs

Raises OidcProviderUnavailable (a RuntimeError) when node or tests/node/node_modules/oidc-provider
is missing; tests decide whether to skip or fail.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from .net import free_port, stop_process, wait_http

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")
SERVER_SCRIPT = os.path.join(NODE_DIR, "oidc-server.mjs")

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class OidcProviderUnavailable(RuntimeError):
    pass


def node_available():
    """None when the peer can run here, else the reason it cannot."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "oidc-provider")):
        return f"oidc-provider is not installed: run `npm install` in {NODE_DIR}"
    return None


class OidcProvider:
    """Start oidc-server.mjs on a free 127.0.0.1 port; stop() kills it by PID.

    Keyword settings are passed through to the server (see the top of oidc-server.mjs):
    client_id, confidential_client_id, confidential_client_secret, redirect_uris, roles,
    roles_by_account, email_domain, id_token_ttl, access_token_ttl, refresh_token_ttl,
    device_code_ttl, keys, always_issue_refresh_token, token_delay_ms.
    """

    def __init__(self, client_id="credproc-test", roles=(), id_token_ttl=3600, refresh_token_ttl=86400,
                 startup_timeout=20.0, **settings):
        reason = node_available()
        if reason:
            raise OidcProviderUnavailable(reason)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.settings = dict(settings, port=self.port, client_id=client_id, roles=list(roles),
                             id_token_ttl=id_token_ttl, refresh_token_ttl=refresh_token_ttl)
        self.confidential_client_id = self.settings.setdefault("confidential_client_id", "credproc-confidential")
        self.confidential_client_secret = self.settings.setdefault("confidential_client_secret",
                                                                   "confidential-secret")
        self.redirect_uri = self.settings.setdefault("redirect_uris", ["http://127.0.0.1/callback"])[0]
        self._tmpdir = tempfile.mkdtemp(prefix="credproc-oidc-")
        self.settings_path = os.path.join(self._tmpdir, "settings.json")
        with open(self.settings_path, "w") as f:
            json.dump(self.settings, f)
        self.log_path = os.path.join(self._tmpdir, "server.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["node", SERVER_SCRIPT, self.settings_path],
            cwd=NODE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(self.issuer + "/.well-known/openid-configuration", timeout=startup_timeout, proc=self.proc)
            self.discovery = self._json("GET", "/.well-known/openid-configuration")
        except Exception as e:
            log = self.log()
            self.stop()
            raise RuntimeError(f"oidc-provider did not start: {e}\n--- server log ---\n{log}") from e

    # ---- endpoints ----
    @property
    def token_endpoint(self):
        return self.discovery["token_endpoint"]

    @property
    def device_authorization_endpoint(self):
        return self.discovery["device_authorization_endpoint"]

    @property
    def authorization_endpoint(self):
        return self.discovery["authorization_endpoint"]

    @property
    def revocation_endpoint(self):
        return self.discovery["revocation_endpoint"]

    @property
    def jwks_uri(self):
        return self.discovery["jwks_uri"]

    # ---- test-only admin API ----
    def _json(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.issuer + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read().decode())

    def stats(self):
        """{"token": N, "token_by_grant_type": {"device_code"|"refresh_token"|"authorization_code": N},
        "token_errors": {error: N}, "token_requests": [{grant_type, client_id, status, error}],
        "device_authorization": N, "revocation": N, "authorization": N, "routes": {route: N}}"""
        return self._json("GET", "/test/stats")

    def reset_stats(self):
        return self._json("POST", "/test/reset-stats")

    def rotate_keys(self, drop_old=False):
        """New RS256 signing key; returns {"kid": new, "kids": all published}."""
        return self._json("POST", "/test/rotate-keys" + ("?drop_old=1" if drop_old else ""))

    def configure(self, token_delay_ms=None, fail_token=None):
        """Live changes: token_delay_ms delays each token request; fail_token={"status": 503,
        "error": "temporarily_unavailable", "count": 1} makes the next `count` token requests fail."""
        body = {}
        if token_delay_ms is not None:
            body["token_delay_ms"] = token_delay_ms
        if fail_token is not None:
            body["fail_token"] = fail_token
        return self._json("POST", "/test/config", body)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # ---- lifecycle ----
    def stop(self):
        stop_process(self.proc)
        if not self._log.closed:
            self._log.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def wait_for_stats(provider, predicate, timeout=5.0):
    """Poll provider.stats() until predicate(stats) is true; return the last stats."""
    deadline = time.monotonic() + timeout
    while True:
        s = provider.stats()
        if predicate(s) or time.monotonic() >= deadline:
            return s
        time.sleep(0.05)
