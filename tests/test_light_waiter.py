"""The light waiter (issue 22): a `credproc --role NAME` whose entry is missing or due, and whose lock
another credproc holds, waits on the fast path (no CLI, no config validation), in a blocking lock wait,
then serves only what the fast path's own checks serve; else it takes the full path holding the lock."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from credproc import fastpath
from credproc.core import cache, locking, paths
from credproc.core.errors import ConfigError, LockTimeout
from credproc.core.locking import FileLock
from credproc.core.store import EncryptedFileCache

BODY = b'{"Version":1}\n'
REPORT = ("import sys; from credproc._entry import main; rc = main(['--role', 'admin']); "
          "sys.stderr.write(repr((rc, [m for m in ('credproc.cli', 'credproc.config', 'argparse') "
          "if m in sys.modules])))")


@pytest.fixture
def home(tmp_path, monkeypatch):
    for var, sub in (("XDG_CACHE_HOME", "c"), ("XDG_DATA_HOME", "d"), ("XDG_CONFIG_HOME", "g")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
    monkeypatch.delenv("CREDPROC_ACTIVE", raising=False)
    cfg = tmp_path / "credproc.toml"
    cfg.write_bytes(b"[role.admin]\n")
    monkeypatch.setenv("CREDPROC_CONFIG", str(cfg))
    return tmp_path


def store():
    return EncryptedFileCache(paths.cache_dir(), paths.key_file(), scope=paths.config_file())


def put(identity="role:admin", refresh_in=600, body=BODY):
    now = cache.now()
    with open(paths.config_file(), "rb") as f:
        config_digest = cache.digest(f.read())
    store().put(identity, cache.Entry(now + 3600, now + refresh_in, config_digest, "fp", body))


def holder_of(identity="role:admin"):
    lock = store().lock(identity, "test")
    lock.acquire(time.monotonic() + 1)
    return lock


def waiter():
    p = subprocess.Popen([sys.executable, "-c", REPORT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=os.environ.copy())
    time.sleep(0.8)  # it has looked, found no entry, and blocks on the lock
    assert p.poll() is None, p.communicate()
    return p


def test_a_waiter_serves_what_the_holder_stored_without_ever_loading_the_cli(home):
    put("role:other")  # the key exists; role:admin has no entry
    holder = holder_of()
    p = waiter()
    put()
    released = time.monotonic()
    holder.release()
    out, err = p.communicate(timeout=30)
    assert out == BODY
    assert err.decode() == "(0, [])"
    assert time.monotonic() - released < 5  # woken by the release, not by its 45 s deadline


def test_a_waiter_whose_holder_stored_nothing_takes_the_full_path(home):
    put("role:other")
    holder = holder_of()
    p = waiter()
    holder.release()  # e.g. its sign-in failed
    out, err = p.communicate(timeout=30)
    assert out == b""
    # the full path ran (and reported this config's error: [role.admin] names no idp)
    assert err.decode().endswith(f"({ConfigError.exit_code}, ['credproc.cli', 'credproc.config', 'argparse'])")
    assert err.startswith(b"credproc: ") and b"Traceback" not in err


def test_a_waiter_never_serves_an_entry_the_fast_path_would_not(home):
    put("role:other")
    holder = holder_of()
    p = waiter()
    put(refresh_in=-1)  # what the holder stored is already due: not a hit
    holder.release()
    out, err = p.communicate(timeout=30)
    assert out == b"" and b"credproc.cli" in err


def test_an_uncontended_miss_does_not_wait(home):
    put("role:other")
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, env=os.environ.copy(), timeout=30)
    assert time.monotonic() - t < 10
    assert r.stderr.decode().endswith(f"({ConfigError.exit_code}, ['credproc.cli', 'credproc.config', 'argparse'])")


def test_a_due_entry_still_servable_waits_only_briefly_then_the_full_path_serves_it(home):
    """With good credentials cached, the full path never waits for another process' refresh (it may sit
    at an MFA prompt): the light waiter gives it DUE_WAIT seconds, then the full path serves the cache."""
    from credproc.app import store as app_store
    from credproc.config import load
    from credproc.core.credentials import Credentials

    (home / "credproc.toml").write_text('[idp.corp]\ntype = "iam"\nprofile = "p"\n[role.admin]\nidp = "corp"\n'
                                        'arn = "arn:aws:iam::111111111111:role/Admin"\n')
    cfg = load(paths.config_file())
    now = cache.now()
    body = Credentials("ASIAEXAMPLEEXAMPLE00", "s" * 40, "t" * 100, now + 3600, "111111111111").to_process_json()
    app_store(cfg).put("role:admin", cache.Entry(now + 3600, now - 1, cfg.digest, cfg.fingerprint("admin"), body))
    holder = holder_of()
    try:
        t = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "credproc", "--role", "admin"], capture_output=True,
                           env=os.environ.copy(), timeout=30)
        elapsed = time.monotonic() - t
    finally:
        holder.release()
    assert r.returncode == 0, r.stderr
    assert r.stdout == body
    assert fastpath.DUE_WAIT <= elapsed < fastpath.DUE_WAIT + 10


def test_a_credproc_started_by_credproc_does_not_wait_for_its_parent(home):
    """An mfa_command that runs credproc again while its parent holds the lock: refused at once, as before."""
    put("role:other")
    holder = holder_of()
    try:
        t = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "credproc", "--role", "admin"], capture_output=True,
                           env={**os.environ, "CREDPROC_ACTIVE": "1"}, timeout=30)
        assert time.monotonic() - t < 10
    finally:
        holder.release()
    assert r.returncode == 10 and b"refusing to recurse" in r.stderr


def test_try_serve_never_waits_or_takes_a_lock(home):
    put("role:other")
    holder = holder_of()
    try:
        t = time.monotonic()
        assert fastpath.try_serve(["--role", "admin"]) is False
        assert time.monotonic() - t < 5  # a wait would be the lock's 45 s
    finally:
        holder.release()


# -- locking.take / hand_over, in this process (take waits in the main thread: SIGALRM) --------------

@pytest.fixture
def lockdir(tmp_path):
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def test_take_blocks_until_the_holder_releases(lockdir):
    path, dfd = lockdir
    holder = FileLock(str(path / "e.lock"), "test")
    holder.acquire(time.monotonic())
    threading.Timer(0.3, holder.release).start()
    before = signal.getsignal(signal.SIGALRM)
    t = time.monotonic()
    fd = locking.take(dfd, "e.lock", t + 10)
    assert fd is not None and 0.25 < time.monotonic() - t < 5
    assert signal.getsignal(signal.SIGALRM) == before
    assert os.pread(fd, 16, 0) == str(os.getpid()).encode()  # waiters are told who they wait on
    os.close(fd)


def test_take_gives_up_at_its_deadline_and_leaves_no_alarm_behind(lockdir):
    path, dfd = lockdir
    holder = FileLock(str(path / "e.lock"), "test")
    holder.acquire(time.monotonic())
    try:
        before = signal.getsignal(signal.SIGALRM)
        t = time.monotonic()
        assert locking.take(dfd, "e.lock", t + 0.3) is None
        assert 0.25 < time.monotonic() - t < 5
        assert signal.getsignal(signal.SIGALRM) == before
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        holder.release()


def test_take_starts_over_when_the_lock_file_it_waited_on_was_removed(lockdir):
    """The lock-removal rule (tests/test_lock_removal.py) on the light path too."""
    path, dfd = lockdir
    lock_path = str(path / "e.lock")
    holder = FileLock(lock_path, "test")
    holder.acquire(time.monotonic())
    threading.Timer(0.3, holder.remove).start()  # logout --all: unlinks while holding, then releases
    fd = locking.take(dfd, "e.lock", time.monotonic() + 10)
    assert fd is not None
    assert os.fstat(fd).st_ino == os.stat(lock_path).st_ino  # the file now at the path, not the removed one
    newcomer = FileLock(lock_path, "test")
    with pytest.raises(LockTimeout):
        newcomer.acquire(0)
    os.close(fd)
    newcomer.acquire(0)
    newcomer.release()


def test_the_full_path_adopts_the_lock_the_fast_path_handed_over(lockdir):
    path, dfd = lockdir
    fd = locking.take(dfd, "e.lock", time.monotonic())
    assert fd is not None
    locking.hand_over(fd)
    mine = FileLock(str(path / "e.lock"), "test")
    assert mine.acquire(time.monotonic()) is False  # at once: a second flock would have waited for ourselves
    assert mine.fd == fd
    other = FileLock(str(path / "e.lock"), "test")
    with pytest.raises(LockTimeout):
        other.acquire(0)
    mine.release()
    other.acquire(0)
    other.release()


def test_the_full_path_waits_in_a_blocking_call_in_the_main_thread(lockdir):
    path, dfd = lockdir
    holder = FileLock(str(path / "e.lock"), "test")
    holder.acquire(time.monotonic())
    threading.Timer(0.3, holder.release).start()
    mine = FileLock(str(path / "e.lock"), "test")
    t = time.monotonic()
    assert mine.acquire(t + 10, poll=30) is True  # a poll of 30 s would miss the release by far
    assert time.monotonic() - t < 5
    mine.release()
