"""Per-entry inter-process locks that the OS releases when the holder dies (flock / msvcrt).

A lock file may be removed only by its holder (FileLock.remove, used by `logout --all`). That is
safe because every acquirer, once it holds the lock, checks that the file it locked is still the
one at the path, and starts over when it is not: without that check, a waiter on the unlinked file
and a newcomer on a new file could both hold "the" lock. The file holds the holder's pid, only to
tell waiters who they wait on.
"""

import os
import stat
import time

from .errors import LocalFileError, LockTimeout

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt


def _try_lock(fd):
    try:
        if fcntl:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False


class FileLock:
    def __init__(self, path, what, dir_fd=None):
        """dir_fd: open the lock file by its name in that (already checked) directory."""
        self.path = path
        self.what = what  # for messages: "credentials for role 'admin'"
        self.dir_fd = dir_fd
        self.directory = None  # what owns dir_fd (a store.PrivateDir), kept alive with the lock
        self.fd = None

    def acquire(self, deadline, poll=0.05):
        """Wait until `deadline` (time.monotonic()); raise LockTimeout after it. A deadline in the past
        means a single try. Returns True if the lock had to be waited for."""
        waited = False
        while True:
            self._open()
            while not _try_lock(self.fd):
                waited = True
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    os.close(self.fd)
                    self.fd = None
                    raise LockTimeout(
                        f"gave up waiting for another credproc process{holder} that is still getting {self.what}",
                        hint="it may be waiting for a password, MFA code or browser login in another terminal; "
                             "finish that, then try again",
                    )
                time.sleep(poll)
            if self._still_linked():
                break
            # its holder removed the file while we waited on it: lock the one at the path now
            os.close(self.fd)
            self.fd = None
            waited = True
        try:
            os.ftruncate(self.fd, 0)
            os.write(self.fd, str(os.getpid()).encode())
        except OSError:
            pass
        return waited

    def _open(self):
        try:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
                | getattr(os, "O_CLOEXEC", 0)
            if self.dir_fd is not None:
                self.fd = os.open(os.path.basename(self.path), flags, 0o600, dir_fd=self.dir_fd)
            else:
                self.fd = os.open(self.path, flags, 0o600)
            if not stat.S_ISREG(os.fstat(self.fd).st_mode):  # a FIFO or device planted as the lock file
                os.close(self.fd)
                self.fd = None
                raise OSError(22, "not a regular file")
        except OSError as e:
            from .paths import unwritable_hint

            raise LocalFileError(f"cannot open the lock file {self.path}: {e.strerror}",
                                 hint=unwritable_hint(self.path, e)) from None

    def _stat_path(self):
        if self.dir_fd is not None:
            return os.stat(os.path.basename(self.path), dir_fd=self.dir_fd, follow_symlinks=False)
        return os.stat(self.path, follow_symlinks=False)

    def _still_linked(self):
        """Is the file we hold still the one at the path?"""
        if not fcntl:  # pragma: no cover - Windows: an open file cannot be removed there
            return True
        try:
            here, there = os.fstat(self.fd), self._stat_path()
        except FileNotFoundError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def remove(self):
        """Unlink the lock file while holding it, then release it (see the module docstring)."""
        try:
            if self.dir_fd is not None:
                os.unlink(os.path.basename(self.path), dir_fd=self.dir_fd)
            else:
                os.unlink(self.path)
        except OSError:
            pass
        self.release()

    def _holder(self):
        try:
            pid = os.pread(self.fd, 16, 0).decode().strip() if hasattr(os, "pread") else ""
            return f" (pid {int(pid)})" if pid else ""
        except (OSError, ValueError):
            return ""

    def release(self):
        if self.fd is not None:
            try:
                if fcntl:
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
