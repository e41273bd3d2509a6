"""`[settings] include`: the team's shared part of a configuration, from a local file or an https
URL. What is included is untrusted (config.py decides which keys it may hold); here, only getting
its bytes safely:

- a local file gets the checks a configuration file needs: owned by you (or root), and neither it
  nor its directory writable by group or others (whoever can write it could otherwise add roles
  that send your sign-in elsewhere);
- a URL must be https (http only to a loopback address) and is pinned by the SHA-256 of its content: a different content is refused,
  naming the new digest, until you have reviewed it and updated the pin. The pinned bytes are kept
  in the cache directory under their digest, so the URL is fetched once, not on every cold call.
"""

import hashlib
import os
import stat

from .errors import ConfigError, LocalFileError

MAX_INCLUDE_BYTES = 1024 * 1024


def unsafe_permissions(path):
    """Why `path` (a file, followed if a symlink) or its directory is not safe to take configuration
    from, or None. Small on purpose: the same test as for the configuration file itself."""
    try:
        st = os.stat(path)
        parent = os.stat(os.path.dirname(os.path.abspath(path)) or ".")
    except OSError as e:
        return f"cannot check it: {e.strerror}"
    me = os.geteuid() if hasattr(os, "geteuid") else None
    if me is not None and st.st_uid not in (me, 0):
        return "it belongs to another user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others can write it (mode {stat.S_IMODE(st.st_mode):04o}; chmod go-w {path})"
    if parent.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not parent.st_mode & stat.S_ISVTX:
        return f"group or others can write its directory (chmod go-w {os.path.dirname(os.path.abspath(path))})"
    return None


def read_local(path, what):
    from .cache import read_file

    full = os.path.abspath(os.path.expanduser(path))
    try:
        data = read_file(full, MAX_INCLUDE_BYTES, follow=True)
    except FileNotFoundError:
        raise ConfigError(f"{what}: no file at {full}") from None
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {full}: {e.strerror}") from None
    problem = unsafe_permissions(full)
    if problem:
        raise LocalFileError(f"{what}: {full} is not safe to take configuration from: {problem}")
    return data


def read_pinned(url, sha256, cache_dir, what):
    """The bytes at `url` whose SHA-256 is `sha256` (hex), from the cache when they were fetched before."""
    from .http import check_url, request

    check_url(url, what)  # https (plain http only to a loopback address, as for every URL in the config)
    pinned = sha256.lower()
    kept = os.path.join(cache_dir, f"include-{pinned}.toml")
    try:
        with open(kept, "rb") as f:
            data = f.read(MAX_INCLUDE_BYTES + 1)
        if hashlib.sha256(data).hexdigest() == pinned:
            return data
    except OSError:
        pass
    resp = request("GET", url, timeout=10, what=what, max_bytes=MAX_INCLUDE_BYTES)
    if resp.status != 200:
        raise ConfigError(f"{what}: {url} answered HTTP {resp.status}")
    actual = hashlib.sha256(resp.body).hexdigest()
    if actual != pinned:
        raise ConfigError(f"{what}: the content at {url} changed: its sha256 is now {actual}, not the pinned {pinned}",
                          hint=f"review it (curl -s {url}), then set sha256 = \"{actual}\" in [settings] include")
    try:
        from .store import atomic_write

        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        atomic_write(kept, resp.body, 0o600)
    except OSError:
        pass  # fetched again next time
    return resp.body
