"""The encrypted credential cache.

One file per entry in the cache dir, named by a keyed hash of the entry's identity (so names reveal
no role or account), holding  MAGIC | nonce(12) | AES-256-GCM(plaintext, aad=MAGIC+identity).
Binding the identity as associated data means an entry copied over another one's file fails to
decrypt. Any entry that does not decrypt is a miss: never served, never a crash.

Plaintext: one ASCII header line, then the body.
    "<expires_at> <refresh_at> <written_at> <config_digest> <fingerprint>\\n" + body
For credentials the body is the exact credential_process document, so a cache hit decrypts and
writes it without importing json. `config_digest` is a hash of the config file's bytes when the entry
was written (the hit path compares it instead of parsing TOML); `fingerprint` is a hash of the
resolved settings the entry was made from (checked when the config file changed). An entry
written "in the future" means the clock went backwards: it is not trusted (see `usable`).

This module is on the cache-hit path: module-level imports are os and time only.
"""

import os
import stat
import time

MAGIC = b"CPC1"
KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"credproc-cache-v1\0"
MAX_ENTRY_BYTES = 2 * 1024 * 1024  # entries are a few KiB; an OIDC issuer's metadata at most ~1 MiB
MAX_CONFIG_BYTES = 1024 * 1024
# Never follow a symlink at the last component, never block on a FIFO or device at open, and keep
# the descriptor out of children.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _blake2b():
    try:  # the C module behind hashlib.blake2b, without hashlib's ~5 ms of OpenSSL set-up
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - other interpreters
        from hashlib import blake2b
    return blake2b


def aesgcm_class():
    try:
        # cryptography's public AESGCM (primitives.ciphers.aead) is this very class; importing it
        # from the bindings skips ~15 ms of typing/enum imports on every cache hit.
        from cryptography.hazmat.bindings._rust import openssl

        return openssl.aead.AESGCM
    except (ImportError, AttributeError):  # pragma: no cover - a future cryptography layout
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM


def digest(data):
    """Hex digest for config files and fingerprints (not secret material)."""
    return _blake2b()(data, digest_size=16).hexdigest()


def scoped(identity, config_path):
    """The identity an entry is stored under: bound to its configuration file, so two config files
    with the same role or idp names keep apart entries instead of evicting each other."""
    return f"{identity}@{os.path.abspath(config_path)}"


def entry_filename(key, identity):
    return _blake2b()(identity.encode(), key=key, digest_size=20, person=b"credproc-name").hexdigest()


# botocore re-runs a credential_process with 15 minutes or less left and refuses credentials that
# are already inside its 10-minute mandatory window: never hand out anything this close to expiry.
MIN_REMAINING = 15 * 60
CLOCK_SLACK = 5  # seconds an entry's write time may lie ahead of now (rounding, another process)


class Entry:
    __slots__ = ("expires_at", "refresh_at", "written_at", "config_digest", "fingerprint", "body")

    def __init__(self, expires_at, refresh_at, config_digest, fingerprint, body, written_at=None):
        self.expires_at = int(expires_at)
        self.refresh_at = int(refresh_at)
        self.written_at = int(time.time()) if written_at is None else int(written_at)
        self.config_digest = config_digest
        self.fingerprint = fingerprint
        self.body = body

    def encode(self):
        head = f"{self.expires_at} {self.refresh_at} {self.written_at} {self.config_digest} {self.fingerprint}\n"
        return head.encode("ascii") + self.body

    @classmethod
    def decode(cls, plaintext):
        head, sep, body = plaintext.partition(b"\n")
        fields = head.split(b" ")
        if not sep or len(fields) != 5:
            raise ValueError("malformed entry header")
        return cls(int(fields[0]), int(fields[1]), fields[3].decode("ascii"), fields[4].decode("ascii"), body,
                   written_at=int(fields[2]))

    def fresh(self, now):
        """Servable without a refresh: before its refresh time, and the clock has not gone backwards
        since it was written (else its times cannot be trusted)."""
        return self.written_at - CLOCK_SLACK <= now < self.refresh_at


def read_key_file(path, dir_fd=None, display=None):
    """The key file's bytes: a plain key (KEY_BYTES) or a keyring-wrapped one (keywrap.py). Raises
    OSError subclasses (FileNotFoundError: no key yet) unchanged; refuses (ValueError) a file that
    is not a regular file, that others can read or that is not ours. With dir_fd, path is a name in
    that directory, and display the full path for messages."""
    fd = os.open(path, _READ_FLAGS | _NOFOLLOW, dir_fd=dir_fd)
    path = display or path
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is not a regular file; delete it to start a new cache")
        if os.name == "posix" and (st.st_mode & 0o077 or st.st_uid != os.getuid()):
            raise ValueError(f"{path} must be owned by you and not readable by group or others (chmod 600 '{path}')")
        return os.read(fd, 129)
    finally:
        os.close(fd)


def check_key(path, key):
    """A plain key's bytes, or ValueError naming path."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} is not a credproc key ({len(key)} bytes); delete it to start a new cache")
    return key


def read_key(path, dir_fd=None, display=None):
    """The plain cache key (see read_key_file)."""
    return check_key(display or path, read_key_file(path, dir_fd, display))


def decrypt(key, identity, blob):
    if len(blob) < len(MAGIC) + NONCE_BYTES + 16 or blob[: len(MAGIC)] != MAGIC:
        raise ValueError("not a credproc cache entry")
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    plaintext = aesgcm_class()(key).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], _AAD_PREFIX + identity.encode())
    return Entry.decode(plaintext)


def encrypt(key, identity, entry):
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + aesgcm_class()(key).encrypt(nonce, entry.encode(), _AAD_PREFIX + identity.encode())


def read_file(path, cap=MAX_ENTRY_BYTES, dir_fd=None, follow=False):
    """The bytes of a regular file of at most `cap` bytes. A symlink (unless follow), a FIFO, a
    device or a larger file is an OSError, raised before anything is read or waited for."""
    fd = os.open(path, _READ_FLAGS | (0 if follow else _NOFOLLOW), dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(22, "not a regular file")
        if st.st_size > cap:
            raise OSError(27, f"larger than {cap} bytes")
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, cap + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:  # grew since fstat
                raise OSError(27, f"larger than {cap} bytes")
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def now():
    return int(time.time())

