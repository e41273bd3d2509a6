"""Where credproc's files live: platformdirs' user dirs for the app "credproc".

On Linux the cache-hit path must not pay ~19 ms for importing platformdirs, so the common XDG case
is computed here with the same rules (an absolute $XDG_* wins, else ~/.cache, ~/.local/share,
~/.config under an absolute $HOME); anything unusual, and every other platform, asks platformdirs.
tests/test_paths.py checks that both answers agree.
"""

import os
import sys

APP = "credproc"
_XDG = {
    "cache": ("XDG_CACHE_HOME", ".cache"),
    "data": ("XDG_DATA_HOME", ".local/share"),
    "config": ("XDG_CONFIG_HOME", ".config"),
}


def _fast(kind):
    if not sys.platform.startswith("linux") or hasattr(sys, "getandroidapilevel"):
        return None
    var, default = _XDG[kind]
    base = os.environ.get(var, "")
    if base.startswith("/"):
        return os.path.join(base, APP)
    home = os.environ.get("HOME", "")
    if home.startswith("/"):
        return os.path.join(home.rstrip("/") or "/", default, APP)
    return None


def user_dir(kind):
    """kind: "cache", "data" or "config"."""
    path = _fast(kind)
    if path is None:
        import platformdirs

        path = getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False)
    return path


def config_file(explicit=None):
    """--config, else $CREDPROC_CONFIG, else config.toml in the user config dir."""
    if explicit:
        return explicit
    env = os.environ.get("CREDPROC_CONFIG")
    if env:
        return env
    return os.path.join(user_dir("config"), "config.toml")


def key_file():
    # The key lives in the data dir, not beside the cache: wiping or syncing the cache dir (or a
    # backup of ~/.cache) must not carry the key with the ciphertext.
    return os.path.join(user_dir("data"), "cache.key")


def cache_dir():
    return user_dir("cache")


def browser_profile_dir(name):
    """The browser profile of browser sign-ins for one idp (name: a config name, [A-Za-z0-9_.-])."""
    return os.path.join(user_dir("data"), "browser", name)


def unwritable_hint(path, error):
    """The hint for a credproc file or directory that cannot be created or written (a read-only
    file system, no permission), as doctor gives it: which variable moves it elsewhere. None for
    other errors."""
    import errno

    if getattr(error, "errno", None) not in (errno.EROFS, errno.EACCES, errno.EPERM):
        return None
    path = os.path.abspath(path)
    for kind, what in (("cache", "the cache"), ("data", "the cache key")):
        base = user_dir(kind)
        if path == base or path.startswith(base.rstrip(os.sep) + os.sep) or base.startswith(path + os.sep):
            if sys.platform.startswith("linux"):
                var = _XDG[kind][0]
                return (f"make {base} writable (it is not, e.g. on a read-only file system), or point ${var} at a "
                        f"writable directory for {what} (credproc doctor checks it)")
            return f"make {base} writable (credproc doctor checks it)"
    return "make it writable (credproc doctor checks it)"


def others_can_write(path):
    """(why, the file or directory to fix) when another local user could change what `path` holds, else None: the file itself, or any
    directory on the way to it (of the path as given and, for a symbolic link, of where it leads),
    writable by a group with other members or by others (a sticky directory such as /tmp excepted:
    only the owner may replace a file there), or owned by someone else than you or root. POSIX only."""
    if os.name != "posix":
        return None
    import stat

    def group_is_only_me(gid):
        """A user private group (Debian, Fedora: umask 002, files 0664): the group has no one else."""
        if gid != os.getgid():
            return False
        try:
            import grp
            import pwd

            me = pwd.getpwuid(os.getuid()).pw_name
            return all(m == me for m in grp.getgrgid(gid).gr_mem)
        except (ImportError, KeyError):
            return False

    def problem(p, st, is_dir):
        kind = "directory" if is_dir else "file"
        if st.st_uid not in (os.getuid(), 0):
            return f"the {kind} {p} belongs to another user (uid {st.st_uid})"
        if stat.S_ISLNK(st.st_mode) or (is_dir and st.st_mode & stat.S_ISVTX):  # a link's own mode means nothing
            return None
        if st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and not group_is_only_me(st.st_gid)):
            return f"the {kind} {p} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o})"
        return None

    seen = set()
    for start in (os.path.abspath(path), os.path.realpath(path)):
        p, is_dir = start, False
        while True:
            if (p, is_dir) not in seen:
                seen.add((p, is_dir))
                try:
                    st = os.stat(p) if not is_dir else os.lstat(p)
                except OSError:
                    st = None
                if st is not None:
                    why = problem(p, st, is_dir and stat.S_ISDIR(st.st_mode))
                    if why:
                        return why, p
            parent = os.path.dirname(p)
            if parent == p:
                break
            p, is_dir = parent, True
    return None
