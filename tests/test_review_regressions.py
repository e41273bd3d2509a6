"""Regression tests, each named after the defect it pins (found in review)."""

import http.server
import io
import socket
import sys
import threading
import time
import urllib.request

import pytest

from credproc import fastpath
from credproc.core import cache, paths, prompt
from credproc.core import http as web
from credproc.core.errors import ConfigError
from credproc.core.loopback import Listener
from credproc.core.store import EncryptedFileCache
from credproc.sources.oidc.protocol import InvalidToken, Issuer
from tests.fake_issuer import FakeIssuer


def test_a_background_job_does_not_count_as_having_a_terminal(monkeypatch):
    """Reading /dev/tty from a background process group stops the process (SIGTTIN): it must fail
    fast instead."""
    monkeypatch.delenv("CREDPROC_NO_PROMPT", raising=False)
    opened = []
    monkeypatch.setattr(prompt.os, "open", lambda *a, **k: opened.append(a) or 99)
    monkeypatch.setattr(prompt.os, "close", lambda fd: None)
    monkeypatch.setattr(prompt.os, "tcgetpgrp", lambda fd: 12345)
    monkeypatch.setattr(prompt.os, "getpgrp", lambda: 54321)
    assert prompt.open_tty() is None and opened


def test_stray_requests_and_idle_connections_do_not_spoil_the_browser_login():
    listener = Listener("/callback", state="s-123")
    listener.start()
    try:
        idle = socket.create_connection(("127.0.0.1", listener.port))  # a browser's preconnect, never used
        base = f"http://127.0.0.1:{listener.port}/callback"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "?code=evil&state=wrong", timeout=5)
        with urllib.request.urlopen(base + "?code=good&state=s-123", timeout=5) as r:
            assert b"Signed in" in r.read()
        assert listener.wait(1) == {"code": "good", "state": "s-123"}
        idle.close()
    finally:
        listener.stop()


class _Redirector:
    def __init__(self, target):
        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _go(self):
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _go

        self.server = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_post_carrying_secrets_is_never_redirected():
    r = _Redirector("http://127.0.0.1:9/steal")
    try:
        resp = web.request("POST", r.url, form={"password": "x"}, timeout=5)
        assert resp.status == 302
    finally:
        r.stop()


def test_a_get_is_not_redirected_to_plain_http_elsewhere():
    r = _Redirector("http://metadata.example.com/")  # never contacted
    try:
        assert web.request("GET", r.url, timeout=5).status == 302
    finally:
        r.stop()


def test_a_ca_bundle_that_is_not_pem_is_a_config_error(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a usable PEM CA file"):
        web.request("GET", "https://127.0.0.1:9/", ca_bundle=str(bad), timeout=1)


def test_an_issuer_with_a_trailing_slash_validates(tmp_path):
    fake = FakeIssuer()
    try:
        slash = fake.url + "/"
        disco = fake.discovery()
        fake.discovery = lambda: dict(disco, issuer=slash)
        issuer = Issuer({"name": "a", "issuer": slash, "client_id": fake.client_id, "timeout": 5, "flow": "device"},
                        EncryptedFileCache(str(tmp_path / "c"), str(tmp_path / "k")))
        assert issuer.validate(fake.sign(fake.claims(iss=slash)))["iss"] == slash
    finally:
        fake.stop()


def test_an_azp_naming_another_client_is_rejected(tmp_path):
    fake = FakeIssuer()
    try:
        issuer = Issuer({"name": "a", "issuer": fake.url, "client_id": fake.client_id, "timeout": 5, "flow": "device"},
                        EncryptedFileCache(str(tmp_path / "c"), str(tmp_path / "k")))
        with pytest.raises(InvalidToken, match="azp"):
            issuer.validate(fake.sign(fake.claims(azp="someone-else")))
    finally:
        fake.stop()


def test_an_entry_written_in_the_future_is_not_served_after_the_clock_went_back(tmp_path, monkeypatch):
    for var, sub in (("XDG_CACHE_HOME", "c"), ("XDG_DATA_HOME", "d")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b"")
    monkeypatch.setenv("CREDPROC_CONFIG", str(cfg))
    monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
    now = int(time.time())
    store = EncryptedFileCache(paths.cache_dir(), paths.key_file(), scope=paths.config_file())
    # written "an hour from now": the clock has since been set back by an hour
    store.put("role:admin", cache.Entry(now + 7200, now + 6000, cache.digest(b""), "fp", b"{}", written_at=now + 3600))

    class Out:
        buffer = io.BytesIO()

    monkeypatch.setattr(sys, "stdout", Out())
    assert fastpath.try_serve(["--role", "admin"]) is False
