"""Lock files can be removed (logout --all) without two processes ever holding "the" lock: only the
holder removes one, and an acquirer that finds it locked a file no longer at the path starts over."""

import os
import threading
import time

import pytest

from credproc.core.errors import LockTimeout
from credproc.core.locking import FileLock


def test_a_waiter_on_a_removed_lock_file_never_shares_the_lock_with_a_newcomer(tmp_path):
    path = str(tmp_path / "entry.lock")
    holder = FileLock(path, "test")
    holder.acquire(time.monotonic() + 1)
    waiter = FileLock(path, "test")
    got = threading.Event()
    t = threading.Thread(target=lambda: (waiter.acquire(time.monotonic() + 10), got.set()))
    t.start()
    time.sleep(0.3)  # the waiter has opened the file and polls its lock
    holder.remove()
    assert got.wait(5)
    t.join()
    assert not os.path.exists(path) or os.stat(path).st_ino == os.fstat(waiter.fd).st_ino
    newcomer = FileLock(path, "test")
    with pytest.raises(LockTimeout):  # the waiter holds the file at the path: nobody else may
        newcomer.acquire(0)
    waiter.release()
    newcomer.acquire(0)
    newcomer.release()


def test_logout_all_removes_the_lock_files_but_not_a_busy_one(tmp_path, monkeypatch, capsys):
    from credproc import cli
    from credproc.core.cache import Entry
    from credproc.core.store import EncryptedFileCache

    for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CREDPROC_CONFIG", raising=False)
    cfg = tmp_path / "config" / "credproc" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('[idp.corp]\ntype = "iam"\nprofile = "p"\n[role.admin]\nidp = "corp"\n'
                   'arn = "arn:aws:iam::111111111111:role/Admin"\n')
    store = EncryptedFileCache(str(tmp_path / "cache" / "credproc"), str(tmp_path / "data" / "credproc" / "cache.key"),
                               scope=str(cfg))
    now = int(time.time())
    for identity in ("role:admin", "role:gone", "idp:corp"):
        store.put(identity, Entry(now + 3600, now + 2400, "d", "f", b"{}"))
        with store.lock(identity, "test") as lock:
            lock.acquire(time.monotonic() + 1)
    cache_dir = tmp_path / "cache" / "credproc"
    locks = sorted(n for n in os.listdir(cache_dir) if n.endswith(".lock"))
    assert len(locks) == 3
    busy = store.lock("role:gone", "test")
    busy.acquire(time.monotonic() + 1)  # another process refreshing keeps its lock file
    try:
        assert cli.main(["logout", "--all"]) == 0
    finally:
        busy.release()
    left = sorted(n for n in os.listdir(cache_dir) if n.endswith(".lock"))
    assert left == [os.path.basename(busy.path)]
