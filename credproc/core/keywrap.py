"""A cache key wrapped by the OS keyring (`[settings] cache_key = "keyring"`).

The key file then holds only the cache key encrypted (AES-256-GCM) under a wrapping key that
lives in the OS keyring (oskeyring.CACHE_KEY_ITEM): a copy of the home directory, without the
keyring's secrets, decrypts nothing.

    key file:  WRAP_MAGIC | nonce(12) | AES-256-GCM(wrapping key, cache key, aad=_AAD)   (64 bytes)

Unwrapping costs a round trip to the keyring daemon (Secret Service: tens of milliseconds, a
D-Bus connection; macOS Keychain and Windows Credential Locker: an API call, with a permission
dialog until the user chooses "Always Allow"). So on Linux the unwrapped key is also kept in the
kernel's per-user keyring (kernkey.py) for KERNEL_TTL seconds, named after a digest of the
wrapped key: the cache-hit path (fastpath.py) then unwraps with a few system calls and never
talks to the daemon. Elsewhere, or when keyctl is blocked, every hit takes the full path.

The cache-hit path imports this module: module-level imports are os only.
"""

import os

WRAP_MAGIC = b"CPW1"
WRAPPED_BYTES = 4 + 12 + 32 + 16
KERNEL_TTL = 3600  # how long the unwrapped key stays in the kernel keyring after it was unwrapped
_AAD = b"credproc-cache-key-v1\0"


def is_wrapped(blob):
    return len(blob) == WRAPPED_BYTES and blob[:4] == WRAP_MAGIC


def kernel_description(blob):
    from .cache import digest

    return "credproc:cache-key:" + digest(blob)


def unwrap_fast(blob):
    """The cache key from the kernel keyring, or None (the full path then asks the OS keyring)."""
    if not is_wrapped(blob):
        return None
    from . import kernkey

    key = kernkey.read(kernel_description(blob))
    return key if key and len(key) == 32 else None


FALLBACK_KEY = "cache-fallback.key"  # beside the key file; see store.EncryptedFileCache


def hit_key(blob, key_path):
    """The cache-hit path's key when the key file is not a plain key: the wrapped key unwrapped by
    the kernel keyring, else the fallback key (cache_key_fallback = "file"; an entry under it is
    served only while the config file is byte for byte the one that chose the fallback), else None."""
    key = unwrap_fast(blob)
    if key is None:
        from .cache import read_key

        try:
            key = read_key(os.path.join(os.path.dirname(key_path), FALLBACK_KEY))
        except (OSError, ValueError):
            return None
    return key


class WrapLost(Exception):
    """The wrapping key is gone from the OS keyring (or is another one): the wrapped cache key can
    never be unwrapped again, so the cache must start over under a new key."""


def _wrapping_key(create, replace=False):
    """The wrapping key from the OS keyring (created there when `create` and absent; a new one in
    its place when `replace`)."""
    import base64
    import binascii

    from . import oskeyring

    text = None if replace else oskeyring.get(oskeyring.CACHE_KEY_ITEM, "reading the key that wraps the cache key")
    if text is not None:
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) == 32:
            return key
        if not create:
            raise WrapLost("the keyring item that wraps the cache key is not a key")
    elif not create:
        raise WrapLost("the keyring holds no key to unwrap the cache key with")
    key = os.urandom(32)
    oskeyring.put(oskeyring.CACHE_KEY_ITEM, base64.b64encode(key).decode(), "storing the key that wraps the cache key")
    if oskeyring.get(oskeyring.CACHE_KEY_ITEM, "reading back the key that wraps the cache key") != base64.b64encode(key).decode():
        from .errors import KeyringUnavailable

        raise KeyringUnavailable("the OS keyring did not keep the key that wraps the cache key")
    return key


def remember(blob, key):
    from . import kernkey, log

    if kernkey.store(kernel_description(blob), key, KERNEL_TTL):
        log.debug("cache key kept in the kernel keyring for %d s", KERNEL_TTL)


def unwrap(blob):
    """The cache key: from the kernel keyring, else from the OS keyring (then kept in the kernel
    keyring). Raises KeyringUnavailable, or WrapLost when it can never be unwrapped."""
    key = unwrap_fast(blob)
    if key is not None:
        return key
    from .cache import aesgcm_class

    wrapping = _wrapping_key(create=False)
    try:
        key = aesgcm_class()(wrapping).decrypt(blob[4:16], blob[16:], _AAD)
    except Exception:  # InvalidTag: wrapped under another wrapping key
        raise WrapLost("the cache key was wrapped under another keyring key") from None
    remember(blob, key)
    return key


def wrap_new(new_wrapping=False):
    """A new random cache key and its wrapped form. The wrapping key is reused when the OS keyring
    already has one, unless new_wrapping (logout --all): then a new one replaces it, so that a key
    file from before (a backup, a restored home directory) can never be unwrapped again. Raises
    KeyringUnavailable."""
    from .cache import KEY_BYTES, aesgcm_class

    wrapping = _wrapping_key(create=True, replace=new_wrapping)
    key = os.urandom(KEY_BYTES)
    nonce = os.urandom(12)
    blob = WRAP_MAGIC + nonce + aesgcm_class()(wrapping).encrypt(nonce, key, _AAD)
    return key, blob


def forget(blob):
    """Drop the kernel keyring's copy (logout --all, a key replaced)."""
    from . import kernkey

    kernkey.remove(kernel_description(blob))


def doctor_check(cfg):
    """(status, what, problem, fix) for `credproc doctor` with cache_key = "keyring"."""
    from . import cache, kernkey, oskeyring, paths
    from .errors import CredprocError

    path = paths.key_file()
    fast = "kept in the kernel keyring between hits" if kernkey.available() else \
        "no kernel keyring here: every cache hit asks the OS keyring"
    try:
        blob = cache.read_key_file(path)
    except FileNotFoundError:
        blob = None
    except (OSError, ValueError) as e:
        return "fail", f"cache key {path}", str(e), None
    if blob is not None and not is_wrapped(blob):
        return ("warn", f"cache key {path}", "is a plain key (cache_key was \"file\")",
                "it is replaced by a keyring-wrapped one at the next refresh (run credproc login --role NAME)")
    try:
        name = oskeyring.name()
        if blob is not None:
            unwrap(blob)
    except WrapLost as e:
        return "warn", f"cache key {path}", f"{e}: the next refresh starts a new cache", None
    except CredprocError as e:
        fallback = cfg.settings.get("cache_key_fallback") == "file"
        return ("warn" if fallback else "fail", f"cache key wrapped by the OS keyring", e.message,
                "cache_key_fallback = \"file\" is in use here" if fallback else e.hint)
    return "ok", f"cache key wrapped by the OS keyring ({name}; {fast})", None, None
