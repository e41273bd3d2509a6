"""CachedProvider: look up; on a miss or inside the refresh window, take the entry's lock, look
again (another process may have just refreshed), ask the inner provider, store, return.

Timeline of an entry (epoch seconds):  written ... refresh_at ... expires_at - 15 min ... expires_at
  before refresh_at: served (this is also the cache-hit fast path's only test);
  from refresh_at:   refreshed; if that cannot happen now (no terminal, IdP down, another process
                     busy) the cached credentials are still served while more than 15 minutes remain;
  after that:        never served.
"""

import time

from ..core import log
from ..core.cache import CLOCK_SLACK, Entry
from ..core.credentials import MIN_REMAINING, Credentials
from ..core.errors import AuthenticationFailed, LocalFileError, LockTimeout, LoginRequired, NetworkError, ServiceError
from ..core.locking import release_handed_over

# Failures of a refresh after which still-valid cached credentials are better than an error (the
# next call tries again). Not AccessDenied or ConfigError: those say the credentials are unwanted.
_SOFT = (LoginRequired, NetworkError, ServiceError, LockTimeout, AuthenticationFailed)


def refresh_at(issued, expires, margin, min_remaining=MIN_REMAINING, refresh_left=None):
    """When to refresh: `margin` before expiry, but never later than 16 minutes before it (so the
    fast path never serves what SDKs would reject), and never before half the usable lifetime (so
    short sessions are still cached). A provider whose credentials cannot live that long (see
    CachedProvider: `min_remaining`, `refresh_left`) is refreshed `refresh_left` before expiry."""
    if refresh_left is not None:
        return expires - max(refresh_left, min_remaining + 1)
    lifetime = expires - issued
    floor = min_remaining + 60
    ceiling = max(floor, (lifetime + min_remaining) // 2)
    return expires - min(max(margin, floor), ceiling)


class CachedProvider:
    def __init__(self, inner, ctx, identity, fingerprint, what):
        self.inner = inner
        self.ctx = ctx
        self.identity = identity
        self.fingerprint = fingerprint
        self.what = what  # "credentials for role 'admin'", for lock messages
        # The lifetime hook: a provider whose credentials live at most 15 minutes (the console
        # sign-in of `aws login`) sets `min_remaining` (served only with more than this left; the
        # default is the SDKs' 15 minutes) and `refresh_left` (refreshed from this much left).
        self.min_remaining = getattr(inner, "min_remaining", MIN_REMAINING)
        self.refresh_left = getattr(inner, "refresh_left", None)

    def describe(self):
        return f"Cached[{self.identity}]({self.inner.describe()})"

    def _load(self, quiet=False):
        entry = self.ctx.store.get(self.identity, quiet=quiet)
        if entry is not None and entry.fingerprint != self.fingerprint:
            if not quiet:
                log.debug("cache miss for %s: made from other settings", self.identity)
            return None
        return entry

    @staticmethod
    def _creds(entry):
        return Credentials.from_process_json(entry.body)

    def cached(self):
        """The cached entry if it is still servable (more than min_remaining left), else None."""
        entry = self._load()
        if entry is not None and entry.expires_at - self.ctx.now() > self.min_remaining:
            return entry
        return None

    def never_cached(self):
        """True when the inner link says what it returns is never cached (a credential helper whose
        credentials carry no Expiration): then there is nothing to wait for under the lock, and
        concurrent callers must not queue up behind each other's runs."""
        check = getattr(self.inner, "never_cached", None)
        return bool(check and check())

    def retrieve(self):
        if self.never_cached():
            log.debug("%s: not cached (no expiry), no lock taken", self.identity)
            release_handed_over()  # the fast path's wait took this entry's lock for us: others need not wait
            creds = self.inner.retrieve()
            self._store(creds)  # stores only credentials that expire: the helper changed its mind
            return creds
        entry = None if self.ctx.force else self._load()
        now = self.ctx.now()
        if entry is not None and entry.written_at - CLOCK_SLACK > now:
            ahead = entry.written_at - now
            log.warn(f"the cached {self.what} were written {round(ahead / 60)} minutes ahead of this machine's clock "
                     f"(it went back, or was ahead then): not used, fetching new ones; check the system clock")
            entry = None
        if entry is not None and entry.fresh(now):
            log.debug("cache hit for %s", self.identity)
            if entry.config_digest != self.ctx.config.digest:
                # the config file changed but not this entry's settings: re-stamp it so the fast
                # path serves it again (same credentials; a concurrent refresh may win, harmlessly)
                entry.config_digest = self.ctx.config.digest
                self._put(entry)
            return self._creds(entry)
        servable = entry if entry is not None and entry.expires_at - now > self.min_remaining else None
        # With servable credentials in hand, never wait: if another process is refreshing, use them.
        # Nor fail on a cache we cannot lock (read-only, full, wrong owner): they are still good.
        try:
            lock = self.ctx.store.lock(self.identity, self.what)
            waited = lock.acquire(time.monotonic() if servable else self.ctx.lock_deadline)
        except (LockTimeout, LocalFileError) as e:
            if servable is not None:
                log.debug("%s: cannot refresh now (%s); serving cached credentials", self.identity, type(e).__name__)
                return self._creds(servable)
            raise
        try:
            if waited or not self.ctx.force:
                fresh = self._load(quiet=True)  # the miss was logged by the first look
                if fresh is not None and fresh.fresh(self.ctx.now()):
                    log.debug("cache hit for %s after waiting for the lock", self.identity)
                    return self._creds(fresh)
            try:
                creds = self.inner.retrieve()
            except _SOFT as e:
                if servable is not None and servable.expires_at - self.ctx.now() > self.min_remaining:
                    log.debug("%s: refresh failed (%s); serving cached credentials, %d s left", self.identity,
                              type(e).__name__, servable.expires_at - self.ctx.now())
                    return self._creds(servable)
                raise
            self._store(creds)
            return creds
        finally:
            lock.release()

    def _store(self, creds):
        if creds.expiration is None:  # long-lived keys are never cached
            return
        now = self.ctx.now()
        margin = self.ctx.config.settings["refresh_margin"]
        when = refresh_at(now, creds.expiration, margin, self.min_remaining, self.refresh_left)
        self._put(Entry(creds.expiration, when, self.ctx.config.digest,
                        self.fingerprint, creds.to_process_json(), written_at=now))

    def _put(self, entry):
        try:
            self.ctx.store.put(self.identity, entry)
        except LocalFileError as e:  # the credentials are good; a cache we cannot write only costs speed
            log.warn(f"{e} (credentials not cached)")
