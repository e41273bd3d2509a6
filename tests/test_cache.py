import os
import stat
import subprocess
import sys

import pytest

from credproc.core import cache
from credproc.core.errors import LocalFileError
from credproc.core.store import EncryptedFileCache


def entry(body=b'{"Version":1}', expires=2_000_000_000, refresh=1_999_000_000):
    return cache.Entry(expires, refresh, "cfgdigest", "fp", body)


@pytest.fixture
def store(tmp_path):
    return EncryptedFileCache(str(tmp_path / "cache" / "credproc"), str(tmp_path / "data" / "credproc" / "cache.key"))


def test_round_trip_and_permissions(store):
    store.put("role:admin", entry())
    got = store.get("role:admin")
    assert (got.expires_at, got.refresh_at, got.config_digest, got.fingerprint, got.body) == \
        (2_000_000_000, 1_999_000_000, "cfgdigest", "fp", b'{"Version":1}')
    assert stat.S_IMODE(os.stat(store.key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(store.key_path)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.cache_dir).st_mode) == 0o700
    path = store.path_for("role:admin")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_key_lives_outside_the_cache_dir(store):
    store.put("role:admin", entry())
    assert not os.path.commonpath([store.key_path, store.cache_dir]) == store.cache_dir


def test_file_names_reveal_neither_role_nor_account(store):
    store.put("role:admin-111111111111", entry(body=b"secret-body-111111111111"))
    names = os.listdir(store.cache_dir)
    assert names and all("admin" not in n and "1111" not in n for n in names)
    blob = open(store.path_for("role:admin-111111111111"), "rb").read()
    assert b"111111111111" not in blob and b"secret-body" not in blob


def test_each_write_uses_a_fresh_nonce(store):
    store.put("role:a", entry())
    first = open(store.path_for("role:a"), "rb").read()
    store.put("role:a", entry())
    second = open(store.path_for("role:a"), "rb").read()
    assert first[4:16] != second[4:16] and first != second


def _corrupt(path, how):
    data = bytearray(open(path, "rb").read())
    if how == "flip":
        data[-5] ^= 0x01
    elif how == "truncate":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = bytearray()
    elif how == "garbage":
        data = bytearray(b"not a cache entry at all")
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("how", ["flip", "truncate", "empty", "garbage"])
def test_damaged_entries_are_misses_not_crashes(store, how):
    store.put("role:admin", entry())
    _corrupt(store.path_for("role:admin"), how)
    assert store.get("role:admin") is None


def test_an_entry_copied_over_another_does_not_decrypt(store):
    store.put("role:admin", entry(body=b"admin"))
    store.put("role:readonly", entry(body=b"readonly"))
    os.replace(store.path_for("role:admin"), store.path_for("role:readonly"))
    assert store.get("role:readonly") is None


def test_an_entry_under_another_key_is_a_miss(store, tmp_path):
    store.put("role:admin", entry())
    os.unlink(store.key_path)
    fresh = EncryptedFileCache(store.cache_dir, store.key_path)
    fresh.key()  # a new key
    # the old file still exists under the old name; make the new name point at it
    old_files = os.listdir(store.cache_dir)
    for name in old_files:
        if not name.endswith(".lock"):
            os.replace(os.path.join(store.cache_dir, name), fresh.path_for("role:admin"))
    assert fresh.get("role:admin") is None


def test_a_key_readable_by_others_is_refused(store):
    store.put("role:admin", entry())
    os.chmod(store.key_path, 0o644)
    with pytest.raises(LocalFileError, match="chmod 600"):
        EncryptedFileCache(store.cache_dir, store.key_path).get("role:admin")


def test_loose_cache_dir_permissions_are_tightened(store):
    os.makedirs(store.cache_dir, mode=0o755)
    os.chmod(store.cache_dir, 0o755)
    store.put("role:admin", entry())
    assert stat.S_IMODE(os.stat(store.cache_dir).st_mode) == 0o700


def test_no_temp_files_are_left_and_old_ones_are_swept(store):
    os.makedirs(store.cache_dir, mode=0o700)
    stale = os.path.join(store.cache_dir, ".tmp-deadbeef-1-abcd")
    open(stale, "wb").write(b"torn")
    os.utime(stale, (1, 1))
    store.put("role:admin", entry())
    assert [n for n in os.listdir(store.cache_dir) if n.startswith(".tmp-")] == []


def test_concurrent_first_use_agrees_on_one_key(tmp_path):
    key_path = str(tmp_path / "data" / "cache.key")
    code = ("import sys; from credproc.core.store import EncryptedFileCache as C; "
            "sys.stdout.write(C(sys.argv[1], sys.argv[2]).key().hex())")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "c"), key_path], stdout=subprocess.PIPE)
             for _ in range(12)]
    keys = {p.communicate()[0] for p in procs}
    assert len(keys) == 1
    assert bytes.fromhex(keys.pop().decode()) == open(key_path, "rb").read()


def test_header_rejects_garbage():
    with pytest.raises(ValueError):
        cache.Entry.decode(b"no header here")
