"""The cache hit, served before anything else is imported.

Every `aws` command pays for this path, so it imports only os/sys/time plus the blake2 and AES-GCM
primitives, parses no TOML, and imports no argparse, json, platformdirs, boto3 or HTTP client. It
serves only when everything checks out: the argv is the plain `--role NAME [--config PATH]`, the
entry decrypts under the key with the role's identity bound in, it is before its refresh time, and
the config file is byte-for-byte the one the entry was made with. Anything else (including any
error) falls through to the full CLI, which makes the same decision the slow, careful way.
"""

import os
import sys

from .core import cache, paths


def _parse(argv):
    """(role, config) from exactly `--role NAME` and optionally `--config PATH`; else None."""
    opts = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name not in ("--role", "--config") or name in opts:
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            i += 1
            value = argv[i]
        if not value or value.startswith("-"):
            return None
        opts[name] = value
        i += 1
    if "--role" not in opts:
        return None
    return opts["--role"], opts.get("--config")


def _private_dir(path):
    """A real directory (not a link) of ours that no one else can write or list (POSIX)."""
    if os.name != "posix":
        return True
    st = os.lstat(path)
    return (st.st_mode & 0o170000) == 0o040000 and st.st_uid == os.getuid() and not st.st_mode & 0o077


def try_serve(argv):
    """Write the cached document and return True, or return False to take the full path."""
    if os.environ.get("CREDPROC_DEBUG"):
        return False
    parsed = _parse(argv)
    if parsed is None:
        return False
    role, config = parsed
    try:
        config_path = paths.config_file(config)
        identity = cache.scoped("role:" + role, config_path)  # as EncryptedFileCache(scope=config) stores it
        try:
            key = cache.read_key_file(paths.key_file())
        except FileNotFoundError:
            key = b""
        if len(key) != cache.KEY_BYTES:  # cache_key = "keyring": the kernel keyring's copy, or the fallback key
            from .core.keywrap import hit_key

            key = hit_key(key, paths.key_file())
            if key is None:
                return False
        if not _private_dir(paths.cache_dir()) or not _private_dir(os.path.dirname(paths.key_file())):
            return False  # the full path refuses or tightens it (PrivateDir), then serves
        # no symlink, FIFO, device or oversized file: read_file refuses them before reading
        blob = cache.read_file(os.path.join(paths.cache_dir(), cache.entry_filename(key, identity)))
        entry = cache.decrypt(key, identity, blob)
        if not entry.fresh(cache.now()):
            return False
        if entry.config_digest != cache.digest(cache.read_file(config_path, cache.MAX_CONFIG_BYTES, follow=True)):
            return False
    except Exception:  # missing, unreadable, tampered, under another key...: the full path decides
        return False
    out = sys.stdout.buffer
    out.write(entry.body)
    out.flush()
    return True
