"""OpenID Connect -> AssumeRoleWithWebIdentity.

OidcSession is the identity session of one [idp.NAME]: its refresh token and latest validated ID
token, in the encrypted cache under their own lock. Every role over the idp shares it, and the lock
makes sure two processes never both spend the same (rotating) refresh token.
"""

import json

from ...core import log, sts
from ...core.cache import Entry
from ...core.errors import ConfigError, LockTimeout, LoginRequired
from ...core.sts import sanitize_session_name
from .. import rolechoice
from .protocol import Client, InvalidToken, Issuer

# How long a refresh token is kept when the IdP does not say how long it lasts. Only a retention
# limit: status shows such a sign-in's time left as unknown rather than claim this much.
DEFAULT_SESSION_LIFETIME = 90 * 86400
MIN_TOKEN_LEFT = 120  # an ID token with less than this left is not worth sending to STS


class OidcSession:
    def __init__(self, ctx, idp):
        self.ctx = ctx
        self.idp = idp
        self.identity = f"oidc:{idp['name']}"
        self.issuer = Issuer(idp, ctx.store)
        self.client = Client(idp, self.issuer, ctx.terminal)

    def describe(self):
        return f"OidcSession({self.idp['issuer']}, flow={self.idp['flow']})"

    def _load(self):
        entry = self.ctx.store.get(self.identity)
        if entry is None or entry.fingerprint != self.ctx.config.idp_fingerprint(self.idp["name"]):
            return {}
        try:
            return json.loads(entry.body)
        except ValueError:
            return {}

    def _save(self, state, lifetime=None):
        now = self.ctx.now()
        try:
            lifetime = int(lifetime) if lifetime else None
        except (TypeError, ValueError):
            lifetime = None
        if lifetime is not None and lifetime <= 0:
            lifetime = None
        if state.get("refresh_token"):
            if lifetime:  # what the IdP said; status shows "unknown" without it
                state = dict(state, refresh_expires_at=now + lifetime)
            expires = now + (lifetime or DEFAULT_SESSION_LIFETIME)
        else:  # nothing to refresh with: the session is as good as its ID token
            expires = state.get("claims", {}).get("exp", now)
        self.ctx.store.put(self.identity, Entry(expires, expires, self.ctx.config.digest,
                                                self.ctx.config.idp_fingerprint(self.idp["name"]),
                                                json.dumps(state).encode()))

    def forget(self):
        self.ctx.store.delete(self.identity)

    def id_token(self):
        """(id_token, claims): a cached one with time left, else refreshed, else a new login."""
        got = self._cached_token()
        if got:  # no lock needed to read: another process may be busy signing in for minutes
            return got
        lock = self.ctx.store.lock(self.identity, f"a sign-in at {self.idp['issuer']}")
        lock.acquire(self.ctx.lock_deadline)
        try:
            got = self._cached_token()
            if got:
                return got
            state = {} if self.ctx.force else self._load()
            refused = False
            if state.get("refresh_token") and not state.get(NO_ID_TOKEN):
                got = self._refresh(state)
                if got:
                    return got
                refused = True  # or answered without an ID token (NO_ID_TOKEN, then in the state)
                state = self._load()
            terminal = self.ctx.terminal
            possible = terminal.browser_possible() if self.idp["flow"] == "browser" else terminal.available()
            if self.idp["flow"] != "password" and not possible:
                if state.get(NO_ID_TOKEN):
                    why = (f"{self.idp['issuer']} refreshed the sign-in but sent no new ID token (OpenID Connect allows "
                           "that; credproc needs an ID token for AWS); sign in again, and there is no terminal to "
                           "sign in on")
                elif refused or state.get("refresh_token"):
                    why = (f"your sign-in at {self.idp['issuer']} has ended (the refresh token was refused) and "
                           "there is no terminal to sign in again on")
                else:
                    why = f"a sign-in at {self.idp['issuer']} is needed and there is no terminal to ask on"
                hint = f"run in a terminal: {terminal.login_command}"
                if self.idp["flow"] == "browser" and not getattr(terminal, "desktop", False):
                    hint += ' (or, on a desktop, set [settings] prompt = "gui" to let it open the browser without one)'
                raise LoginRequired(why, hint=hint)
            tokens = self.client.login()
            return self._accept(tokens, {}, nonce=tokens.pop("_nonce", None))
        finally:
            lock.release()

    def _cached_token(self):
        if self.ctx.force:
            return None
        state = self._load()
        claims = state.get("claims") or {}
        exp = claims.get("exp")
        if state.get("id_token") and isinstance(exp, (int, float)) and exp - self.ctx.now() > MIN_TOKEN_LEFT:
            log.debug("%s: using the cached ID token", self.identity)
            return state["id_token"], claims
        return None

    def _refresh(self, state):
        log.debug("%s: refreshing the ID token with the refresh token", self.identity)
        tokens = self.client.refresh(state["refresh_token"])
        if tokens is None:
            log.debug("%s: the IdP refused the refresh token (invalid_grant)", self.identity)
            self.forget()
            return None
        if not tokens.get("id_token"):
            # OIDC Core 12.2: a refresh answer need not hold an ID token, and some IdPs never send
            # one there. The refresh token (rotated or not) is still good: keep it (logout revokes
            # it), and mark that refreshing does not give an ID token, so that the calls until the
            # next sign-in do not spend a refresh grant each; a sign-in is needed.
            log.debug("%s: the IdP refreshed the sign-in but sent no new ID token", self.identity)
            lifetime = _refresh_lifetime(tokens)
            if not lifetime and isinstance(state.get("refresh_expires_at"), (int, float)):
                lifetime = int(state["refresh_expires_at"]) - self.ctx.now()
            self._save({"refresh_token": tokens.get("refresh_token") or state["refresh_token"],
                        NO_ID_TOKEN: self.ctx.now()}, lifetime)
            return None
        return self._accept(tokens, state)

    def _accept(self, tokens, old_state, nonce=None):
        """Validate the ID token, then store it with the answer's refresh token. An answer whose ID
        token is rejected is not kept at all, refresh token included (nor is the sign-in it
        replaces: a forged or misissued answer ends it). Only when validation could not be done
        (the JWKS unreachable) is a rotated refresh token kept, as it is the only one still good."""
        refresh_token = tokens.get("refresh_token") or old_state.get("refresh_token")
        if not tokens.get("id_token"):
            raise ConfigError(f"{self.idp['issuer']} returned no ID token", hint="scopes must include openid")
        try:
            claims = self.issuer.validate(tokens["id_token"], nonce=nonce)
        except InvalidToken:
            self.forget()
            raise
        except Exception:
            if refresh_token and old_state.get("refresh_token") and refresh_token != old_state["refresh_token"]:
                self._save({"refresh_token": refresh_token}, _refresh_lifetime(tokens))
            raise
        self._save({"refresh_token": refresh_token, "id_token": tokens["id_token"], "claims": claims},
                   _refresh_lifetime(tokens))
        return tokens["id_token"], claims

    def revoke(self):
        """Revoke the cached refresh token where the IdP supports it; forget the session. If another
        process holds the sign-in's lock past the context's deadline, go ahead without it: logging
        out must not depend on a prompt somebody left open."""
        lock = self.ctx.store.lock(self.identity, f"a sign-in at {self.idp['issuer']}")
        try:
            lock.acquire(self.ctx.lock_deadline)
        except LockTimeout:
            log.warn(f"another credproc process is busy with the sign-in at {self.idp['issuer']}; logging out anyway "
                     "(run logout again once it has finished, in case it stores a new sign-in)")
        try:
            state = self._load()
            self.forget()  # first: whatever the IdP says, this machine is signed out
            if state.get("refresh_token"):
                return self.client.revoke(state["refresh_token"])
            return False
        finally:
            lock.release()


NO_ID_TOKEN = "refresh_gave_no_id_token"  # in the session's state: when a refresh came back without one


def _refresh_lifetime(tokens):
    """How long the refresh token lasts, where the IdP says (Keycloak: refresh_expires_in; Entra ID
    and others: refresh_token_expires_in); None if it does not."""
    return tokens.get("refresh_expires_in") or tokens.get("refresh_token_expires_in")


def session_name_from(claims, claim):
    for name in ([claim] if claim else []) + ["email", "preferred_username", "sub"]:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return sanitize_session_name(value)
    return sanitize_session_name("")


def roles_from(claims, claim):
    value = claims.get(claim)
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


class WebIdentityProvider:
    def __init__(self, ctx, session, role, region, endpoint_url):
        self.ctx = ctx
        self.session = session
        self.role = role
        self.region = region
        self.endpoint_url = endpoint_url

    def describe(self):
        return f"AssumeRoleWithWebIdentity({self.role.get('arn') or 'from ' + str(self.session.idp.get('roles_claim'))}, " \
               f"{self.session.describe()})"

    def _role_arn(self, claims):
        if self.role.get("arn"):
            return self.role["arn"]
        idp = self.session.idp
        roles = roles_from(claims, idp["roles_claim"])
        who = f"{idp['issuer']} gives {claims.get('sub')}"
        if not roles:
            raise ConfigError(f"{who} no roles in the {idp['roles_claim']!r} claim and [role.{self.role['name']}] has no arn")
        return rolechoice.pick(self.ctx, self.role["name"], idp["name"], roles, who)

    def retrieve(self):
        token, claims = self.session.id_token()
        arn = self._role_arn(claims)
        session_name = self.role.get("session_name") or session_name_from(claims, self.session.idp.get("session_name_claim"))
        client = sts.client(self.region, self.endpoint_url, None)  # unsigned: the token is the credential
        context = f"{claims.get('sub')} from {self.session.idp['issuer']}"
        response, sent_at = sts.call(client, "AssumeRoleWithWebIdentity", context, RoleArn=arn, RoleSessionName=session_name,
                                     WebIdentityToken=token, DurationSeconds=self.role["duration"])
        return sts.credentials_from_response(response, sent_at)
