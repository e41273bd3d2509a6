"""Issue 13, items 1-13 (security and reliability): each test is named after what it pins and
failed before the fix it goes with."""

import json
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from credproc import app, cache, cli, config, fastpath, log, paths
from credproc.cache import Entry
from credproc.context import Context
from credproc.credentials import Credentials
from credproc.errors import ConfigError, LocalFileError, LockTimeout, LoginRequired, NetworkError, ServiceError
from credproc.providers.cached import CachedProvider
from credproc.store import EncryptedFileCache
from tests.fake_issuer import FORGERIES, FakeIssuer
from tests.fakes import CountingProvider, ScriptedTerminal

IAM = b"""
[idp.corp]
type = "iam"
profile = "p"
[role.admin]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"
"""


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    """An isolated user: XDG dirs under tmp_path, a config file, no debug, no terminal."""
    for var, sub in (("XDG_CACHE_HOME", "xdg-cache"), ("XDG_DATA_HOME", "xdg-data"), ("XDG_CONFIG_HOME", "xdg-config"),
                     ("HOME", "home")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    cfg = tmp_path / "credproc.toml"
    cfg.write_bytes(IAM)
    monkeypatch.setenv("CREDPROC_CONFIG", str(cfg))
    monkeypatch.setenv("CREDPROC_NO_PROMPT", "1")
    monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
    monkeypatch.delenv("CREDPROC_ACTIVE", raising=False)
    monkeypatch.setattr(log, "enabled", False)
    return tmp_path


def _ctx(tmp_path, text=IAM, lock_wait=0.2, terminal=None, path="c.toml"):
    cfg = config.parse(path, text)
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "key"))
    return Context(cfg, store, terminal or ScriptedTerminal(), lock_wait=lock_wait)


def _cached(ctx, inner):
    return CachedProvider(inner, ctx, "role:admin", "fp", "credentials for role 'admin'")


# -- item 3: a read-only or unwritable cache during a refresh ---------------------------------------
def test_an_unwritable_cache_during_a_refresh_serves_still_valid_credentials(tmp_path):
    from freezegun import freeze_time

    ctx = _ctx(tmp_path)
    with freeze_time("2026-11-21 10:00:00") as clock:
        inner = CountingProvider(time.time)
        first = _cached(ctx, inner).retrieve()
        clock.tick(42 * 60)  # 18 min left: a refresh is due, the cached credentials are still servable

        def cannot_lock(identity, what):
            raise LocalFileError(f"cannot open the lock file for {what}: Read-only file system")

        ctx.store.lock = cannot_lock
        ctx.store.put = lambda *a, **k: (_ for _ in ()).throw(LocalFileError("Read-only file system"))
        assert _cached(ctx, inner).retrieve() == first
        clock.tick(4 * 60)  # 14 min left: nothing servable, so the caller gets the error
        with pytest.raises(LocalFileError):
            _cached(ctx, inner).retrieve()


# -- item 9: a deeply nested TOML file ------------------------------------------------------------
def test_a_deeply_nested_toml_file_is_a_config_error_not_a_crash(xdg, capsys):
    deep = b"x = " + b"[" * 100000 + b"]" * 100000 + b"\n"
    with pytest.raises(ConfigError, match="nested too deeply"):
        config.parse("deep.toml", deep)
    (xdg / "credproc.toml").write_bytes(deep)
    assert cli.main(["--role", "admin"]) == ConfigError.exit_code
    err = capsys.readouterr().err
    assert "RecursionError" not in err and "unexpected error" not in err and "nested too deeply" in err


# -- item 13: behaviours no test pinned -----------------------------------------------------------
def test_credentials_that_arrive_from_a_refresh_with_15_minutes_or_less_left_are_not_handed_out(tmp_path, monkeypatch):
    ctx = _ctx(tmp_path)
    inner = CountingProvider(time.time, lifetime=14 * 60)
    monkeypatch.setattr("credproc.chain.build", lambda ctx, role: inner)
    with pytest.raises(ServiceError, match="expire in"):
        app.credentials(ctx, "admin")
    inner.lifetime = 15 * 60
    with pytest.raises(ServiceError, match="expire in"):
        app.credentials(ctx, "admin")
    inner.lifetime = 16 * 60
    assert app.credentials(ctx, "admin").remaining(time.time()) > 15 * 60


def test_a_caller_with_still_servable_credentials_does_not_wait_for_the_lock(tmp_path, monkeypatch):
    from freezegun import freeze_time

    from credproc import locking

    ctx = _ctx(tmp_path, lock_wait=30)
    with freeze_time("2026-11-21 10:00:00") as clock:
        inner = CountingProvider(time.time)
        first = _cached(ctx, inner).retrieve()
        holder = ctx.store.lock("role:admin", "x")
        holder.acquire(time.monotonic())
        try:
            clock.tick(42 * 60)  # in the margin: servable; another process is refreshing
            ctx.lock_deadline = time.monotonic() + 30  # plenty of time to wait, if it (wrongly) would

            def no_waiting(seconds):
                raise AssertionError("waited for the lock although cached credentials were servable")

            monkeypatch.setattr(locking.time, "sleep", no_waiting)
            assert _cached(ctx, inner).retrieve() == first and inner.calls == 1
        finally:
            holder.release()


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "America/St_Johns", "Pacific/Kiritimati"])
def test_expiration_is_utc_whatever_the_local_time_zone(tz, monkeypatch):
    from credproc.credentials import format_expiration, parse_expiration

    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert time.localtime(0).tm_hour != 0  # the zone really is not UTC
        assert format_expiration(1_800_000_000) == "2027-01-15T08:00:00Z"
        assert parse_expiration("2027-01-15T08:00:00Z") == 1_800_000_000
        doc = json.loads(Credentials("ASIA", "s", "t", 1_800_000_000).to_process_json())
        assert doc["Expiration"] == "2027-01-15T08:00:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_an_entry_written_in_the_future_is_not_served_by_the_full_path(tmp_path):
    ctx = _ctx(tmp_path)
    now = int(time.time())
    good = Credentials("ASIAOLD", "s", "t", now + 7200, "111111111111")
    # written "an hour from now": the clock has since been set back, so its times mean nothing
    ctx.store.put("role:admin", Entry(now + 7200, now + 6000, ctx.config.digest, "fp", good.to_process_json(),
                                      written_at=now + 3600))
    inner = CountingProvider(time.time)
    assert _cached(ctx, inner).retrieve().access_key_id != "ASIAOLD" and inner.calls == 1
    # nor as a fallback when the refresh fails
    ctx.store.put("role:admin", Entry(now + 7200, now + 6000, ctx.config.digest, "fp", good.to_process_json(),
                                      written_at=now + 3600))
    inner.fail = LoginRequired("an MFA code is needed")
    with pytest.raises(LoginRequired):
        _cached(ctx, inner).retrieve()


@pytest.mark.parametrize("mode", [0o640, 0o620, 0o610, 0o604, 0o660])
def test_a_key_file_readable_or_writable_by_group_or_others_is_refused(tmp_path, mode):
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "key"))
    store.put("role:admin", Entry(2_000_000_000, 1_999_000_000, "d", "fp", b"{}"))
    os.chmod(store.key_path, mode)
    with pytest.raises(LocalFileError, match="chmod 600"):
        EncryptedFileCache(store.cache_dir, store.key_path).get("role:admin")


# -- OpenID Connect sessions (items 11, 12, 13) -----------------------------------------------------
def _oidc_cfg(fake, extra=""):
    return f"""
[idp.sso]
type = "oidc"
issuer = "{fake.url}"
client_id = "{fake.client_id}"
flow = "password"
username = "alice"
password_command = "echo {fake.password}"
{extra}
[role.dev]
idp = "sso"
arn = "arn:aws:iam::111111111111:role/dev"
""".encode()


@pytest.fixture
def fake():
    f = FakeIssuer()
    f.refresh_tokens = True
    yield f
    f.stop()


def _session(ctx):
    from credproc.providers.web_identity import OidcSession

    return OidcSession(ctx, ctx.config.idps["sso"])


def test_the_oidc_sign_in_is_taken_under_its_lock(tmp_path, fake):
    ctx = _ctx(tmp_path, _oidc_cfg(fake), lock_wait=0.3)
    holder = ctx.store.lock("oidc:sso", "x")
    holder.acquire(time.monotonic())
    try:
        with pytest.raises(LockTimeout, match="sign-in"):
            _session(ctx).id_token()
        assert fake.token_requests == []  # nothing was sent while another process held the sign-in
    finally:
        holder.release()


def test_the_oidc_sign_in_is_read_again_after_waiting_for_its_lock(tmp_path, fake):
    ctx = _ctx(tmp_path, _oidc_cfg(fake), lock_wait=10)
    other = _ctx(tmp_path, _oidc_cfg(fake))
    other.store = ctx.store
    holder = ctx.store.lock("oidc:sso", "x")
    holder.acquire(time.monotonic())

    def other_process_signs_in():  # what another credproc does while it holds the lock
        time.sleep(0.5)
        s = _session(other)
        s._accept({"id_token": fake.sign(fake.claims()), "refresh_token": "rt-other"}, {})
        holder.release()

    t = threading.Thread(target=other_process_signs_in)
    t.start()
    try:
        token, claims = _session(ctx).id_token()
    finally:
        t.join()
    assert claims["sub"] == "alice" and fake.token_requests == []  # its sign-in was used, not a new one


@pytest.mark.parametrize("forgery", ["other_key", "wrong_aud", "alg_none"])
def test_a_login_whose_id_token_is_rejected_keeps_nothing_of_that_answer(tmp_path, fake, forgery):
    from credproc.oidc import InvalidToken

    ctx = _ctx(tmp_path, _oidc_cfg(fake), terminal=ScriptedTerminal(None))
    fake.forge = FORGERIES[forgery]
    with pytest.raises(InvalidToken):
        _session(ctx).id_token()
    assert ctx.store.get("oidc:sso") is None
    # the next call without a terminal must not refresh its way to credentials with that answer
    fake.forge = None
    fake.token_requests.clear()
    with pytest.raises(LoginRequired):
        ctx2 = _ctx(tmp_path, _oidc_cfg(fake, 'flow = "device"').replace(b'flow = "password"\n', b""),
                    terminal=ScriptedTerminal(None))
        _session(ctx2).id_token()
    assert "refresh_token" not in fake.token_requests


def test_status_says_unknown_when_the_idp_does_not_say_how_long_its_refresh_token_lasts(tmp_path, fake):
    from credproc.commands.status import collect, render

    ctx = _ctx(tmp_path, _oidc_cfg(fake))
    _session(ctx).id_token()
    report = collect(ctx.config, ctx.store, int(time.time()))
    (session,) = report["sessions"]
    assert session["state"] == "valid" and session["refresh_token"] is True
    assert session["seconds_left"] is None and session["expires_at"] is None
    assert "unknown" in render(report) and "days" not in render(report)


def test_status_uses_refresh_expires_in_when_the_idp_sends_it(tmp_path, fake):
    from credproc.commands.status import collect, render

    fake.refresh_expires_in = 86400
    ctx = _ctx(tmp_path, _oidc_cfg(fake))
    _session(ctx).id_token()
    (session,) = collect(ctx.config, ctx.store, int(time.time()))["sessions"]
    assert 86400 - 60 <= session["seconds_left"] <= 86400


def _app_ctx(xdg, text, terminal=None):
    (xdg / "credproc.toml").write_bytes(text)
    cfg = config.load(str(xdg / "credproc.toml"))
    return Context(cfg, app.store(cfg), terminal or ScriptedTerminal(None), lock_wait=2)


@pytest.mark.parametrize("how", [["--role", "dev"], ["--all"]])
def test_logout_drops_the_cached_id_token(xdg, fake, capsys, how):
    ctx = _app_ctx(xdg, _oidc_cfg(fake))
    _session(ctx).id_token()
    assert _session(ctx)._cached_token() is not None
    assert cli.main(["logout", *how]) == 0
    capsys.readouterr()
    again = _app_ctx(xdg, _oidc_cfg(fake))
    assert _session(again)._cached_token() is None and again.store.get("oidc:sso") is None
