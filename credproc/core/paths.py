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
