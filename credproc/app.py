"""What every command needs: the run's Context (config, cache, terminal) and a role's credentials.
Commands call these; none of them prints."""

import os
import sys

from .core import log, paths
from .core.errors import RecursionDetected, ServiceError


def login_command(args, role=None):
    """The exact command a user without a terminal is told to run in one."""
    import shlex

    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(argv0) == "credproc":  # the console script: name it as the user can run it
        if os.name == "posix":
            found = _which("credproc")
        else:  # PATHEXT and the rest: shutil's
            import shutil

            found = shutil.which("credproc")
        prog = "credproc" if found and os.path.realpath(found) == os.path.realpath(argv0) else argv0
    else:
        prog = f"{sys.executable} -m credproc"
    cmd = f"{prog} login --role {shlex.quote(role or args.role)}"
    if getattr(args, "config", None):
        cmd += f" --config {shlex.quote(os.path.abspath(args.config))}"
    return cmd


def _which(name):
    """shutil.which(name) on POSIX, without importing shutil (~3 ms) on every run that builds a Context."""
    for folder in os.get_exec_path():
        path = os.path.join(folder or os.curdir, name)
        if os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path):
            return path
    return None


def guard_recursion():
    """Refuse to run under a process credproc started (an mfa_command calling credproc again...).
    Our own mark (set below, inherited by our children) is not recursion: a long-running process
    (serve, exec --server) builds a context per request."""
    mark = os.environ.get("CREDPROC_ACTIVE")
    if mark and mark != str(os.getpid()):
        raise RecursionDetected(
            "credproc was started by a command credproc itself runs (mfa_command or password_command, or a "
            "credential_process loop); refusing to recurse",
            hint="make that command independent of credproc")
    os.environ["CREDPROC_ACTIVE"] = str(os.getpid())


def load_config(args):
    from . import config as config_mod

    given = getattr(args, "config", None)
    source = "--config" if given else "$CREDPROC_CONFIG" if os.environ.get("CREDPROC_CONFIG") else None
    return config_mod.load(paths.config_file(given), source=source)


def store(cfg=None):
    """The cache. With the config: its entries are those of that configuration file (see
    cache.scoped), and its key follows [settings] cache_key (converted when the setting changed).
    Without: the key file is used in whichever form it is (read/delete only)."""
    from .core.store import EncryptedFileCache

    if cfg is None:
        return EncryptedFileCache(paths.cache_dir(), paths.key_file())
    return EncryptedFileCache(paths.cache_dir(), paths.key_file(), scope=cfg.path,
                              key_mode=cfg.settings.get("cache_key") or "file",
                              key_fallback=cfg.settings.get("cache_key_fallback") or "none")


def context(args, interactive=True, force=False, lock_wait=None, role=None, cfg=None, lock_deadline=None):
    """role: the role the login hint names (default args.role). lock_deadline (time.monotonic()):
    when waiting for locks ends, instead of lock_wait from now (the fast path already waited)."""
    from .context import LOCK_WAIT, Context
    from .core.prompt import Terminal

    guard_recursion()
    cfg = cfg or load_config(args)
    command = login_command(args, role)
    gui = None
    if interactive and cfg.settings.get("prompt") == "gui":  # opt-in; gui.py is not imported otherwise
        from .core.gui import detect

        gui = detect(command)
    terminal = Terminal(command, interactive=interactive, gui=gui, desktop=cfg.settings.get("prompt") == "gui")
    return Context(cfg, store(cfg), terminal, force=force, lock_wait=lock_wait or LOCK_WAIT,
                   lock_deadline=lock_deadline)


def role_credentials(args, role=None, **context_kwargs):
    """What a command needs: a role's credentials through a fresh context, terminal closed after."""
    role = role or args.role
    ctx = context(args, role=role, **context_kwargs)
    try:
        return credentials(ctx, role)
    finally:
        ctx.terminal.close()


def credentials(ctx, role):
    """A role's credentials through its whole chain (cache, lock, refresh, prompts)."""
    from .chain import build
    from .core.credentials import MIN_REMAINING

    provider = build(ctx, role)
    log.debug("chain for role %s: %s", role, provider.describe())
    creds = provider.retrieve()
    left = creds.remaining(ctx.now())
    floor = getattr(provider, "min_remaining", MIN_REMAINING)  # CachedProvider's lifetime hook
    if left is not None and left <= floor:
        from .core import sts

        skew = sts.clock_skew()
        if skew is not None and abs(skew) > sts.SKEW_WARN:  # not the role's duration: the clock
            raise ServiceError(f"the credentials obtained for role {role!r} expire in {left} s by this machine's clock, "
                               f"and {sts.clock_message(skew)}",
                               hint="set the system clock (e.g. turn on NTP: timedatectl set-ntp true)")
        raise ServiceError(f"the credentials obtained for role {role!r} expire in {left} s; SDKs reject credentials "
                           f"with {floor // 60} minutes or less left",
                           hint="raise the role's duration, and check the system clock")
    return creds
