import time

import pytest
from freezegun import freeze_time

from credproc import config
from credproc.context import Context
from credproc.core.errors import LockTimeout, LoginRequired, NetworkError
from credproc.core.store import EncryptedFileCache
from credproc.sources.cached import CachedProvider, refresh_at
from tests.fakes import IAM_CONFIG, CountingProvider, ScriptedTerminal

CFG = IAM_CONFIG


@pytest.fixture
def ctx(tmp_path):
    cfg = config.parse("c.toml", CFG)
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "key"))
    return Context(cfg, store, ScriptedTerminal(), lock_wait=0.2)


def cached(ctx, inner):
    return CachedProvider(inner, ctx, "role:admin", "fp", "credentials for role 'admin'")


def test_refresh_at_respects_margin_and_the_15_minute_rule():
    assert refresh_at(0, 3600, 1200) == 2400  # 20 min before expiry
    assert refresh_at(0, 3600, 0) == 3600 - 960  # never within 16 min of expiry
    assert refresh_at(0, 1200, 1200) == 1200 - 1050  # short sessions are still cached a while
    for lifetime in (1200, 1800, 3600, 43200):
        for margin in (0, 600, 1200, 7200):
            r = refresh_at(0, lifetime, margin)
            assert 0 <= r and lifetime - r > 900


def test_hit_until_the_refresh_margin_then_refresh(ctx):
    with freeze_time("2026-11-21 10:00:00") as clock:
        inner = CountingProvider(time.time)
        p = cached(ctx, inner)
        first = p.retrieve()
        clock.tick(39 * 60)  # 21 min left: still a hit
        assert p.retrieve() == first and inner.calls == 1
        clock.tick(2 * 60)  # 19 min left: inside the 20-minute margin
        second = p.retrieve()
        assert inner.calls == 2 and second != first


def test_inside_the_margin_a_failed_refresh_serves_still_valid_credentials(ctx):
    with freeze_time("2026-11-21 10:00:00") as clock:
        inner = CountingProvider(time.time)
        p = cached(ctx, inner)
        first = p.retrieve()
        clock.tick(42 * 60)  # 18 min left
        inner.fail = LoginRequired("an MFA code is needed")
        assert p.retrieve() == first
        inner.fail = NetworkError("idp down")
        assert p.retrieve() == first


def test_never_serves_credentials_with_15_minutes_or_less_left(ctx):
    with freeze_time("2026-11-21 10:00:00") as clock:
        inner = CountingProvider(time.time)
        p = cached(ctx, inner)
        p.retrieve()
        clock.tick(45 * 60)  # exactly 15 min left
        inner.fail = LoginRequired("an MFA code is needed")
        with pytest.raises(LoginRequired):
            p.retrieve()


def test_an_entry_made_from_other_settings_is_not_served(ctx):
    with freeze_time("2026-11-21 10:00:00"):
        inner = CountingProvider(time.time)
        cached(ctx, inner).retrieve()
        other = CachedProvider(inner, ctx, "role:admin", "other-fp", "x")
        other.retrieve()
        assert inner.calls == 2


def test_force_ignores_the_cache(ctx):
    inner = CountingProvider(time.time)
    cached(ctx, inner).retrieve()
    ctx.force = True
    cached(ctx, inner).retrieve()
    assert inner.calls == 2


def test_a_waiter_gives_up_with_a_reason_and_serves_cached_when_it_can(ctx, monkeypatch):
    from credproc.core import locking

    with freeze_time("2026-11-21 10:00:00", tick=True) as clock:
        inner = CountingProvider(time.time)
        p = cached(ctx, inner)
        first = p.retrieve()
        holder = ctx.store.lock("role:admin", "x")
        holder.acquire(time.monotonic())
        try:
            clock.tick(42 * 60)  # in the margin: another process is refreshing -> use the cache, no wait
            # a deadline far ahead, so that a wait (which must not happen) would show as a poll
            ctx.lock_deadline = time.monotonic() + 30
            polls = []
            real_sleep = locking.time.sleep
            monkeypatch.setattr(locking.time, "sleep", lambda s: polls.append(s) or real_sleep(s))
            assert p.retrieve() == first and polls == []
            clock.tick(10 * 60)  # now too old to serve: wait, then give up saying why
            ctx.lock_deadline = time.monotonic() + 0.3
            with pytest.raises(LockTimeout, match="another credproc process .* still getting credentials for role 'admin'"):
                p.retrieve()
        finally:
            holder.release()


def test_long_lived_keys_are_not_cached(ctx):
    from credproc.core.credentials import Credentials

    class Static:
        def describe(self):
            return "static"

        def retrieve(self):
            return Credentials("AKIA", "s")

    cached(ctx, Static()).retrieve()
    assert ctx.store.get("role:admin") is None


# -- issue 20, tests' strength -------------------------------------------------------------------------
def test_item25_entries_are_scoped_by_the_config_files_path_not_its_name(tmp_path):
    """one/config.toml and two/config.toml (the same file name) keep apart entries: neither serves
    nor evicts the other's."""
    from credproc.core.cache import Entry
    from credproc.core.store import EncryptedFileCache

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "key"), scope=str(tmp_path / "one" / "config.toml"))
    two = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "key"), scope=str(tmp_path / "two" / "config.toml"))
    one.put("role:admin", Entry(2**31, 2**31 - 1, "d1", "f", b"one"))
    assert two.get("role:admin") is None and one.name_for("role:admin") != two.name_for("role:admin")
    two.put("role:admin", Entry(2**31, 2**31 - 1, "d2", "f", b"two"))
    assert one.get("role:admin").body == b"one" and two.get("role:admin").body == b"two"


def test_item26_the_entry_is_read_again_after_an_uncontended_lock(tmp_path):
    """Another process may store a fresh entry between our first look and our (uncontended) lock:
    the entry is read again once the lock is held, also when acquiring it did not wait, so no second
    refresh (no second MFA prompt) happens."""
    import time as _time

    from credproc.context import Context
    from credproc.core.cache import Entry
    from credproc.core.store import EncryptedFileCache
    from credproc.sources.cached import CachedProvider
    from tests.fakes import IAM_CONFIG, CountingProvider, ScriptedTerminal

    from credproc import config as _config

    cfg = _config.parse("c.toml", IAM_CONFIG)
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "key"))
    ctx = Context(cfg, store, ScriptedTerminal(None), lock_wait=1)
    inner = CountingProvider(_time.time)
    provider = CachedProvider(inner, ctx, "role:admin", "fp", "credentials for role 'admin'")
    theirs = inner.retrieve()
    inner.calls = 0
    now = int(_time.time())
    real_lock = store.lock

    def lock(identity, what):
        held = real_lock(identity, what)
        acquire = held.acquire

        def acquire_after_their_write(deadline):
            store.put("role:admin", Entry(now + 3600, now + 2400, cfg.digest, "fp", theirs.to_process_json(),
                                          written_at=now))  # another process, just before we lock
            return acquire(deadline)

        held.acquire = acquire_after_their_write
        return held

    store.lock = lock
    got = provider.retrieve()
    assert inner.calls == 0 and got.access_key_id == theirs.access_key_id
