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

from credproc import app, cli, config, fastpath
from credproc.context import Context
from credproc.core import cache, log, paths
from credproc.core.cache import Entry
from credproc.core.credentials import Credentials
from credproc.core.errors import ConfigError, LocalFileError, LockTimeout, LoginRequired, NetworkError, ServiceError
from credproc.core.store import EncryptedFileCache
from credproc.sources.cached import CachedProvider
from tests.fake_issuer import FORGERIES, FakeIssuer
from tests.fakes import IAM_CONFIG, CountingProvider, ScriptedTerminal

IAM = IAM_CONFIG


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

    from credproc.core import locking

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
    from credproc.core.credentials import format_expiration, parse_expiration

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
    from credproc.sources.oidc.provider import OidcSession

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
    from credproc.sources.oidc.protocol import InvalidToken

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


# -- item 2: directories by handle, parents 0700 -----------------------------------------------------
def test_missing_parents_are_created_0700_whatever_the_umask(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    old = os.umask(0)
    try:
        store = EncryptedFileCache(str(home / ".cache" / "credproc"), str(home / ".local" / "share" / "credproc" / "cache.key"))
        store.put("role:admin", Entry(2_000_000_000, 1_999_000_000, "d", "fp", b"{}"))
    finally:
        os.umask(old)
    for d in (".cache", ".cache/credproc", ".local", ".local/share", ".local/share/credproc"):
        assert stat.S_IMODE(os.stat(home / d).st_mode) == 0o700, d


def test_a_symlink_planted_as_the_cache_dir_is_refused_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    os.chmod(victim, 0o755)
    (tmp_path / "xdg").mkdir()
    os.symlink(victim, tmp_path / "xdg" / "credproc")  # e.g. a planted /tmp/credproc with XDG_CACHE_HOME=/tmp
    store = EncryptedFileCache(str(tmp_path / "xdg" / "credproc"), str(tmp_path / "data" / "cache.key"))
    with pytest.raises(LocalFileError, match="symbolic link"):
        store.put("role:admin", Entry(2_000_000_000, 1_999_000_000, "d", "fp", b"{}"))
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o755 and os.listdir(victim) == []


def test_a_cache_dir_swapped_after_the_check_is_not_written_into(tmp_path):
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "cache.key"))
    store.put("role:admin", Entry(2_000_000_000, 1_999_000_000, "d", "fp", b"first"))  # checked and in use
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    os.rename(tmp_path / "cache", tmp_path / "moved")
    os.symlink(attacker, tmp_path / "cache")  # swapped between the check and the use
    store.put("role:admin", Entry(2_000_000_000, 1_999_000_000, "d", "fp", b"second"))
    with store.lock("role:admin", "x") as lock:
        lock.acquire(time.monotonic())
    assert os.listdir(attacker) == []
    assert store.get("role:admin").body == b"second"


# -- item 4: no-follow, non-blocking, regular files only, size cap -------------------------------------
def _in_thread(fn, timeout=5):
    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked"
    return result


def test_a_fifo_at_an_entry_path_is_a_miss_not_a_hang(xdg, monkeypatch):
    store = app.store(config.load(paths.config_file()))
    now = int(time.time())
    store.put("role:admin", Entry(now + 3600, now + 2400, "d", "fp", b"{}"))
    path = store.path_for("role:admin")
    os.unlink(path)
    os.mkfifo(path)
    assert _in_thread(lambda: store.get("role:admin")) == {"value": None}
    assert _in_thread(lambda: fastpath.try_serve(["--role", "admin"])) == {"value": False}
    from credproc.commands.status import collect

    report = _in_thread(lambda: collect(config.load(paths.config_file()), store, now))["value"]
    assert report["roles"][0]["state"] == "unreadable"  # something is there, and it is no entry (issue 20, item 14)


def test_an_entry_path_that_is_a_symlink_is_not_followed(xdg, monkeypatch):
    cfg = config.load(paths.config_file())
    store = app.store(cfg)
    now = int(time.time())
    body = Credentials("ASIAFOLLOWED", "s", "t", now + 3600).to_process_json()
    store.put("role:admin", Entry(now + 3600, now + 2400, cfg.digest, cfg.fingerprint("admin"), body))
    path = store.path_for("role:admin")
    os.rename(path, xdg / "elsewhere")
    os.symlink(xdg / "elsewhere", path)
    assert store.get("role:admin") is None
    assert fastpath.try_serve(["--role", "admin"]) is False


def test_an_oversized_entry_or_config_is_refused_before_it_is_read(xdg):
    big = xdg / "big"
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(OSError, match="larger than"):
        cache.read_file(str(big))
    with pytest.raises(ConfigError, match="larger than"):
        config.load(str(big))


def test_a_config_that_is_a_fifo_or_a_device_is_a_config_error_not_a_hang(xdg):
    fifo = xdg / "fifo.toml"
    os.mkfifo(fifo)
    got = _in_thread(lambda: config.load(str(fifo)))
    assert isinstance(got.get("error"), ConfigError) and "not a regular file" in str(got["error"])
    os.symlink("/dev/null", xdg / "null.toml")
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load(str(xdg / "null.toml"))
    os.symlink(xdg / "credproc.toml", xdg / "linked.toml")  # a dotfile manager's symlink is fine
    assert "admin" in config.load(str(xdg / "linked.toml")).roles


# -- item 8: two config files with the same role names -------------------------------------------------
def test_two_config_files_with_the_same_role_names_do_not_evict_each_other(xdg, monkeypatch, capsys):
    from credproc import sources as idp_registry

    inner = CountingProvider(time.time)
    monkeypatch.setattr(type(idp_registry.get("iam")), "build_chain", lambda *a: inner)
    a, b = xdg / "a.toml", xdg / "b.toml"
    a.write_bytes(IAM)
    b.write_bytes(IAM.replace(b"role/Admin", b"role/OtherAdmin"))  # same names, other settings
    for _ in range(3):
        for path in (a, b):
            assert cli.main(["--config", str(path), "--role", "admin"]) == 0
    assert inner.calls == 2
    capsys.readouterr()
    for path in (a, b):  # and the fast path finds each one's entry
        assert fastpath.try_serve(["--config", str(path), "--role", "admin"]) is True


# -- item 10: rollback after logout --all -----------------------------------------------------------
def test_entries_copied_back_after_logout_all_are_unusable(xdg, monkeypatch, capsys):
    from credproc import sources as idp_registry

    inner = CountingProvider(time.time)
    monkeypatch.setattr(type(idp_registry.get("iam")), "build_chain", lambda *a: inner)
    assert cli.main(["--role", "admin"]) == 0
    cache_dir = xdg / "xdg-cache" / "credproc"
    saved = {n: (cache_dir / n).read_bytes() for n in os.listdir(cache_dir) if not n.endswith(".lock")}
    assert saved
    assert cli.main(["logout", "--all"]) == 0
    for name, data in saved.items():  # a backup restored, or files copied back by someone
        (cache_dir / name).write_bytes(data)
        os.chmod(cache_dir / name, 0o600)
    capsys.readouterr()
    assert fastpath.try_serve(["--role", "admin"]) is False
    assert app.store(config.load(paths.config_file())).get("role:admin") is None
    assert cli.main(["--role", "admin"]) == 0 and inner.calls == 2


# -- item 1: cached OpenID Connect metadata is integrity-protected ---------------------------------------
def test_cached_oidc_metadata_that_does_not_verify_is_refetched(tmp_path, fake):
    ctx = _ctx(tmp_path, _oidc_cfg(fake))
    fetches = []
    discovery = fake.discovery
    fake.discovery = lambda: fetches.append(1) or discovery()
    assert _session(ctx).issuer.endpoint("token_endpoint") == fake.url + "/token" and len(fetches) == 1
    evil = "http://127.0.0.1:9/steal"
    tampered = 0
    for name in os.listdir(ctx.store.cache_dir):  # whoever can write the cache dir rewrites what is there
        path = os.path.join(ctx.store.cache_dir, name)
        data = open(path, "rb").read()
        if (fake.url + "/token").encode() in data:  # a plain file: point token_endpoint elsewhere
            data = data.replace((fake.url + "/token").encode(), evil.encode())
        elif data:
            data = data[:-1] + bytes([data[-1] ^ 1])  # an encrypted one: any change must be noticed
        else:
            continue
        open(path, "wb").write(data)
        tampered += 1
    assert tampered
    again = _session(_ctx(tmp_path, _oidc_cfg(fake)))  # the next run
    assert again.issuer.endpoint("token_endpoint") == fake.url + "/token" and len(fetches) == 2
    # and the refetched metadata is cached again, used without a fetch by the run after
    assert _session(_ctx(tmp_path, _oidc_cfg(fake))).issuer.endpoint("token_endpoint") == fake.url + "/token"
    assert len(fetches) == 2


def test_no_oidc_metadata_is_kept_in_a_plain_file(tmp_path, fake):
    ctx = _ctx(tmp_path, _oidc_cfg(fake))
    _session(ctx).id_token()
    for name in os.listdir(ctx.store.cache_dir):
        data = open(os.path.join(ctx.store.cache_dir, name), "rb").read()
        assert fake.url.encode() not in data and b"jwks" not in data, name


# -- item 5: bodies read up to a cap, whole requests bounded by a deadline -----------------------------
class HostileServer:
    """A loopback HTTP server that misbehaves on purpose: `drip` sends its answer a byte at a time
    (headers or body), `huge` sends an endless body. Counts what it managed to send."""

    def __init__(self, mode, interval=0.3, content_type="application/json"):
        import socket as _socket

        self.mode, self.interval, self.content_type = mode, interval, content_type
        self.sent = 0
        self.sock = _socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\nConnection: close\r\n"
            if self.mode == "drip_headers":
                for ch in head.encode():
                    conn.sendall(bytes([ch]))
                    self.sent += 1
                    time.sleep(self.interval)
            conn.sendall(head.encode() + b"\r\n")
            while not self._stop.is_set():
                if self.mode == "huge":
                    conn.sendall(b" " * 65536)
                    self.sent += 65536
                else:
                    conn.sendall(b" ")
                    self.sent += 1
                    time.sleep(self.interval)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self.sock.close()


@pytest.mark.parametrize("mode", ["drip_body", "drip_headers"])
def test_a_server_that_drips_its_answer_is_cut_off_at_the_whole_request_deadline(mode):
    from credproc.core import http as web

    server = HostileServer(mode)
    try:
        start = time.monotonic()
        got = _in_thread(lambda: web.request("GET", server.url, timeout=2, what="the IdP"), timeout=20)
        took = time.monotonic() - start
    finally:
        server.stop()
    assert isinstance(got.get("error"), NetworkError) and "did not answer within 2 s" in str(got["error"])
    assert took < 6


def test_a_server_that_sends_an_endless_body_is_cut_off_at_the_cap():
    from credproc.core import http as web

    server = HostileServer("huge")
    try:
        got = _in_thread(lambda: web.request("GET", server.url, timeout=30, what="the IdP", max_bytes=1024 * 1024),
                         timeout=30)
    finally:
        server.stop()
    assert isinstance(got.get("error"), ServiceError) and "larger than 1048576 bytes" in str(got["error"])
    assert server.sent < 16 * 1024 * 1024


@pytest.mark.parametrize("mode", ["huge", "drip_body"])
def test_sts_answers_are_capped_and_bounded_by_a_deadline(mode, monkeypatch):
    from credproc.core import sts

    monkeypatch.setattr(sts, "DEADLINE", 3, raising=False)
    server = HostileServer(mode, content_type="text/xml")
    try:
        client = sts.client("us-east-1", server.url.rstrip("/"), None)
        start = time.monotonic()
        got = _in_thread(lambda: sts.call(client, "AssumeRoleWithWebIdentity", "alice", RoleArn="arn:aws:iam::111111111111:role/x",
                                          RoleSessionName="alice", WebIdentityToken="t" * 20), timeout=60)
        took = time.monotonic() - start
    finally:
        server.stop()
    if mode == "huge":
        assert isinstance(got.get("error"), ServiceError) and "larger than" in str(got["error"])
        assert server.sent < 16 * 1024 * 1024
    else:
        assert isinstance(got.get("error"), NetworkError) and "within 3 s" in str(got["error"])
        assert took < 8


# -- item 6: text from servers and the config printed safely ------------------------------------------------
ESC = "\x1b]0;pwned\x07\x1b[2K\rPassword: \u202e"


def test_an_idp_error_with_escape_sequences_is_printed_without_them(xdg, fake, capsys, monkeypatch):
    """The IdP's own error text reaches the message: its control characters must not reach the
    terminal (this one retitles it, erases the line and fakes a prompt)."""
    import credproc.sources.oidc.protocol

    (xdg / "credproc.toml").write_bytes(_oidc_cfg(fake))
    real_post = credproc.sources.oidc.protocol.Client._post
    monkeypatch.setattr(credproc.sources.oidc.protocol.Client, "_post", lambda self, url, form, what: (400, {"error": ESC}))
    assert cli.main(["--role", "dev"]) != 0
    err = capsys.readouterr().err
    assert "pwned" in err and not any(c in err for c in "\x1b\x07\r\u202e")
    assert err.count("\n") == 1
    monkeypatch.setattr(credproc.sources.oidc.protocol.Client, "_post", real_post)


def test_lines_from_servers_on_the_terminal_and_in_warnings_carry_no_control_characters(capsys):
    from credproc.core import prompt

    term = prompt.Terminal("credproc login --role x", interactive=False)
    written = []

    class Gui:
        def say(self, message):
            written.append(message)

    term.gui = Gui()
    term.say(f"To sign in, open https://idp.example.com/device and enter the code {ESC}")
    log.warn(f"the IdP said {ESC}")
    from credproc.core.server import log_line

    log_line(f"serve: request failed: {ESC}")
    err = capsys.readouterr().err
    for text in written + [err]:
        assert "pwned" in text and not any(c in text for c in "\x1b\x07\r\u202e")


def test_a_huge_config_value_is_not_echoed_whole(xdg, capsys):
    (xdg / "credproc.toml").write_text(f'[settings]\nregion = "{"x" * 500_000}"\n{"k" * 300_000} = 1\n')
    assert cli.main(["--role", "admin"]) == ConfigError.exit_code
    err = capsys.readouterr().err
    assert "settings.region" in err and len(err) < 3000


# -- item 7: serve --------------------------------------------------------------------------------------
@pytest.fixture
def served():
    from credproc.core.server import CredentialServer

    logged = []
    creds = Credentials("ASIASERVED", "s", "t", int(time.time()) + 3600)
    server = CredentialServer(lambda: creds, log=logged.append).start()
    yield server, logged
    server.stop()


def _get(server, host=None, token=None):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", "/", skip_host=host is not None)
    if host is not None:
        conn.putheader("Host", host)
    conn.putheader("Authorization", token or server.token)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_serve_refuses_requests_for_another_host_name(served):
    server, logged = served
    assert _get(server) == 200
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "localhost", f"LOCALHOST:{server.port}"):
        assert _get(server, host=host) == 200, host
    for host in ("attacker.example.com", f"attacker.example.com:{server.port}", f"127.0.0.1.nip.io:{server.port}", ""):
        assert _get(server, host=host) == 403, host  # DNS rebinding: a web page's request to "its" host
    assert len(logged) <= 4 and not any("Traceback" in line for line in logged)


def test_serve_prints_no_traceback_for_reset_connections(served, capfd):
    import socket
    import struct

    server, logged = served
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthoriz")  # half a request, then a reset
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(1)
    assert _get(server) == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and err.count("\n") <= 30
    assert len(logged) <= 30


def test_serve_handles_connections_in_a_bounded_pool(served):
    import socket

    server, logged = served
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
    try:
        time.sleep(1)
        assert threading.active_count() - before <= 40
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # once the idle ones are gone, requests are answered again
        try:
            if _get(server) == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert _get(server) == 200


def test_directory_handles_do_not_pile_up_when_stores_come_and_go(tmp_path):
    """serve and exec --server build a store per request."""
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "key")).put(
        "role:admin", Entry(2_000_000_000, 1_999_000_000, "d", "fp", b"{}"))
    before = open_fds()
    for _ in range(50):
        store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "key"))
        assert store.get("role:admin") is not None
        del store
    assert open_fds() - before < 5
