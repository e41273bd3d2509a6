"""credproc logout: remove cached credentials, MFA sessions, sign-ins (revoking refresh tokens) and
remembered role choices.

Safe while other credproc processes run: each entry's lock is taken with a short wait before the
entry is deleted, and the entry is deleted anyway if the lock cannot be had (a reader mid-way just
misses and fetches again). `--all` then removes the lock files, each only by taking it (see
locking.py: a busy one stays), and replaces the cache key.
"""

import os
import re
import time

from .. import app
from .. import sources as idp_registry
from ..core import log
from ..core.errors import ConfigError, LocalFileError, LockTimeout

HELP = "remove cached credentials, MFA sessions and sign-ins (revoking refresh tokens)"
DESCRIPTION = """\
--role NAME removes the role's cached credentials (and those of the roles it is assumed from),
the identity session at the root of its chain (the IAM MFA session, or the OpenID Connect sign-in,
whose refresh token is revoked at the IdP when it offers revocation) and its remembered role choice.
Other roles over the same identity provider keep their cached credentials until they expire.

--all removes every cache entry, including those of roles no longer configured, after revoking
every OpenID Connect refresh token it can.

Prints one line per thing removed, never a secret. If a revocation fails (IdP unreachable), the
local copy is removed anyway, a warning goes to stderr, and the exit code is still 0."""
EXAMPLES = """\
  credproc logout --role admin
  credproc logout --all"""

LOCK_WAIT = 3.0  # seconds to wait for an entry's lock before deleting it anyway
_ENTRY_NAME = re.compile(r"^[0-9a-f]{40}\Z")  # cache.entry_filename: 20-byte keyed BLAKE2b, hex
_LOCK_NAME = re.compile(r"^[0-9a-f]{40}\.lock\Z")


def add_arguments(parser):
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--role", metavar="NAME", help="log out of this role (and the identity session it uses)")
    which.add_argument("--all", action="store_true", help="remove everything credproc has cached")


def run(args):
    if args.all:
        return _logout_all(args)
    return _logout_role(args)


# -- removing one entry ------------------------------------------------------------------------
def remove_file(path, what, directory=None):
    """Delete a cache entry file under its lock (bounded wait; deleted anyway without it).
    True if a file was removed. directory: the store's PrivateDir that holds it, whose checked
    handle every operation goes through."""
    from ..core.locking import FileLock

    name = os.path.basename(path)
    if directory is not None:
        if not directory.open(create=False) or not directory.exists(name):
            return False
        lock = directory.lock(name + ".lock", what)
    else:
        if not os.path.exists(path):
            return False
        lock = FileLock(path + ".lock", what)
    try:
        lock.acquire(time.monotonic() + LOCK_WAIT)
    except LockTimeout:
        log.warn(f"another credproc process was busy with {what} (a refresh or a prompt); removed it anyway, "
                 "but that process may store new credentials: run logout again once it has finished")
    except LocalFileError as e:
        log.debug("cannot lock %s (%s); removing it anyway", what, e)
    try:
        if directory is not None:
            directory.unlink(name)
        else:
            os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as e:
        raise LocalFileError(f"cannot remove the cache entry {path}: {e.strerror}") from None
    finally:
        lock.release()


def _remove(store, identity, what):
    return remove_file(store.path_for(identity), what, store.dir)


def _context(cfg, store):
    from ..context import Context
    from ..core.prompt import Terminal

    # no prompts: logout never authenticates; a fresh Context per sign-in gives each its own lock wait
    return Context(cfg, store, Terminal("credproc login --role NAME", interactive=False), lock_wait=LOCK_WAIT)


def _remove_idp_session(cfg, store, idp, say):
    """The identity session of one idp (an IAM MFA session, an OIDC sign-in...): its source's
    logout hook decides what that is and whether it can be revoked."""
    return idp_registry.source_for(idp).logout(
        cfg, store, idp, say, lambda identity, what: _remove(store, identity, what), lambda: _context(cfg, store))


def _remove_role(store, name, say):
    from ..sources.base import role_identity  # not ..chain: that imports the STS client

    if _remove(store, role_identity(name), f"credentials for role {name!r}"):
        say(f"removed credentials for role {name}")
        return True
    return False


def _remove_role_choice(store, name, say):
    if _remove(store, f"role-choice:{name}", f"the role choice of role {name!r}"):
        say(f"removed the remembered role choice for role {name}")
        return True
    return False


def _say(line):
    from ..core.text import clean

    print(clean(line), flush=True)


# -- the two modes -------------------------------------------------------------------------------
def _logout_role(args):
    cfg = app.load_config(args)
    chain = cfg.chain_of(args.role)  # ConfigError naming the configured roles if unknown
    store = app.store(cfg)
    if store.key(create=False) is None:
        _say(f"nothing cached for role {args.role}")
        return 0
    root = chain[-1]
    idp = cfg.idps[root["idp"]]
    removed = False
    for role in chain:  # the role, then the roles it is assumed from (else they would re-make it silently)
        removed |= _remove_role(store, role["name"], _say)
    removed |= _remove_role_choice(store, root["name"], _say)
    removed |= _remove_idp_session(cfg, store, idp, _say)
    if not removed:
        _say(f"nothing cached for role {args.role}")
    others = _others_over(cfg, store, idp["name"], {r["name"] for r in chain})
    if others:
        _say(f"note: other roles over idp {idp['name']} keep their cached credentials until they expire "
             f"({', '.join(others)}); `credproc logout --all` removes them too")
    return 0


def _others_over(cfg, store, idp_name, exclude):
    from ..sources.base import role_identity  # not ..chain: that imports the STS client

    return [name for name in cfg.roles if name not in exclude and cfg.chain_of(name)[-1]["idp"] == idp_name
            and store.get(role_identity(name)) is not None]


def _logout_all(args):
    store = app.store()
    cfg = None
    try:
        cfg = app.load_config(args)
        store = app.store(cfg)
        if store.key(create=False) is None:
            cfg = None  # no key: nothing readable to revoke; the sweep below removes any files
    except (ConfigError, LocalFileError) as e:
        log.warn(f"{e}; refresh tokens are not revoked, only removed from this machine")
        cfg = None
    count = 0
    if cfg is not None:
        def say(line):
            nonlocal count
            count += 1
            _say(line)

        for idp in cfg.idps.values():  # revoke first, while the refresh tokens can still be read
            _remove_idp_session(cfg, store, idp, say)
        for name in cfg.roles:
            _remove_role(store, name, say)
        for name in cfg.roles:
            _remove_role_choice(store, name, say)
    swept = _sweep(store)
    if swept:
        _say(f"removed {swept} other cache entr{'ies' if swept > 1 else 'y'} (roles or sessions no longer "
             "configured, or unreadable)")
    if not count and not swept:
        _say("nothing was cached")
    # A new key: a copy of any entry from before (a backup, files copied back) no longer decrypts,
    # so it cannot bring back an MFA session or a sign-in without a prompt.
    if store.rotate_key():
        _say("replaced the cache key: copies of earlier cache entries can no longer be used")
    return 0


def _sweep(store):
    """Every remaining entry file (not the lock files, not temp files in flight, not the public
    OIDC metadata)."""
    try:
        if not store.dir.open(create=False):
            return 0
        names = store.dir.listdir()
    except FileNotFoundError:
        return 0
    except OSError as e:
        raise LocalFileError(f"cannot list the cache directory {store.cache_dir}: {e.strerror}") from None
    removed = 0
    for name in sorted(names):
        if _ENTRY_NAME.match(name) and remove_file(os.path.join(store.cache_dir, name), "a cache entry", store.dir):
            removed += 1
    for name in sorted(names):  # then the lock files, each removed by its holder; a busy one stays
        if _LOCK_NAME.match(name):
            lock = store.dir.lock(name, "a cache entry")
            try:
                lock.acquire(0)  # a single try: someone refreshing keeps theirs
            except (LockTimeout, LocalFileError):
                continue
            lock.remove()
    return removed
