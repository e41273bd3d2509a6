"""EncryptedFileCache: key management, atomic writes, per-entry locks (the write side of cache.py)."""

import os
import stat
import time

from . import cache, log
from .errors import LocalFileError
from .locking import FileLock

_TMP_PREFIX = ".tmp-"


def ensure_private_dir(path):
    """Create path (and parents) with mode 0700; tighten it if we own it and it is looser."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
        if os.name == "posix":
            if st.st_uid != os.getuid():
                raise LocalFileError(f"{path} is owned by another user", hint="credproc keeps its files in directories only you own")
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(path, 0o700)
    except LocalFileError:
        raise
    except OSError as e:
        raise LocalFileError(f"cannot create directory {path}: {e.strerror}") from None


def atomic_write(path, data, mode=0o600, before_replace=None):
    """temp file (same directory) -> write -> fsync -> rename -> fsync dir. A crash at any point
    leaves the old file or the new one, never a torn one. `before_replace()` may raise to abandon
    the write at the last moment (e.g. the file changed meanwhile)."""
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f"{_TMP_PREFIX}{os.path.basename(path)}-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            os.write(fd, data)
            if mode != 0o600 and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_replace:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):
        try:
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass


class EncryptedFileCache:
    """key_mode: [settings] cache_key ("file" or "keyring"; a key file in the other form is replaced,
    starting a new cache), or None to use the key file in whichever form it is (commands that only
    read or delete entries). key_fallback "file": with cache_key = "keyring" and no keyring here,
    use a plain key in keywrap.FALLBACK_KEY beside the key file (a separate cache)."""

    def __init__(self, cache_dir, key_path, key_mode=None, key_fallback="none"):
        self.cache_dir = cache_dir
        self.key_path = key_path
        self.key_mode = key_mode
        self.key_fallback = key_fallback
        self._key = None

    # -- the key ---------------------------------------------------------------------------
    def key(self, create=True):
        if self._key is None:
            try:
                self._key = self._load_key(create)
            except ValueError as e:
                raise LocalFileError(str(e)) from None
            except OSError as e:
                raise LocalFileError(f"cannot read the cache key {self.key_path}: {e.strerror}") from None
        return self._key

    def _load_key(self, create):
        if self.key_mode != "keyring":
            return self._plain_key(self.key_path, create)
        from .errors import KeyringUnavailable

        try:
            return self._keyring_key(create)
        except KeyringUnavailable as e:
            if self.key_fallback != "file":
                raise
            log.debug("%s; using the fallback cache key (cache_key_fallback = \"file\")", e.message)
            from .keywrap import FALLBACK_KEY

            return self._plain_key(os.path.join(os.path.dirname(self.key_path), FALLBACK_KEY), create)

    def _plain_key(self, path, create):
        from . import keywrap

        try:
            blob = cache.read_key_file(path)
        except FileNotFoundError:
            return self._create_key(path) if create else None
        if not keywrap.is_wrapped(blob):
            return cache.check_key(path, blob)
        if self.key_mode is None:
            try:
                return keywrap.unwrap(blob)
            except keywrap.WrapLost as e:
                log.debug("cache key unusable (%s)", e)
                return None
        # cache_key = "file" now: the wrapped key gives way to a plain one (and a new cache)
        return self._replace_key(path, blob, wrapped=False) if create else None

    def _keyring_key(self, create):
        from . import keywrap

        try:
            blob = cache.read_key_file(self.key_path)
        except FileNotFoundError:
            blob = None
        if blob is not None and keywrap.is_wrapped(blob):
            try:
                return keywrap.unwrap(blob)
            except keywrap.WrapLost as e:
                log.debug("%s: starting a new cache under a new key", e)
        else:
            if blob is not None:
                cache.check_key(self.key_path, blob)  # a plain key: cache_key was "file" until now
            # a new wrapped key will be needed: find out now, not after a refresh (an MFA prompt)
            from . import oskeyring

            oskeyring.backend()
        if not create:
            return None
        return self._replace_key(self.key_path, blob, wrapped=True)

    def _replace_key(self, path, seen, wrapped):
        """A new key (wrapped or plain) at `path`, unless another process already replaced `seen`.
        Entries under the old key are deleted: that key may survive in backups."""
        from . import keywrap

        ensure_private_dir(os.path.dirname(path))
        with FileLock(path + ".lock", "the cache key") as lock:
            lock.acquire(time.monotonic() + 10)
            try:
                current = cache.read_key_file(path)
            except FileNotFoundError:
                current = None
            if current != seen and current is not None and keywrap.is_wrapped(current) == wrapped:
                return keywrap.unwrap(current) if wrapped else cache.check_key(path, current)
            if wrapped:
                key, data = keywrap.wrap_new()
            else:
                key = data = os.urandom(cache.KEY_BYTES)
            try:
                atomic_write(path, data)
            except OSError as e:
                raise LocalFileError(f"cannot write the cache key {path}: {e.strerror}") from None
            if wrapped:
                keywrap.remember(data, key)
            if current is not None:
                if keywrap.is_wrapped(current):
                    keywrap.forget(current)
                self._wipe_entries()
            log.debug("new %s cache key at %s", "keyring-wrapped" if wrapped else "plain", path)
            return key

    def _wipe_entries(self):
        try:
            names = os.listdir(self.cache_dir)
        except OSError:
            return
        for name in names:
            if len(name) == 40 and all(c in "0123456789abcdef" for c in name):
                try:
                    os.unlink(os.path.join(self.cache_dir, name))
                except OSError:
                    pass

    def _create_key(self, path=None):
        """Atomically: the full key is written to a private temp file, then linked into place;
        if another process won the race, its key is used."""
        path = path or self.key_path
        directory = os.path.dirname(path)
        ensure_private_dir(directory)
        with FileLock(path + ".lock", "the cache key") as lock:
            lock.acquire(time.monotonic() + 10)
            return self._create_key_locked(directory, path)

    def _create_key_locked(self, directory, path=None):
        path = path or self.key_path
        tmp = os.path.join(directory, f"{_TMP_PREFIX}key-{os.getpid()}-{os.urandom(4).hex()}")
        key = os.urandom(cache.KEY_BYTES)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                log.debug("another process created the cache key first; using it")
                return cache.read_key(path)
            except OSError:  # no hard links (some network or FAT file systems)
                if os.path.exists(path):
                    return cache.read_key(path)
                os.replace(tmp, path)
            log.debug("created a new cache key at %s", path)
            return key
        except ValueError as e:
            raise LocalFileError(str(e)) from None
        except OSError as e:
            raise LocalFileError(f"cannot create the cache key {path}: {e.strerror}") from None
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    # -- entries ---------------------------------------------------------------------------
    def path_for(self, identity):
        return os.path.join(self.cache_dir, cache.entry_filename(self.key(), identity))

    def get(self, identity, quiet=False):
        """The entry, or None: missing, unreadable, truncated, tampered with or under another key.
        quiet: no debug line for a miss (a second look, already logged once)."""
        key = self.key(create=False)
        if key is None:
            return None
        path = os.path.join(self.cache_dir, cache.entry_filename(key, identity))
        try:
            blob = cache.read_file(path)
        except FileNotFoundError:
            if not quiet:
                log.debug("cache miss for %s: no entry", identity)
            return None
        except OSError as e:
            if not quiet:
                log.debug("cache miss for %s: cannot read %s: %s", identity, path, e.strerror)
            return None
        try:
            return cache.decrypt(key, identity, blob)
        except Exception as e:  # InvalidTag, ValueError...: unusable, never served
            if not quiet:
                log.debug("cache miss for %s: entry unusable (%s): will be replaced", identity, type(e).__name__)
            return None

    def put(self, identity, entry):
        ensure_private_dir(self.cache_dir)
        path = self.path_for(identity)
        try:
            atomic_write(path, cache.encrypt(self.key(), identity, entry))
        except OSError as e:
            raise LocalFileError(f"cannot write the cache entry {path}: {e.strerror}") from None
        self._sweep_temps()

    def delete(self, identity):
        key = self.key(create=False)
        if key is None:
            return False
        try:
            os.unlink(os.path.join(self.cache_dir, cache.entry_filename(key, identity)))
            return True
        except FileNotFoundError:
            return False

    def lock(self, identity, what):
        ensure_private_dir(self.cache_dir)
        return FileLock(self.path_for(identity) + ".lock", what)

    def _sweep_temps(self, older_than=600):
        """Remove temp files left by a process killed between create and rename."""
        try:
            names = os.listdir(self.cache_dir)
        except OSError:
            return
        limit = time.time() - older_than
        for name in names:
            if name.startswith(_TMP_PREFIX):
                p = os.path.join(self.cache_dir, name)
                try:
                    if os.lstat(p).st_mtime < limit:
                        os.unlink(p)
                except OSError:
                    pass
