"""OpenID Connect: discovery and JWKS (cached), the device, browser and password flows, refresh,
and the validation of every ID token before it goes anywhere near STS.

moto checks nothing about web identity tokens and real STS checks less than one might think, so
credproc validates what it is responsible for: signature against the issuer's JWKS with an
asymmetric algorithm the issuer advertises (never `none`, never HS* with a public key), iss, aud
(and azp), exp/nbf/iat with a small leeway, and the nonce of the browser flow.
"""

import base64
import hashlib
import json
import secrets
import time
import urllib.parse

from ...core import browser, log
from ...core import http as web
from ...core.errors import AuthenticationFailed, ConfigError, CredprocError, LoginRequired, ServiceError
from ...core.loopback import Listener

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY = 60
METADATA_TTL = 24 * 3600
MAX_METADATA_BYTES = 512 * 1024
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class InvalidToken(AuthenticationFailed):
    """An ID token that failed validation: never sent to STS."""


def _bounded_int(value, default, lo, hi):
    try:
        return max(lo, min(hi, int(value)))
    except (TypeError, ValueError):
        return default


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def metadata_identity(issuer):
    """The cache identity of an issuer's discovery document and JWKS."""
    return f"oidc-metadata:{issuer}"


class Issuer:
    """Discovery document and JWKS of one issuer, cached in the encrypted store (bounded in size and
    age). Not secret, but it says where the password, the client secret and refresh tokens are sent
    and which keys sign ID tokens: whoever could rewrite a plain file could redirect them. An entry
    that does not decrypt and verify is a miss, and the metadata is fetched again."""

    def __init__(self, idp, store):
        self.idp = idp
        self.issuer = idp["issuer"]  # exactly as configured: some issuers end in "/", and iss must match
        self.store = store
        self.identity = metadata_identity(self.issuer)
        self._meta = None
        self._jwks_refetched = False

    def _get_json(self, url, what):
        resp = web.request("GET", url, timeout=self.idp["timeout"], ca_bundle=self.idp.get("ca_bundle"), what=what,
                           max_bytes=MAX_METADATA_BYTES)
        if resp.status != 200:
            raise ServiceError(f"{what} at {url} answered HTTP {resp.status}")
        if len(resp.body) > MAX_METADATA_BYTES:
            raise ServiceError(f"{what} at {url} is larger than {MAX_METADATA_BYTES} bytes")
        try:
            return resp.json()
        except ValueError:
            raise ServiceError(f"{what} at {url} is not JSON") from None

    def _jwks(self, url):
        jwks = self._get_json(url, "the issuer's JWKS")
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ServiceError(f"the JWKS of {self.issuer} at {url} is not a key set")
        return jwks

    def _load_cached(self):
        try:
            entry = self.store.get(self.identity)
            if entry is None:
                return None
            data = json.loads(entry.body)
            if data.get("issuer") == self.issuer and 0 <= time.time() - float(data.get("fetched_at", 0)) < METADATA_TTL \
                    and isinstance(data.get("discovery"), dict) and isinstance(data.get("jwks"), dict):
                return data
        except (CredprocError, ValueError, AttributeError, TypeError):
            pass
        return None

    def _save(self, meta):
        from ...core.cache import Entry

        expires = int(meta["fetched_at"]) + METADATA_TTL
        try:
            self.store.put(self.identity, Entry(expires, expires, "-", "-", json.dumps(meta).encode()))
        except CredprocError as e:  # a cache we cannot write only costs a fetch
            log.debug("could not cache OIDC metadata: %s", e)

    def metadata(self):
        if self._meta is None:
            self._meta = self._load_cached() or self._fetch()
        return self._meta

    def _fetch(self):
        web.check_url(self.issuer, f"idp.{self.idp['name']}.issuer")
        disco = self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration", "the OIDC discovery document")
        if not isinstance(disco, dict) or disco.get("issuer") != self.issuer:
            named = disco.get("issuer") if isinstance(disco, dict) else None
            raise ServiceError(f"the discovery document of {self.issuer} names another issuer: {named!r}",
                               hint="issuer must be exactly the IdP's issuer URL (mind a trailing /)")
        for key in ("token_endpoint", "jwks_uri", "authorization_endpoint", "device_authorization_endpoint",
                    "revocation_endpoint"):
            value = disco.get(key)
            if value is None and key not in ("token_endpoint", "jwks_uri"):
                continue
            if not isinstance(value, str) or not value:
                raise ServiceError(f"the discovery document of {self.issuer} has no usable {key}")
            web.check_url(value, f"the issuer's {key}")
        algs = disco.get("id_token_signing_alg_values_supported")
        if algs is not None and not (isinstance(algs, list) and all(isinstance(a, str) for a in algs)):
            raise ServiceError(f"the discovery document of {self.issuer} has a malformed id_token_signing_alg_values_supported")
        jwks = self._jwks(disco["jwks_uri"])
        meta = {"issuer": self.issuer, "fetched_at": time.time(), "discovery": disco, "jwks": jwks}
        self._save(meta)
        return meta

    def endpoint(self, name):
        url = self.metadata()["discovery"].get(name)
        if not url:
            raise ConfigError(f"the issuer {self.issuer} has no {name} (needed by flow = {self.idp['flow']!r})")
        web.check_url(url, f"the issuer's {name}")
        return url

    def refetch_jwks(self):
        """Once per run: an unknown `kid` usually means the issuer rotated its keys."""
        if self._jwks_refetched:
            return False
        self._jwks_refetched = True
        meta = self.metadata()
        meta["jwks"] = self._jwks(meta["discovery"]["jwks_uri"])
        meta["fetched_at"] = time.time()
        self._save(meta)
        return True

    # -- ID token validation -----------------------------------------------------------------
    def allowed_algorithms(self):
        advertised = self.metadata()["discovery"].get("id_token_signing_alg_values_supported") or ["RS256"]
        return [a for a in advertised if a in ASYMMETRIC]

    def validate(self, id_token, nonce=None, now=None):
        """The ID token's claims, or InvalidToken saying why."""
        import jwt

        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as e:
            raise InvalidToken(f"the ID token from {self.issuer} is malformed: {e}") from None
        alg = header.get("alg")
        allowed = self.allowed_algorithms()
        if alg not in allowed:
            raise InvalidToken(f"the ID token from {self.issuer} uses algorithm {alg!r}; accepted: {', '.join(allowed) or 'none'}")
        keys = self._keys_for(header.get("kid"), alg)
        try:
            for i, key in enumerate(keys):  # several only without a kid, e.g. during a key rotation
                try:
                    claims = jwt.decode(
                        id_token, key=key, algorithms=[alg], audience=self.idp["client_id"], issuer=self.issuer,
                        leeway=LEEWAY, options={"require": ["iss", "aud", "exp", "iat", "sub"]},
                    )
                    break
                except jwt.InvalidSignatureError:
                    if i == len(keys) - 1:
                        raise
        except jwt.ExpiredSignatureError:
            raise InvalidToken(f"the ID token from {self.issuer} has expired", hint="check the system clock") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"the ID token from {self.issuer} is not for client {self.idp['client_id']} (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(f"the ID token does not come from {self.issuer} (iss)") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken(f"the ID token from {self.issuer} is not valid yet (nbf/iat)", hint="check the system clock") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken(f"the ID token's signature does not verify against {self.issuer}'s keys") from None
        except jwt.PyJWTError as e:
            raise InvalidToken(f"the ID token from {self.issuer} is invalid: {e}") from None
        several = isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1
        if (several or "azp" in claims) and claims.get("azp") != self.idp["client_id"]:
            raise InvalidToken(f"the ID token from {self.issuer} was issued to another client (azp)")
        if nonce is not None and claims.get("nonce") != nonce:
            raise InvalidToken(f"the ID token from {self.issuer} does not carry the nonce of this login (replayed?)")
        return claims

    def _keys_for(self, kid, alg):
        """The issuer's signing keys usable for this token: the one with its kid, or, without a kid,
        every key of the right type. An unknown kid refetches the JWKS once (key rotation)."""
        import jwt

        for attempt in range(2):
            found = []
            for jwk in self.metadata()["jwks"].get("keys", []):
                if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or (kid is not None and jwk.get("kid") != kid):
                    continue
                try:
                    found.append(jwt.PyJWK(jwk, algorithm=alg).key)
                except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                    continue  # a key of another type (an EC key for an RS256 token), or a broken one
            if found:
                return found
            if attempt == 0 and not self.refetch_jwks():
                break
        raise InvalidToken(f"the ID token from {self.issuer} is signed with a key ({kid or 'no kid'}) that is not in its JWKS")


class Client:
    """The token endpoint side: flows and refresh. `terminal` shows codes and URLs."""

    def __init__(self, idp, issuer, terminal, sleep=time.sleep, clock=time.time):
        self.idp = idp
        self.issuer = issuer
        self.terminal = terminal
        self.sleep = sleep
        self.clock = clock

    def _post(self, url, form, what):
        form = dict(form, client_id=self.idp["client_id"])
        headers = {"Accept": "application/json"}
        if self.idp.get("client_secret"):
            methods = self.issuer.metadata()["discovery"].get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            if "client_secret_basic" in methods:
                pair = f"{urllib.parse.quote(self.idp['client_id'], safe='')}:{urllib.parse.quote(self.idp['client_secret'], safe='')}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            else:
                form["client_secret"] = self.idp["client_secret"]
        resp = web.request("POST", url, form=form, headers=headers, timeout=self.idp["timeout"],
                           ca_bundle=self.idp.get("ca_bundle"), what=what)
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return resp.status, body

    def _token(self, form, what="the token endpoint"):
        status, body = self._post(self.issuer.endpoint("token_endpoint"), form, what)
        return status, body

    # -- device flow (RFC 8628) ---------------------------------------------------------------
    def device_login(self):
        self.terminal.require("a browser sign-in (device code)")
        status, body = self._post(self.issuer.endpoint("device_authorization_endpoint"),
                                  {"scope": " ".join(self.idp["scopes"])}, "the device authorization endpoint")
        if status != 200 or not body.get("device_code"):
            raise ServiceError(f"device authorization at {self.issuer.issuer} failed: HTTP {status} {body.get('error', '')}".strip())
        uri = body.get("verification_uri_complete") or body.get("verification_uri")
        self.terminal.say(f"To sign in, open {body.get('verification_uri')} and enter the code {body.get('user_code')}")
        if body.get("verification_uri_complete"):
            self.terminal.say(f"  (or open {body['verification_uri_complete']})")
        self._open_browser(uri)
        interval = _bounded_int(body.get("interval"), 5, 1, 60)
        deadline = self.clock() + _bounded_int(body.get("expires_in"), 600, 30, 1800)
        self.terminal.say("Waiting for the sign-in to complete...")
        with self.terminal.progress("  waiting for the sign-in..."):
            return self._poll_device(body, interval, deadline)

    def _poll_device(self, body, interval, deadline):
        while True:
            self.sleep(interval)
            if self.clock() > deadline:
                raise AuthenticationFailed("the sign-in code expired before the sign-in completed", hint="run the command again")
            status, tokens = self._token({"grant_type": DEVICE_GRANT, "device_code": body["device_code"]})
            if status == 200:
                return tokens
            error = tokens.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval = min(interval + 5, 60)
                continue
            if error == "expired_token":
                raise AuthenticationFailed("the sign-in code expired before the sign-in completed", hint="run the command again")
            if error == "access_denied":
                raise AuthenticationFailed("the sign-in was denied in the browser")
            raise ServiceError(f"the token endpoint of {self.issuer.issuer} answered {status} {error or ''}".strip())

    # -- browser flow: authorization code + PKCE, loopback redirect (RFC 8252) ----------------
    def browser_login(self, wait=300):
        self.terminal.require_browser("a browser sign-in")
        if not self.terminal.attended() and not self.idp.get("open_browser", True):
            raise LoginRequired("a browser sign-in is needed, there is no terminal to show its URL on, and "
                                "open_browser = false", hint=f"run in a terminal: {self.terminal.login_command}")
        verifier = _b64url(secrets.token_bytes(32))
        state, nonce = _b64url(secrets.token_bytes(16)), _b64url(secrets.token_bytes(16))
        listener = Listener(self.idp["redirect_path"], state, self.idp.get("redirect_port") or 0,
                            f"idp.{self.idp.get('name')}.redirect_port")
        try:
            redirect_uri = f"http://127.0.0.1:{listener.port}{self.idp['redirect_path']}"
            query = {"response_type": "code", "client_id": self.idp["client_id"], "redirect_uri": redirect_uri,
                     "scope": " ".join(self.idp["scopes"]), "state": state, "nonce": nonce,
                     "code_challenge": _b64url(hashlib.sha256(verifier.encode()).digest()), "code_challenge_method": "S256"}
            url = self.issuer.endpoint("authorization_endpoint") + "?" + urllib.parse.urlencode(query)
            if self.terminal.attended():  # else the browser window is what the user sees
                self.terminal.say(f"To sign in, open this URL in a browser on this machine:\n  {url}")
            listener.start()
            self._open_browser(url)
            with self.terminal.progress("  waiting for the sign-in..."):
                params = listener.wait(wait)
        finally:
            listener.stop()
        if params is None:
            raise AuthenticationFailed(f"no sign-in arrived within {wait} s")
        if params.get("error"):
            raise AuthenticationFailed(f"the sign-in failed: {params['error']} {params.get('error_description', '')}".strip())
        status, tokens = self._token({"grant_type": "authorization_code", "code": params.get("code", ""),
                                      "redirect_uri": redirect_uri, "code_verifier": verifier})
        if status != 200:
            raise AuthenticationFailed(f"the authorization code was not accepted: {tokens.get('error', status)}")
        tokens["_nonce"] = nonce
        return tokens

    # -- resource owner password grant ------------------------------------------------------------
    def password_login(self):
        from ...core.prompt import run_secret_command

        username = self.idp.get("username") or self.terminal.ask(f"Username for {self.issuer.issuer}: ", what="a username").strip()
        if self.idp.get("password_command"):
            password = run_secret_command(self.idp["password_command"], "the password", f"idp.{self.idp['name']}.password_command")
        else:
            password = self.terminal.ask(f"Password for {username}: ", what="a password", secret=True)
        status, tokens = self._token({"grant_type": "password", "username": username, "password": password,
                                      "scope": " ".join(self.idp["scopes"])})
        del password
        if status != 200:
            if tokens.get("error") in ("invalid_grant", "invalid_client", "unauthorized_client"):
                raise AuthenticationFailed(f"{self.issuer.issuer} rejected the login of {username}: {tokens['error']}")
            raise ServiceError(f"the token endpoint of {self.issuer.issuer} answered {status} {tokens.get('error', '')}".strip())
        return tokens

    # -- refresh ------------------------------------------------------------------------------------
    def refresh(self, refresh_token):
        """New tokens, or None when the IdP says the refresh token is no longer good (invalid_grant)."""
        status, tokens = self._token({"grant_type": "refresh_token", "refresh_token": refresh_token,
                                      "scope": " ".join(self.idp["scopes"])})
        if status == 200:
            return tokens
        if tokens.get("error") == "invalid_grant":
            return None
        raise ServiceError(f"refreshing the login at {self.issuer.issuer} failed: HTTP {status} {tokens.get('error', '')}".strip())

    def revoke(self, refresh_token):
        url = self.issuer.metadata()["discovery"].get("revocation_endpoint")
        if not url:
            return False
        web.check_url(url, "the issuer's revocation_endpoint")
        status, _ = self._post(url, {"token": refresh_token, "token_type_hint": "refresh_token"}, "the revocation endpoint")
        return status == 200

    def login(self):
        flow = self.idp["flow"]
        if flow == "device":
            return self.device_login()
        if flow == "browser":
            return self.browser_login()
        return self.password_login()

    def _open_browser(self, url):
        if self.idp.get("open_browser", True):
            browser.open_url(url)
