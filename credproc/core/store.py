"""EncryptedFileCache: key management, atomic writes, per-entry locks (the write side of cache.py).

Each credproc directory (the cache dir, the key's data dir) is a PrivateDir: opened once without
following a symlink, its owner and mode checked (and tightened) on the open handle, and every later
operation done relative to that handle (dir_fd), so nothing can be swapped in underneath between
the check and the use. Missing parents are created 0700, whatever the umask.
"""

import errno
import os
import stat
import time

from . import cache, log, paths
from .errors import LocalFileError
from .locking import FileLock

_TMP_PREFIX = ".tmp-"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# Linux and the BSDs/macOS: directory handles and *at() calls. Elsewhere (Windows) paths are used.
_BY_HANDLE = hasattr(os, "O_DIRECTORY") and os.open in os.supports_dir_fd and os.name == "posix"


def _make_parents_private(path):
    """Create the missing directories of path, each 0700 (os.makedirs gives parents the umask's
    mode: under umask 000 that was 0777 ~/.cache and ~/.local/share)."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass


class PrivateDir:
    """One directory credproc owns, used through one handle checked once."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def open(self, create=True):
        """Open and check the directory, once (creating it and its parents 0700 if create): True,
        or False if it does not exist and create is False. Without dir_fd support (Windows) the
        same checks are made by path and later operations use paths."""
        if self.fd is not None:
            return True
        try:
            if create:
                _make_parents_private(self.path)
            if not _BY_HANDLE:
                if not os.path.isdir(self.path):
                    return False
                self._check(os.stat(self.path), None)
                return True
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                if not create:
                    return False
                raise
            except NotADirectoryError:  # O_DIRECTORY|O_NOFOLLOW on a symlink: ENOTDIR (or ELOOP)
                raise LocalFileError(f"{self.path} is a symbolic link or not a directory",
                                     hint="credproc keeps its files in a real directory only you own; remove it") from None
            try:
                self._check(os.fstat(fd), fd)
            except BaseException:
                os.close(fd)
                raise
            self.fd = fd
            return True
        except LocalFileError:
            raise
        except OSError as e:
            if e.errno == errno.ELOOP:  # a symlink at the last component
                raise LocalFileError(f"{self.path} is a symbolic link",
                                     hint="credproc keeps its files in a real directory only you own; remove it") from None
            raise LocalFileError(f"cannot create directory {self.path}: {e.strerror}",
                                 hint=paths.unwritable_hint(self.path, e)) from None

    def _check(self, st, fd):
        if not stat.S_ISDIR(st.st_mode):
            raise LocalFileError(f"{self.path} is not a directory")
        if os.name == "posix":
            if st.st_uid != os.getuid():
                raise LocalFileError(f"{self.path} is owned by another user",
                                     hint="credproc keeps its files in directories only you own")
            if stat.S_IMODE(st.st_mode) & 0o077:
                if fd is not None:
                    os.fchmod(fd, 0o700)
                else:
                    os.chmod(self.path, 0o700)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self):  # serve builds a store per request: its handles must not pile up
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- operations relative to the handle ------------------------------------------------------
    def _name(self, name):
        """(path argument, dir_fd) for an *at() call."""
        return (name, self.fd) if self.fd is not None else (os.path.join(self.path, name), None)

    def join(self, name):
        return os.path.join(self.path, name)

    def open_file(self, name, flags, mode=0o600):
        path, dfd = self._name(name)
        return os.open(path, flags | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode, dir_fd=dfd)

    def read(self, name, cap=cache.MAX_ENTRY_BYTES):
        path, dfd = self._name(name)
        return cache.read_file(path, cap, dir_fd=dfd)

    def replace(self, src, dst):
        s, sd = self._name(src)
        d, dd = self._name(dst)
        os.replace(s, d, src_dir_fd=sd, dst_dir_fd=dd)

    def link(self, src, dst):
        s, sd = self._name(src)
        d, dd = self._name(dst)
        os.link(s, d, src_dir_fd=sd, dst_dir_fd=dd)

    def unlink(self, name):
        path, dfd = self._name(name)
        os.unlink(path, dir_fd=dfd)

    def lstat(self, name):
        path, dfd = self._name(name)
        return os.stat(path, dir_fd=dfd, follow_symlinks=False)

    def exists(self, name):
        try:
            self.lstat(name)
            return True
        except FileNotFoundError:
            return False

    def listdir(self):
        return os.listdir(self.fd if self.fd is not None else self.path)

    def fsync(self):
        """Make a rename in the directory durable (best effort)."""
        try:
            if self.fd is not None:
                os.fsync(self.fd)
            elif hasattr(os, "O_DIRECTORY"):
                dfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError:
            pass

    def lock(self, name, what):
        path, dfd = self._name(name)
        lock = FileLock(self.join(name), what, dir_fd=dfd)
        lock.directory = self  # the handle must outlive the lock, even when the store does not
        return lock

    def atomic_write(self, name, data, mode=0o600, before_replace=None):
        """temp file (same directory) -> write -> fsync -> rename -> fsync dir. A crash at any point
        leaves the old file or the new one, never a torn one. `before_replace()` may raise to
        abandon the write at the last moment (e.g. the file changed meanwhile)."""
        tmp = f"{_TMP_PREFIX}{name}-{os.getpid()}-{os.urandom(4).hex()}"
        fd = self.open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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
            self.replace(tmp, name)
        except BaseException:
            try:
                self.unlink(tmp)
            except OSError:
                pass
            raise
        self.fsync()


def ensure_private_dir(path):
    """Create path (parents 0700) and check it: a real directory, ours, tightened to 0700."""
    d = PrivateDir(path)
    try:
        d.open()
    finally:
        d.close()


def atomic_write(path, data, mode=0o600, before_replace=None):
    """The same, by path, for a file in a directory that is not credproc's (~/.aws/config): the
    directory is used as it is (not opened as a checked handle, not tightened)."""
    PrivateDir(os.path.dirname(path) or ".").atomic_write(os.path.basename(path), data, mode, before_replace)


class EncryptedFileCache:
    """scope: the configuration file this run uses; every identity is bound to it (cache.scoped),
    so two config files never evict each other's entries.
    key_mode: [settings] cache_key ("file" or "keyring"; a key file in the other form is replaced,
    starting a new cache), or None to use the key file in whichever form it is (commands that only
    read or delete entries). key_fallback "file": with cache_key = "keyring" and no keyring here,
    use a plain key in keywrap.FALLBACK_KEY beside the key file (a separate cache)."""

    def __init__(self, cache_dir, key_path, scope=None, key_mode=None, key_fallback="none"):
        self.cache_dir = cache_dir
        self.key_path = key_path
        self.scope = scope
        self.key_mode = key_mode
        self.key_fallback = key_fallback
        self.dir = PrivateDir(cache_dir)
        self.key_dir = PrivateDir(os.path.dirname(key_path))
        self._key_name = os.path.basename(key_path)
        self._key = None

    def _id(self, identity):
        return identity if self.scope is None else cache.scoped(identity, self.scope)

    # -- the key ---------------------------------------------------------------------------
    def key(self, create=True):
        if self._key is None:
            try:
                if not self.key_dir.open(create=create):
                    return None
                self._key = self._load_key(create)
            except ValueError as e:
                raise LocalFileError(str(e)) from None
            except OSError as e:
                raise LocalFileError(f"cannot read the cache key {self.key_path}: {e.strerror}") from None
        return self._key

    def _read_key_file(self, name):
        """The bytes of a key file in the key directory (through its checked handle)."""
        path, dfd = self.key_dir._name(name)
        return cache.read_key_file(path, dir_fd=dfd, display=self.key_dir.join(name))

    def _load_key(self, create):
        if self.key_mode != "keyring":
            return self._plain_key(self._key_name, create)
        from .errors import KeyringUnavailable

        try:
            return self._keyring_key(create)
        except KeyringUnavailable as e:
            if self.key_fallback != "file":
                raise
            log.debug("%s; using the fallback cache key (cache_key_fallback = \"file\")", e.message)
            from .keywrap import FALLBACK_KEY

            return self._plain_key(FALLBACK_KEY, create)

    def _plain_key(self, name, create):
        from . import keywrap

        try:
            blob = self._read_key_file(name)
        except FileNotFoundError:
            return self._create_key(name) if create else None
        if not keywrap.is_wrapped(blob):
            return cache.check_key(self.key_dir.join(name), blob)
        if self.key_mode is None:
            try:
                return keywrap.unwrap(blob)
            except keywrap.WrapLost as e:
                log.debug("cache key unusable (%s)", e)
                return None
        # cache_key = "file" now: the wrapped key gives way to a plain one (and a new cache)
        return self._replace_key(name, blob, wrapped=False) if create else None

    def _keyring_key(self, create):
        from . import keywrap

        try:
            blob = self._read_key_file(self._key_name)
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
        return self._replace_key(self._key_name, blob, wrapped=True)

    def _replace_key(self, name, seen, wrapped, new_wrapping=False):
        """A new key (wrapped or plain) in `name`, unless another process already replaced `seen`.
        Entries under the old key are deleted: that key may survive in backups. new_wrapping: the
        OS keyring's wrapping key is replaced too (see keywrap.wrap_new)."""
        from . import keywrap

        self.key_dir.open()
        with self.key_dir.lock(name + ".lock", "the cache key") as lock:
            lock.acquire(time.monotonic() + 10)
            try:
                current = self._read_key_file(name)
            except FileNotFoundError:
                current = None
            if current != seen and current is not None and keywrap.is_wrapped(current) == wrapped:
                return keywrap.unwrap(current) if wrapped else cache.check_key(self.key_dir.join(name), current)
            if wrapped:
                key, data = keywrap.wrap_new(new_wrapping=new_wrapping)
            else:
                key = data = os.urandom(cache.KEY_BYTES)
            try:
                self.key_dir.atomic_write(name, data)
            except OSError as e:
                raise LocalFileError(f"cannot write the cache key {self.key_dir.join(name)}: {e.strerror}",
                                     hint=paths.unwritable_hint(self.key_dir.join(name), e)) from None
            if wrapped:
                keywrap.remember(data, key)
            if current is not None:
                if keywrap.is_wrapped(current):
                    keywrap.forget(current)
                self._wipe_entries()
            log.debug("new %s cache key at %s", "keyring-wrapped" if wrapped else "plain", self.key_dir.join(name))
            return key

    def _wipe_entries(self):
        try:
            if not self.dir.open(create=False):
                return
            names = self.dir.listdir()
        except (OSError, LocalFileError):
            return
        for name in names:
            if len(name) == 40 and all(c in "0123456789abcdef" for c in name):
                try:
                    self.dir.unlink(name)
                except OSError:
                    pass

    def _create_key(self, name):
        """Atomically: the full key is written to a private temp file, then linked into place;
        if another process won the race, its key is used."""
        self.key_dir.open()
        with self.key_dir.lock(name + ".lock", "the cache key") as lock:
            lock.acquire(time.monotonic() + 10)
            return self._create_key_locked(name)

    def _create_key_locked(self, name, replace=False):
        d = self.key_dir
        display = d.join(name)
        tmp = f"{_TMP_PREFIX}key-{os.getpid()}-{os.urandom(4).hex()}"
        key = os.urandom(cache.KEY_BYTES)
        try:
            fd = d.open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
            if replace:
                d.replace(tmp, name)
                d.fsync()
                return key
            try:
                d.link(tmp, name)
            except FileExistsError:
                log.debug("another process created the cache key first; using it")
                return cache.check_key(display, self._read_key_file(name))
            except OSError:  # no hard links (some network or FAT file systems)
                if d.exists(name):
                    return cache.check_key(display, self._read_key_file(name))
                d.replace(tmp, name)
            d.fsync()
            log.debug("created a new cache key at %s", display)
            return key
        except ValueError as e:
            raise LocalFileError(str(e)) from None
        except OSError as e:
            raise LocalFileError(f"cannot create the cache key {display}: {e.strerror}",
                                 hint=paths.unwritable_hint(display, e)) from None
        finally:
            try:
                d.unlink(tmp)
            except OSError:
                pass

    def rotate_key(self):
        """Replace the key with a new one (logout --all): every entry written before, including
        copies of them restored later, no longer decrypts. No-op without a key; an unsafe or
        damaged key is replaced too. A keyring-wrapped key is replaced by a new one wrapped under a
        new wrapping key (the OS keyring's old one would still unwrap a key file restored from
        before), and the kernel keyring's copy of the old one is dropped."""
        from . import keywrap

        try:
            if not self.key_dir.open(create=False) or not self.key_dir.exists(self._key_name):
                return False
            try:
                current = self._read_key_file(self._key_name)
            except (OSError, ValueError):
                current = None
        except OSError as e:
            raise LocalFileError(f"cannot replace the cache key {self.key_path}: {e.strerror}") from None
        if current is not None and keywrap.is_wrapped(current):
            self._key = self._replace_key(self._key_name, current, wrapped=True, new_wrapping=True)
        else:
            with self.key_dir.lock(self._key_name + ".lock", "the cache key") as lock:
                lock.acquire(time.monotonic() + 10)
                self._key = self._create_key_locked(self._key_name, replace=True)
        log.debug("replaced the cache key at %s", self.key_path)
        return True

    # -- entries ---------------------------------------------------------------------------
    def name_for(self, identity):
        return cache.entry_filename(self.key(), self._id(identity))

    def path_for(self, identity):
        return os.path.join(self.cache_dir, self.name_for(identity))

    def get(self, identity, quiet=False):
        """The entry, or None: missing, unreadable, truncated, tampered with or under another key.
        quiet: no debug line for a miss (a second look, already logged once)."""
        key = self.key(create=False)
        if key is None:
            return None
        scoped = self._id(identity)
        name = cache.entry_filename(key, scoped)
        try:
            if not self.dir.open(create=False):
                log.debug("cache miss for %s: no cache directory", identity)
                return None
            blob = self.dir.read(name)
        except FileNotFoundError:
            if not quiet:
                log.debug("cache miss for %s: no entry", identity)
            return None
        except OSError as e:
            if not quiet:
                log.debug("cache miss for %s: cannot read %s: %s", identity, self.dir.join(name), e.strerror)
            return None
        try:
            return cache.decrypt(key, scoped, blob)
        except Exception as e:  # InvalidTag, ValueError...: unusable, never served
            if not quiet:
                log.debug("cache miss for %s: entry unusable (%s): will be replaced", identity, type(e).__name__)
            return None

    def present(self, identity):
        """Whether a file is there for this identity (get() may still find it unusable: status then
        says "unreadable", not "none")."""
        key = self.key(create=False)
        if key is None:
            return False
        try:
            return bool(self.dir.open(create=False)) and self.dir.exists(cache.entry_filename(key, self._id(identity)))
        except (OSError, LocalFileError):
            return False

    def put(self, identity, entry):
        self.dir.open()
        name = self.name_for(identity)
        try:
            self.dir.atomic_write(name, cache.encrypt(self.key(), self._id(identity), entry))
        except OSError as e:
            raise LocalFileError(f"cannot write the cache entry {self.dir.join(name)}: {e.strerror}",
                                 hint=paths.unwritable_hint(self.dir.join(name), e)) from None
        self._sweep_temps()

    def delete(self, identity):
        key = self.key(create=False)
        if key is None:
            return False
        try:
            if not self.dir.open(create=False):
                return False
            self.dir.unlink(cache.entry_filename(key, self._id(identity)))
            return True
        except FileNotFoundError:
            return False

    def lock(self, identity, what):
        self.dir.open()
        return self.dir.lock(self.name_for(identity) + ".lock", what)

    def _sweep_temps(self, older_than=600):
        """Remove temp files left by a process killed between create and rename."""
        try:
            names = self.dir.listdir()
        except OSError:
            return
        limit = time.time() - older_than
        for name in names:
            if name.startswith(_TMP_PREFIX):
                try:
                    if self.dir.lstat(name).st_mtime < limit:
                        self.dir.unlink(name)
                except OSError:
                    pass
