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


# A caller whose cached credentials are due for refresh but still good (more than MIN_REMAINING
# left) waits this long for another credproc's refresh, then takes the full path, which serves those
# credentials at once when the refresh is still going (CachedProvider never waits with servable
# credentials in hand: the refresher may sit at an MFA prompt). A caller with nothing servable waits
# as long as the full path would (context.LOCK_WAIT).
DUE_WAIT = 2.0

_SERVE, _WAIT = "serve", "wait"


def _look(role, config):
    """The hit's checks, once: (_SERVE, body); (_WAIT, (cache dir, entry name, servable)) when the
    entry is missing, unusable or due, so that waiting for a refresh in progress makes sense; or
    None: the full path decides (no key here, the config changed, the clock went backwards...)."""
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
            return None
    cache_dir = paths.cache_dir()
    if not _is_private_dir(cache_dir) or not _is_private_dir(os.path.dirname(paths.key_file())):
        return None  # the full path refuses or tightens it (PrivateDir), then serves
    name = cache.entry_filename(key, identity)
    try:
        # no symlink, FIFO, device or oversized file: read_file refuses them before reading
        blob = cache.read_file(os.path.join(cache_dir, name))
    except FileNotFoundError:
        return _WAIT, (cache_dir, name, False)
    try:
        entry = cache.decrypt(key, identity, blob)
    except Exception:  # tampered, truncated...: never served; the full path replaces it under the lock
        return _WAIT, (cache_dir, name, False)
    now = cache.now()
    if entry.config_digest != cache.digest(cache.read_file(config_path, cache.MAX_CONFIG_BYTES, follow=True)):
        return None  # the full path re-stamps it (same settings) or refreshes it
    if entry.fresh(now):
        return _SERVE, entry.body
    if entry.written_at - cache.CLOCK_SLACK > now:
        return None
    return _WAIT, (cache_dir, name, entry.expires_at - now > cache.MIN_REMAINING)


def _write(body):
    out = sys.stdout.buffer
    out.write(body)
    out.flush()


def _is_private_dir(path):
    """A real directory (not a link) of ours that no one else can write or list (POSIX)."""
    if os.name != "posix":
        return True
    st = os.lstat(path)
    return (st.st_mode & 0o170000) == 0o040000 and st.st_uid == os.getuid() and not st.st_mode & 0o077


def try_serve(argv):
    """Write the cached document and return True, or return False to take the full path. Never waits."""
    if os.environ.get("CREDPROC_DEBUG"):
        return False
    parsed = _parse(argv)
    if parsed is None:
        return False
    try:
        found = _look(*parsed)
    except Exception:  # missing, unreadable, tampered, under another key...: the full path decides
        return False
    if found is None or found[0] != _SERVE:
        return False
    _write(found[1])
    return True


def serve(argv):
    """The console script's way in: (True, None) when served; else (False, lock deadline or None)
    for the full path. Like try_serve, and when the entry is missing or due and another credproc is
    refreshing it (holds its lock), waits for that one in a blocking lock wait, then looks again
    with the same checks. Still nothing to serve: the full path runs, holding the entry's lock (handed
    over) when it got it, and waiting for anything else until the same deadline (the Go SDK kills a
    credential_process after 60 s)."""
    if os.environ.get("CREDPROC_DEBUG"):
        return False, None
    parsed = _parse(argv)
    if parsed is None:
        return False, None
    try:
        found = _look(*parsed)
    except Exception:
        return False, None
    if found is None:
        return False, None
    if found[0] == _SERVE:
        _write(found[1])
        return True, None
    if os.environ.get("CREDPROC_ACTIVE"):  # started by a credproc (mfa_command...), which may hold this very
        return False, None  # lock: the full path refuses the recursion at once (app.guard_recursion)
    return _wait(parsed, *found[1])


def _wait(parsed, cache_dir, name, servable):
    import time

    from .context import LOCK_WAIT
    from .core import locking

    start = time.monotonic()
    deadline = start + LOCK_WAIT
    fd = dir_fd = body = None
    try:
        dir_fd = _private_dir(cache_dir)
        if dir_fd is None:
            return False, None
        fd = locking.take(dir_fd, name + ".lock", start + DUE_WAIT if servable else deadline)
        if fd is None:  # the time is up (or no lock here): the full path tries once more, and says why
            return False, deadline
        found = _look(*parsed)  # the holder is done (or there was none): what does the cache say now?
        if found is not None and found[0] == _SERVE:
            body = found[1]
        else:
            locking.hand_over(fd)  # our refresh now: the full path's lock on this file adopts it
            fd = None
            return False, deadline
    except Exception:
        return False, deadline
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock
        if dir_fd is not None:
            os.close(dir_fd)
    _write(body)  # outside the try: a closed stdout is the console script's to report (exit 141)
    return True, None


def _private_dir(path):
    """A descriptor of the cache directory, if it is a real directory of ours that only we can use
    (what store.PrivateDir insists on; anything else is the full path's to report or fix), else None."""
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        os.close(fd)
        return None
    return fd
