"""Per-entry inter-process locks that the OS releases when the holder dies (flock / msvcrt).

A lock file may be removed only by its holder (FileLock.remove, used by `logout --all`). That is
safe because every acquirer, once it holds the lock, checks that the file it locked is still the
one at the path, and starts over when it is not: without that check, a waiter on the unlinked file
and a newcomer on a new file could both hold "the" lock. The file holds the holder's pid, only to
tell waiters who they wait on.

The cache-hit path (fastpath.py) also waits here, before the CLI is imported: `take` waits in one
blocking flock cut short by a one-shot SIGALRM (`wait_blocking`), not a poll loop, under the same
rule (the locked file must still be the one at the path). When the entry is still not servable
after that wait, the fast path hands its lock over (`hand_over`) to the full path, whose FileLock on
the same file adopts it: a second flock on another descriptor in the same process would wait for
itself.
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

try:  # the C module behind `signal`, without its ~3 ms of enum set-up (this is on the fast path)
    import _signal as _sig
except ImportError:  # pragma: no cover - other interpreters
    import signal as _sig

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_CLOEXEC", 0)

# Locks this process already holds, taken by the fast path: (st_dev, st_ino) -> descriptor.
_handed_over = {}


class _Alarm(Exception):
    pass


_armed = [False]


def _on_alarm(signum, frame):
    if _armed[0]:  # at most once per wait, and never after it ended
        _armed[0] = False
        raise _Alarm()


def wait_blocking(fd, seconds):
    """Block in flock until this process holds fd's lock (True) or `seconds` have passed (False),
    in one system call that a one-shot SIGALRM cuts short. POSIX, main thread only: elsewhere
    signal() raises ValueError (and Windows has no setitimer: AttributeError); callers poll then.
    On False the caller must close fd: the lock may have been granted as the alarm fired."""
    if seconds <= 0:
        return _try_lock(fd)
    previous = _sig.signal(_sig.SIGALRM, _on_alarm)
    try:
        try:
            _armed[0] = True
            _sig.setitimer(_sig.ITIMER_REAL, seconds)
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        finally:
            _armed[0] = False
            _sig.setitimer(_sig.ITIMER_REAL, 0)
    except _Alarm:
        return False
    finally:
        _sig.signal(_sig.SIGALRM, previous)


def _file_id(fd):
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _same_file(fd, name, dir_fd):
    """Is the file fd has open still the one at name (in dir_fd)?"""
    try:
        there = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return _file_id(fd) == (there.st_dev, there.st_ino)


def _mark_holder(fd):
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
    except OSError:
        pass


def take(dir_fd, name, until):
    """The fast path's wait: lock `name` in the (checked) directory dir_fd, waiting until `until`
    (time.monotonic()) in blocking flocks, starting over when the file locked is no longer the one
    at the path (`logout --all` removed it). Returns the descriptor holding the lock, or None: the
    time is up, or the file cannot be opened or locked here (the full path then says why)."""
    if fcntl is None:  # pragma: no cover - Windows: the full path waits
        return None
    for _ in range(20):  # a file removed 20 times over while we waited: let the full path deal with it
        try:
            fd = os.open(name, _OPEN_FLAGS, 0o600, dir_fd=dir_fd)
        except OSError:
            return None
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode) and wait_blocking(fd, until - time.monotonic()):
                if _same_file(fd, name, dir_fd):
                    _mark_holder(fd)
                    return fd
                os.close(fd)
                continue
        except (OSError, ValueError, AttributeError):
            pass
        os.close(fd)
        return None
    return None


def hand_over(fd):
    """The fast path holds fd's lock and now takes the full path: the FileLock of this process that
    opens the same file adopts the descriptor instead of waiting for it."""
    _handed_over[_file_id(fd)] = fd


def release_handed_over():
    """Let go of a lock the fast path handed over that nothing will adopt (the full path found it
    has nothing to do under it): holding it would make the next callers wait for this one."""
    while _handed_over:
        _, fd = _handed_over.popitem()
        try:
            os.close(fd)  # releases the flock
        except OSError:
            pass


def _adopt(fd):
    """The descriptor this process already holds the lock of fd's file through, or None."""
    if not _handed_over:
        return None
    try:
        return _handed_over.pop(_file_id(fd), None)
    except OSError:
        return None


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
        means a single try. Returns True if the lock had to be waited for. The main thread waits in
        a blocking flock (wait_blocking); other threads poll every `poll` seconds."""
        waited = False
        while True:
            self._open()
            held = _adopt(self.fd)
            if held is not None:  # taken by this process' fast path, and handed over
                os.close(self.fd)
                self.fd = held
            while held is None and not _try_lock(self.fd):
                waited = True
                left = deadline - time.monotonic()
                if left <= 0:
                    holder = self._holder()
                    os.close(self.fd)
                    self.fd = None
                    raise LockTimeout(
                        f"gave up waiting for another credproc process{holder} that is still getting {self.what}",
                        hint="it may be waiting for a password, MFA code or browser login in another terminal; "
                             "finish that, then try again",
                    )
                try:  # returns once we hold the lock, or at the deadline (then the loop says so)
                    wait_blocking(self.fd, left)
                except (OSError, ValueError, AttributeError):  # not the main thread, or no setitimer: poll
                    time.sleep(min(poll, left))
            if self._still_linked():
                break
            # its holder removed the file while we waited on it: lock the one at the path now
            os.close(self.fd)
            self.fd = None
            waited = True
        _mark_holder(self.fd)
        return waited

    def _open(self):
        flags = _OPEN_FLAGS
        try:
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
