"""The Linux kernel's per-user keyring (@u), through the keyctl system calls (see keyrings(7)).

Used to keep the unwrapped cache key for a limited time, so that a cache hit with
`cache_key = "keyring"` costs a few system calls instead of a round trip to the Secret Service
daemon. The key is a "user" key in the user keyring: it lives in kernel memory (never on disk, gone
at reboot), only processes running as the same user can read it, and the kernel drops it after its
timeout. Everything here returns None/False when the kernel keyring cannot be used (not Linux, an
unknown architecture, keyctl blocked by a container's seccomp filter): the caller then goes to the
OS keyring.

On the cache-hit path: imports only os and, when first used, ctypes (about 2 ms).
"""

import os
import sys

# add_key, keyctl system call numbers by architecture (asm/unistd.h)
_SYSCALLS = {
    "x86_64": (248, 250), "aarch64": (217, 219), "riscv64": (217, 219), "loongarch64": (217, 219),
    "i386": (286, 288), "i686": (286, 288), "armv7l": (309, 311), "armv6l": (309, 311),
    "ppc64le": (269, 271), "ppc64": (269, 271), "s390x": (278, 280),
}
KEY_SPEC_USER_KEYRING = -4
KEYCTL_SETPERM = 5
KEYCTL_UNLINK = 9
KEYCTL_SEARCH = 10
KEYCTL_READ = 11
KEYCTL_SET_TIMEOUT = 15
# possessor: everything; the user (any process of ours, possessing the key or not): view, read,
# search. Group and others: nothing.
_PERM = 0x3F000000 | 0x00010000 | 0x00020000 | 0x00080000

_libc = None


def _calls():
    global _libc
    if not sys.platform.startswith("linux"):  # (os.uname does not exist on Windows)
        return None
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        return None
    if _libc is None:
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
        except (OSError, AttributeError):
            return None
        _libc = (libc, ctypes)
    return _libc + numbers


def _keyctl(op, *args):
    calls = _calls()
    if calls is None:
        return -1
    libc, ctypes, _, keyctl = calls
    conv = [a if isinstance(a, bytes) or a is None else ctypes.c_long(a) for a in args]
    return libc.syscall(ctypes.c_long(keyctl), ctypes.c_long(op), *conv)


def read(description, size=64):
    """The payload of the user key `description` in @u, or None."""
    calls = _calls()
    if calls is None:
        return None
    libc, ctypes, _, _ = calls
    serial = _keyctl(KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", description.encode(), 0)
    if serial < 0:
        return None
    buf = ctypes.create_string_buffer(size)
    n = libc.syscall(ctypes.c_long(calls[3]), ctypes.c_long(KEYCTL_READ), ctypes.c_long(serial), buf,
                     ctypes.c_long(size))
    if n < 0 or n > size:
        return None
    return buf.raw[:n]


def store(description, payload, timeout):
    """Add (or replace) the user key `description` in @u, readable by this user only, dropped by
    the kernel after `timeout` seconds. False when the kernel keyring is not available."""
    calls = _calls()
    if calls is None:
        return False
    libc, ctypes, add_key, _ = calls
    serial = libc.syscall(ctypes.c_long(add_key), b"user", description.encode(), payload, ctypes.c_long(len(payload)),
                          ctypes.c_long(KEY_SPEC_USER_KEYRING))
    if serial < 0:
        return False
    if _keyctl(KEYCTL_SETPERM, serial, _PERM) < 0 or _keyctl(KEYCTL_SET_TIMEOUT, serial, int(timeout)) < 0:
        _keyctl(KEYCTL_UNLINK, serial, KEY_SPEC_USER_KEYRING)
        return False
    return True


def remove(description):
    serial = _keyctl(KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", description.encode(), 0)
    if serial < 0:
        return False
    return _keyctl(KEYCTL_UNLINK, serial, KEY_SPEC_USER_KEYRING) >= 0


def available():
    """Whether keyctl works here (a search for a key that does not exist fails with ENOKEY, not
    EPERM/ENOSYS)."""
    calls = _calls()
    if calls is None:
        return False
    ctypes = calls[1]
    if _keyctl(KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", b"credproc:probe", 0) >= 0:
        return True
    import errno

    return ctypes.get_errno() in (errno.ENOKEY, errno.EKEYEXPIRED, errno.EKEYREVOKED)
