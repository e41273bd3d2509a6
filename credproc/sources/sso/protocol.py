"""AWS IAM Identity Center: the public `sso-oidc` and `sso` (portal) services, through botocore
clients that are unsigned and pointed at explicit endpoints (never the default credential chain),
and SsoSession, the sign-in of one [idp.NAME] kept in the encrypted cache under its own lock.

As the AWS CLI v2's `sso login`: RegisterClient (a public client), then either the device flow
(StartDeviceAuthorization, CreateToken polling) or the authorization code flow with PKCE S256 and
a random state through a one-shot listener on http://127.0.0.1:PORT/oauth/callback; CreateToken
with the refresh_token grant while the registration lasts; GetRoleCredentials with the bearer token.

The AWS CLI's own token file (~/.aws/sso/cache/<sha1 of the sso-session name>.json) can be read
("read") or shared ("share"); see CliTokenCache.
"""

import base64
import configparser
import hashlib
import json
import os
import re
import secrets
import time
import urllib.parse

from ...core import log
from ...core.cache import Entry
from ...core.credentials import Credentials
from ...core.errors import AccessDenied, AuthenticationFailed, LockTimeout, LoginRequired, NetworkError, ServiceError
from ..base import entry_json
from ..checks import ACCOUNT_ID_RE, PERMISSION_SET_RE, secure_url

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OIDC_SERVICE = "sso-oidc"
PORTAL_SERVICE = "sso"  # not an idp type: botocore's name of the access portal service
DEFAULT_SCOPES = ["sso:account:access"]
REDIRECT_PATH = "/oauth/callback"
MIN_TOKEN_LEFT = 120  # a cached access token closer than this to its end is refreshed first
REGISTRATION_MARGIN = 3600  # re-register rather than start a sign-in on a registration about to end
MAX_FILE_BYTES = 64 * 1024
MAX_REGISTRATION_LIFE = 366 * 86400
MAX_ROLE_LIFE = 36 * 3600  # a permission set's session lasts 12 hours at most; more is a broken answer

_ERROR_CODE_JUNK = re.compile(r"[^\w.:-]")

# DNS suffix by partition, as in botocore's partitions data (endpoints.json / partitions.json).
_PARTITIONS = (("cn-", "amazonaws.com.cn"), ("us-isob-", "sc2s.sgov.gov"), ("us-isof-", "csp.hci.ic.gov"),
               ("us-iso-", "c2s.ic.gov"), ("eu-isoe-", "cloud.adc-e.uk"))


class TokenRejected(Exception):
    """The portal answered 401 to an access token (expired early, logged out elsewhere)."""


def endpoints(region):
    """(sso-oidc URL, portal URL) of a region. The start URL's host never names the region."""
    suffix = next((s for prefix, s in _PARTITIONS if region.startswith(prefix)), "amazonaws.com")
    return f"https://oidc.{region}.{suffix}", f"https://portal.sso.{region}.{suffix}"


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def _parse_iso(value):
    """Epoch seconds from the CLI's timestamps ("2026-11-23T12:00:00Z", "+00:00", fractions, and
    "2026-11-23T12:00:00UTC", which AWS CLI v1 and older botocore wrote), or None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    if value.endswith("UTC"):
        value = value[:-3] + "Z"
    from ...core.credentials import parse_expiration

    try:
        return parse_expiration(value)
    except (ValueError, TypeError):
        return None


def printable(text, limit=128):
    """Text from the service made safe for a terminal line or a TOML comment: no control
    characters (escape sequences, newlines), bounded length."""
    return "".join(c for c in str(text) if c.isprintable())[:limit]


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SsoClient:
    """The two services for one [idp.NAME]. `terminal` shows codes and URLs (never stdout)."""

    def __init__(self, idp, terminal, sleep=time.sleep, clock=time.time, open_browser=None):
        self.idp = idp
        self.terminal = terminal
        self.sleep = sleep
        self.clock = clock
        default_oidc, default_portal = endpoints(idp["region"])
        self.oidc_url = idp.get("oidc_endpoint_url") or default_oidc
        self.portal_url = idp.get("portal_endpoint_url") or default_portal
        self._open_browser = open_browser or _open_browser
        self._clients = {}

    def _client(self, service):
        if service not in self._clients:
            import botocore
            import botocore.config
            import botocore.exceptions as bx

            from ...core.sts import botocore_session

            cfg = botocore.config.Config(signature_version=botocore.UNSIGNED, connect_timeout=5, read_timeout=30,
                                         retries={"total_max_attempts": 2, "mode": "standard"}, user_agent_appid="credproc")
            url = self.oidc_url if service == OIDC_SERVICE else self.portal_url
            try:
                self._clients[service] = botocore_session().create_client(service, region_name=self.idp["region"],
                                                                           endpoint_url=url, config=cfg)
            except bx.BotoCoreError as e:
                raise ServiceError(f"cannot set up an {service} client for region {self.idp['region']!r}: {type(e).__name__}") from None
        return self._clients[service]

    def _call(self, service, operation, **params):
        """The operation's response; botocore failures become credproc errors, except ClientError,
        returned as (None, code) for the caller to judge. Parameters may be secrets: never logged."""
        import botocore.exceptions as bx

        client = self._client(service)
        url = self.oidc_url if service == OIDC_SERVICE else self.portal_url
        try:
            return getattr(client, _snake(operation))(**params), None
        except bx.ClientError as e:
            code = e.response.get("Error", {}).get("Code") or str(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
            code = _ERROR_CODE_JUNK.sub("", str(code))[:80] or "an unnamed error"  # it goes into one-line messages
            log.debug("%s %s: %s", service, operation, code)
            return None, code
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError) as e:
            from ...core.sts import connection_reason

            raise NetworkError(f"cannot reach IAM Identity Center ({service}) at {url}: {connection_reason(e)}",
                               hint="check the region, the network and any proxy") from None
        except bx.BotoCoreError as e:
            raise ServiceError(f"IAM Identity Center ({service}) at {url}: {operation} failed: {type(e).__name__}") from None
        except (AttributeError, TypeError, ValueError, KeyError) as e:
            # botocore's parser trips over JSON of the wrong shape (a list where the model says structure)
            log.debug("%s %s: botocore could not parse the answer: %s", service, operation, type(e).__name__)
            raise ServiceError(f"IAM Identity Center ({service}) at {url} answered {operation} with a malformed response") from None

    # -- registration ---------------------------------------------------------------------------
    def register(self, flow):
        scopes = self.idp["scopes"]
        params = {"clientName": f"credproc-{self.idp['name']}", "clientType": "public", "scopes": scopes}
        if flow == "browser":
            params.update(grantTypes=["authorization_code", "refresh_token"],
                          redirectUris=["http://127.0.0.1" + REDIRECT_PATH], issuerUrl=self.idp["start_url"])
        else:
            params.update(grantTypes=[DEVICE_GRANT, "refresh_token"])
        resp, code = self._call(OIDC_SERVICE, "RegisterClient", **params)
        if resp is None:
            raise ServiceError(f"IAM Identity Center at {self.oidc_url} refused to register credproc as a client: {code}")
        expires = resp.get("clientSecretExpiresAt")
        if not (isinstance(resp.get("clientId"), str) and resp["clientId"] and isinstance(resp.get("clientSecret"), str)
                and resp["clientSecret"] and isinstance(expires, int) and not isinstance(expires, bool) and expires > self.clock()):
            raise ServiceError(f"IAM Identity Center at {self.oidc_url} answered RegisterClient without a usable client")
        # registrations last 90 days; a far-off date (year 10**20) would break every date printed from it
        expires = min(expires, int(self.clock()) + MAX_REGISTRATION_LIFE)
        return {"client_id": resp["clientId"], "client_secret": resp["clientSecret"],
                "expires_at": expires, "flow": flow, "scopes": scopes}

    # -- sign-in --------------------------------------------------------------------------------
    def login(self, registration):
        if registration["flow"] == "device":
            return self.device_login(registration)
        return self.browser_login(registration)

    def device_login(self, reg):
        self.terminal.require("an IAM Identity Center sign-in (device code)")
        resp, code = self._call(OIDC_SERVICE, "StartDeviceAuthorization", clientId=reg["client_id"],
                                clientSecret=reg["client_secret"], startUrl=self.idp["start_url"])
        if resp is None or not resp.get("deviceCode"):
            raise ServiceError(f"device authorization at {self.oidc_url} failed: {code or 'no device code'}")
        # the service's words go on the terminal: no escape sequences; and only a web URL is opened
        self.terminal.say(f"To sign in to {self.idp['start_url']}, open {printable(resp.get('verificationUri'), 512)} "
                          f"and enter the code {printable(resp.get('userCode'), 64)}")
        complete = resp.get("verificationUriComplete")
        if isinstance(complete, str) and complete and secure_url(complete) is None:
            self.terminal.say(f"  (or open {printable(complete, 512)})")
            self._open_browser(self.idp, complete)
        interval = _bounded(resp.get("interval"), 5, 1, 60)
        deadline = self.clock() + _bounded(resp.get("expiresIn"), 600, 30, 1800)
        with self.terminal.progress("  waiting for the sign-in..."):
            while True:
                self.sleep(interval)
                if self.clock() > deadline:
                    raise AuthenticationFailed("the sign-in code expired before the sign-in completed", hint="run the command again")
                tokens, code = self._call(OIDC_SERVICE, "CreateToken", grantType=DEVICE_GRANT, clientId=reg["client_id"],
                                          clientSecret=reg["client_secret"], deviceCode=resp["deviceCode"])
                if tokens is not None:
                    return self._tokens(tokens)
                if code == "AuthorizationPendingException":
                    continue
                if code == "SlowDownException":
                    interval = min(interval + 5, 60)
                    continue
                if code == "ExpiredTokenException":
                    raise AuthenticationFailed("the sign-in code expired before the sign-in completed", hint="run the command again")
                if code == "AccessDeniedException":
                    raise AuthenticationFailed("the sign-in was denied in the browser")
                raise ServiceError(f"IAM Identity Center at {self.oidc_url} answered CreateToken with {code}")

    def browser_login(self, reg, wait=300):
        from ...core.loopback import Listener

        self.terminal.require_browser("an IAM Identity Center sign-in in a browser")
        verifier = _b64url(secrets.token_bytes(48))
        state = _b64url(secrets.token_bytes(16))
        listener = Listener(REDIRECT_PATH, state, self.idp.get("redirect_port") or 0,
                            f"idp.{self.idp.get('name')}.redirect_port")
        try:
            redirect_uri = f"http://127.0.0.1:{listener.port}{REDIRECT_PATH}"
            query = {"response_type": "code", "client_id": reg["client_id"], "redirect_uri": redirect_uri, "state": state,
                     "code_challenge_method": "S256", "scopes": " ".join(reg.get("scopes") or self.idp["scopes"]),
                     "code_challenge": _b64url(hashlib.sha256(verifier.encode()).digest())}
            url = self.oidc_url.rstrip("/") + "/authorize?" + urllib.parse.urlencode(query)
            if self.terminal.attended():  # else the browser window is what the user sees
                self.terminal.say(f"To sign in to {self.idp['start_url']}, open this URL in a browser on this machine:\n  {url}")
            listener.start()
            self._open_browser(self.idp, url)
            with self.terminal.progress("  waiting for the sign-in..."):
                params = listener.wait(wait)
        finally:
            listener.stop()
        if params is None:
            raise AuthenticationFailed(f"no sign-in arrived within {wait} s",
                                       hint='over SSH, or without a browser on this machine, set flow = "device"')
        if params.get("error"):  # words from the redirect: one printable line
            raise AuthenticationFailed(f"the sign-in failed: {printable(params['error'], 100)}")
        tokens, code = self._call(OIDC_SERVICE, "CreateToken", grantType="authorization_code", clientId=reg["client_id"],
                                  clientSecret=reg["client_secret"], redirectUri=redirect_uri, code=params.get("code", ""),
                                  codeVerifier=verifier)
        if tokens is None:
            raise AuthenticationFailed(f"IAM Identity Center did not accept the authorization code: {code}")
        return self._tokens(tokens)

    def refresh(self, reg, refresh_token):
        """New tokens, or None when the refresh token or the registration is no longer good."""
        tokens, code = self._call(OIDC_SERVICE, "CreateToken", grantType="refresh_token", clientId=reg["client_id"],
                                  clientSecret=reg["client_secret"], refreshToken=refresh_token)
        if tokens is not None:
            return self._tokens(tokens)
        if code in ("InvalidGrantException", "InvalidClientException", "UnauthorizedClientException", "AccessDeniedException",
                    "ExpiredTokenException"):
            return None
        raise ServiceError(f"refreshing the IAM Identity Center sign-in at {self.oidc_url} failed: {code}")

    def _tokens(self, resp):
        if not isinstance(resp.get("accessToken"), str) or not resp["accessToken"]:
            raise ServiceError(f"IAM Identity Center at {self.oidc_url} answered CreateToken without an access token")
        out = {"access_token": resp["accessToken"],
               "expires_at": int(self.clock()) + _bounded(resp.get("expiresIn"), 3600, 0, 7 * 86400)}
        if isinstance(resp.get("refreshToken"), str) and resp["refreshToken"]:
            out["refresh_token"] = resp["refreshToken"]
        return out

    # -- the portal -----------------------------------------------------------------------------
    def _portal(self, operation, **params):
        resp, code = self._call(PORTAL_SERVICE, operation, **params)
        if resp is not None:
            return resp
        if code == "UnauthorizedException":
            raise TokenRejected()
        what = f"account {params.get('accountId')}" + (f", role {params['roleName']}" if params.get("roleName") else "")
        if code in ("ResourceNotFoundException", "ForbiddenException", "AccessDeniedException"):
            raise AccessDenied(f"IAM Identity Center does not give you {what}",
                               hint=f"list what you can reach with: credproc sso roles --idp {self.idp['name']}")
        raise ServiceError(f"IAM Identity Center portal at {self.portal_url}: {operation} ({what}) failed: {code}")

    def role_credentials(self, access_token, account_id, role_name):
        resp = self._portal("GetRoleCredentials", accessToken=access_token, accountId=account_id, roleName=role_name)
        rc = resp.get("roleCredentials")
        rc = rc if isinstance(rc, dict) else {}
        what = f"IAM Identity Center answered GetRoleCredentials for {account_id}/{role_name}"
        if not all(isinstance(rc.get(k), str) and rc[k] for k in ("accessKeyId", "secretAccessKey", "sessionToken")):
            raise ServiceError(f"{what} without credentials")
        expiration = rc.get("expiration")
        if not isinstance(expiration, int) or isinstance(expiration, bool) \
                or not self.clock() < expiration / 1000 <= self.clock() + MAX_ROLE_LIFE:
            # epoch MILLIseconds: seconds here would be credentials that ended in January 1970
            raise ServiceError(f"{what} with an expiration that is not a time (epoch milliseconds) in the next "
                               f"{MAX_ROLE_LIFE // 3600} hours: {printable(repr(expiration), 40)}")
        return Credentials(rc["accessKeyId"], rc["secretAccessKey"], rc["sessionToken"], expiration // 1000, account_id)

    def _paginate(self, operation, key, **params):
        items, token = [], None
        for _ in range(1000):  # bounded: a portal that always answers nextToken cannot loop us forever
            page = self._portal(operation, **params, **({"nextToken": token} if token else {}))
            found, token = page.get(key) or [], page.get("nextToken")
            if not isinstance(found, list) or not (token is None or isinstance(token, str)):
                raise ServiceError(f"IAM Identity Center portal at {self.portal_url} answered {operation} with a malformed page")
            items.extend(x for x in found if isinstance(x, dict))
            if not token:
                return items
        raise ServiceError(f"IAM Identity Center portal: {operation} did not finish paginating")

    def _checked(self, operation, value, pattern, what):
        """An id or name from the portal, which ends up in a [role.*] block to paste and on the
        terminal: anything but the documented shape (quotes, newlines, escapes) is refused."""
        if not isinstance(value, str) or not pattern.match(value):
            raise ServiceError(f"IAM Identity Center portal at {self.portal_url} answered {operation} with "
                               f"{printable(repr(value), 40)}, which is not {what}")
        return value

    def accounts(self, access_token):
        """[(account_id, account_name)] sorted by id."""
        found = self._paginate("ListAccounts", "accountList", accessToken=access_token, maxResults=100)
        return sorted((self._checked("ListAccounts", a.get("accountId"), ACCOUNT_ID_RE, "a 12-digit account id"),
                       printable(a.get("accountName") or "")) for a in found)

    def roles(self, access_token, account_id):
        found = self._paginate("ListAccountRoles", "roleList", accessToken=access_token, accountId=account_id, maxResults=100)
        return sorted(self._checked("ListAccountRoles", r.get("roleName"), PERMISSION_SET_RE, "a permission set name")
                      for r in found)

    def logout(self, access_token):
        resp, code = self._call(PORTAL_SERVICE, "Logout", accessToken=access_token)
        if code == "UnauthorizedException":
            raise TokenRejected()
        return resp is not None


def _snake(name):
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _bounded(value, default, lo, hi):
    try:
        return max(lo, min(hi, int(value)))
    except (TypeError, ValueError):
        return default


def _open_browser(idp, url):
    """As for OpenID Connect: $BROWSER honoured, never a text browser, never inheriting stdout."""
    from ...core.browser import open_url

    if idp.get("open_browser", True):
        open_url(url)


class CliTokenCache:
    """The AWS CLI's token files in ~/.aws/sso/cache. Nothing read there is trusted: a file must be
    a JSON object for this very start URL, with an access token and a parseable expiry."""

    def __init__(self, idp):
        self.idp = idp
        self.mode = idp["aws_cli_cache"]
        self.dir = os.path.normpath(os.path.expanduser("~/.aws/sso/cache"))

    @staticmethod
    def _name(text):
        return hashlib.sha1(text.encode("utf-8")).hexdigest() + ".json"

    def shared_path(self):
        return os.path.join(self.dir, self._name(self.idp["name"]))

    def _session_names(self):
        path = os.environ.get("AWS_CONFIG_FILE") or os.path.join(os.path.expanduser("~"), ".aws", "config")
        from ...core.awsfiles import read_bytes

        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read_string((read_bytes(os.path.expanduser(path)) or b"").decode("utf-8"))
        except (configparser.Error, OSError, UnicodeDecodeError) as e:
            log.debug("cannot read %s for sso-session sections: %s", path, type(e).__name__)
            return []
        names = []
        for section in parser.sections():
            if section.startswith("sso-session ") and parser.get(section, "sso_start_url", fallback=None) == self.idp["start_url"]:
                names.append(section[len("sso-session "):].strip())
        return names

    def candidates(self):
        if self.mode == "off":
            return []
        paths = [self.shared_path()] if self.mode == "share" else []
        paths += [os.path.join(self.dir, self._name(n)) for n in self._session_names()]
        paths.append(os.path.join(self.dir, self._name(self.idp["start_url"])))  # the legacy (profile) layout
        seen = []
        for p in paths:
            if p not in seen:
                seen.append(p)
        return seen

    def load(self, path):
        """The file as our state ({"access_token", "expires_at", ["refresh_token", "registration"]}), or None."""
        from ...core.cache import read_file

        try:  # no symbolic link, FIFO, device or oversized file: refused at once, never waited on
            data = json.loads(read_file(path, MAX_FILE_BYTES))
        except (OSError, ValueError) as e:
            if not isinstance(e, FileNotFoundError):
                log.debug("not reading the AWS CLI token file %s: %s", path, getattr(e, "strerror", None) or type(e).__name__)
            return None
        if not isinstance(data, dict) or data.get("startUrl") != self.idp["start_url"]:
            return None  # a token for another start URL is never used
        expires = _parse_iso(data.get("expiresAt"))
        if not isinstance(data.get("accessToken"), str) or not data["accessToken"] or expires is None:
            return None
        state = {"access_token": data["accessToken"], "expires_at": expires, "from_cli": path}
        reg_expires = _parse_iso(data.get("registrationExpiresAt"))
        if isinstance(data.get("refreshToken"), str) and isinstance(data.get("clientId"), str) \
                and isinstance(data.get("clientSecret"), str) and reg_expires and data.get("region", self.idp["region"]) == self.idp["region"]:
            state["refresh_token"] = data["refreshToken"]
            state["registration"] = {"client_id": data["clientId"], "client_secret": data["clientSecret"],
                                     "expires_at": reg_expires, "flow": self.idp["flow"], "scopes": self.idp["scopes"]}
        return state

    def write(self, state):
        if self.mode != "share" or not state.get("access_token"):
            return
        from ...core.store import atomic_write, ensure_private_dir

        doc = {"startUrl": self.idp["start_url"], "region": self.idp["region"], "accessToken": state["access_token"],
               "expiresAt": _iso(state["expires_at"])}
        reg = state.get("registration")
        if reg and state.get("refresh_token"):
            doc.update(clientId=reg["client_id"], clientSecret=reg["client_secret"],
                       registrationExpiresAt=_iso(reg["expires_at"]), refreshToken=state["refresh_token"])
        try:
            ensure_private_dir(self.dir)
            atomic_write(self.shared_path(), json.dumps(doc).encode())
        except Exception as e:  # noqa: BLE001 - sharing is a convenience; our own cache holds the sign-in
            log.warn(f"could not write the AWS CLI token file {self.shared_path()}: {getattr(e, 'message', None) or type(e).__name__}")

    def delete(self, refresh_token=None):
        """Remove the shared file (with refresh_token: only while it still holds that refresh token)."""
        if self.mode != "share":
            return
        if refresh_token is not None:
            theirs = self.load(self.shared_path())
            if theirs is None or theirs.get("refresh_token") != refresh_token:
                return
        try:
            os.unlink(self.shared_path())
        except OSError:
            pass


class SsoSession:
    """The Identity Center sign-in of one [idp.NAME]: registration, access token and refresh token,
    in the encrypted cache under the sign-in's own lock, shared by every role over the idp."""

    def __init__(self, ctx, idp, client=None):
        self.ctx = ctx
        self.idp = idp
        self.identity = f"sso:{idp['name']}"
        self.client = client or SsoClient(idp, ctx.terminal)
        self.cli = CliTokenCache(idp)
        self._rejected = set()

    def describe(self):
        return f"SsoSession({self.idp['start_url']}, {self.idp['region']}, flow={self.idp['flow']})"

    def load(self):
        entry = self.ctx.store.get(self.identity)
        if entry is None or entry.fingerprint != self.ctx.config.idp_fingerprint(self.idp["name"]):
            return {}
        return entry_json(entry)

    def _save(self, state):
        state = {k: state[k] for k in ("registration", "access_token", "expires_at", "refresh_token") if k in state}
        reg = state.get("registration")
        keep_until = state.get("expires_at", 0)
        if reg:  # the refresh token, or at least the registration, is good until then
            keep_until = max(keep_until, reg["expires_at"])
        self.ctx.store.put(self.identity, Entry(keep_until, keep_until, self.ctx.config.digest,
                                                self.ctx.config.idp_fingerprint(self.idp["name"]),
                                                json.dumps(state).encode()))
        self.cli.write(state)

    def _usable(self, state, left=MIN_TOKEN_LEFT):
        exp = state.get("expires_at")
        return bool(state.get("access_token")) and isinstance(exp, int) and exp - self.ctx.now() > left

    def _newest(self):
        """Our state, or a newer one that the AWS CLI (or an SDK) left in a shared token file."""
        if self.ctx.force:  # `login --force`: a new sign-in, whatever is cached here or there
            return {}, False
        state = self.load()
        ours = state.get("expires_at", 0)
        for path in self.cli.candidates():
            theirs = self.cli.load(path)
            if theirs is None:
                continue
            if self.cli.mode == "share" and theirs.get("refresh_token") and path == self.cli.shared_path() \
                    and (theirs["expires_at"] > ours or (theirs["expires_at"] == ours
                                                         and theirs["refresh_token"] != state.get("refresh_token"))):
                # the CLI or an SDK refreshed (and so rotated) the shared sign-in: theirs wins. A tie
                # goes to theirs too: we rewrite that file whenever we save, so a different refresh
                # token there was written after ours (a refresh within the same second)
                log.debug("%s: adopting the newer sign-in from %s", self.identity, path)
                theirs.pop("from_cli", None)
                if theirs["access_token"] in self._rejected:  # keep their refresh token, not the refused token
                    theirs.update(access_token=None, expires_at=0)
                return theirs, True
            if theirs["expires_at"] <= ours or theirs["access_token"] in self._rejected:
                continue
            if self._usable(theirs) and not self._usable(state):
                log.debug("%s: using the access token that the AWS CLI left in %s", self.identity, path)
                return dict(state, access_token=theirs["access_token"], expires_at=theirs["expires_at"], borrowed=True), False
        return state, False

    def access_token(self):
        """A usable access token: cached, else the CLI's, else refreshed, else a new sign-in."""
        state, adopted = self._newest()
        if self._usable(state) and not adopted:
            return state["access_token"]
        lock = self.ctx.store.lock(self.identity, f"a sign-in at {self.idp['start_url']}")
        lock.acquire(self.ctx.lock_deadline)
        try:
            state, adopted = self._newest()
            if adopted:
                self._save(state)
            if self._usable(state):
                return state["access_token"]
            return self._renew(state)
        finally:
            lock.release()

    def _renew(self, state, raced=False):
        reg = state.get("registration")
        now = self.ctx.now()
        if state.get("refresh_token") and reg and reg.get("expires_at", 0) > now:
            log.debug("%s: refreshing the access token", self.identity)
            tokens = self.client.refresh(reg, state["refresh_token"])
            if tokens is not None:
                new = {"registration": reg, "access_token": tokens["access_token"], "expires_at": tokens["expires_at"],
                       "refresh_token": tokens.get("refresh_token") or state["refresh_token"]}
                self._save(new)  # first: a rotated refresh token is the only one still good
                return new["access_token"]  # even with a short life: it is brand new
            log.debug("%s: the refresh token was refused; a new sign-in is needed", self.identity)
            ended = True
            self._save({"registration": reg})
            # else every later call (and every SDK reading the shared file) adopts it and tries it again
            self.cli.delete(refresh_token=state["refresh_token"])
            theirs, adopted = self._newest()
            if adopted and not raced:
                # the CLI or an SDK refreshed the shared sign-in at the same moment and won the
                # rotation: the refused token was spent by them, and their copy is good
                log.debug("%s: the shared file holds a newer sign-in; taking it", self.identity)
                self._save(theirs)
                return theirs["access_token"] if self._usable(theirs) else self._renew(theirs, raced=True)
        else:
            ended = bool(state.get("refresh_token"))
        terminal = self.ctx.terminal
        if not (terminal.browser_possible() if self.idp["flow"] == "browser" else terminal.available()):
            at = self.idp["start_url"]
            why = f"your IAM Identity Center sign-in at {at} has ended (the refresh was refused)" if ended \
                else f"an IAM Identity Center sign-in at {at} is needed"
            hint = f"run in a terminal: {terminal.login_command}"
            if self.idp["flow"] == "browser" and not getattr(terminal, "desktop", False):
                hint += ' (or, on a desktop, set [settings] prompt = "gui" to let it open the browser without one)'
            raise LoginRequired(f"{why} and there is no terminal to ask on", hint=hint)
        if not reg or reg.get("flow") != self.idp["flow"] or reg.get("expires_at", 0) - now < REGISTRATION_MARGIN \
                or reg.get("scopes") != self.idp["scopes"]:
            reg = self.client.register(self.idp["flow"])
            self._save({"registration": reg})
        tokens = self.client.login(reg)
        new = {"registration": reg, "access_token": tokens["access_token"], "expires_at": tokens["expires_at"]}
        if tokens.get("refresh_token"):
            new["refresh_token"] = tokens["refresh_token"]
        self._save(new)
        return new["access_token"]

    def with_token(self, call):
        """call(access_token), for portal calls. A token the portal refuses (401) is dropped and
        never offered again, so each round gets a newer one: ours, then one the AWS CLI left in
        its cache, then a freshly refreshed one."""
        for _ in range(3):
            token = self.access_token()
            try:
                return call(token)
            except TokenRejected:
                log.debug("%s: the portal refused the access token (401); dropping it", self.identity)
                self.reject(token)
        raise LoginRequired(f"IAM Identity Center at {self.idp['start_url']} rejects the sign-in",
                            hint=f"sign in again: {self.ctx.terminal.login_command}")

    def reject(self, token):
        """The portal said 401 to `token`: drop it (keeping the refresh token) so the next
        access_token() refreshes."""
        lock = self.ctx.store.lock(self.identity, f"a sign-in at {self.idp['start_url']}")
        lock.acquire(self.ctx.lock_deadline)
        try:
            state = self.load()
            if state.get("access_token") == token:
                # expires_at stays: a copy in the CLI's cache must still be newer than ours to be taken
                state.pop("access_token", None)
                self._save(state)
            self._rejected.add(token)
        finally:
            lock.release()

    def logout(self):
        """Forget the sign-in (first), then end it at the portal. The copy ended is the newest, by the
        rule sign-in uses (_newest): in "share" mode an SDK may have refreshed, and so rotated, the
        shared sign-in, and then only its refresh token still works. Returns True (the portal took
        the Logout), None (nothing was left to end: no token still good) or False (it could not be
        ended: the sign-in may still work at the service; the reason is logged)."""
        lock = self.ctx.store.lock(self.identity, f"a sign-in at {self.idp['start_url']}")
        try:
            lock.acquire(self.ctx.lock_deadline)
        except LockTimeout:
            log.warn(f"another credproc process is busy with the sign-in at {self.idp['start_url']}; logging out anyway")
        try:
            state = self.load()
            if not self.ctx.force:
                newest, adopted = self._newest()
                if adopted:
                    state = newest
            self.ctx.store.delete(self.identity)
            self.cli.delete()
            try:
                return self._end_at_portal(state)
            except (NetworkError, ServiceError) as e:
                log.warn(f"could not end the sign-in at the portal: {e}")
            return False
        finally:
            lock.release()

    def _end_at_portal(self, state):
        """Logout at the portal. An access token that is over (here, or early at the service) is
        not the end of it: the refresh token still works there, so a logout that stopped at that
        would leave a sign-in alive for anyone holding a copy; refresh once, then Logout."""
        if self._usable(state, 0):
            try:
                return self.client.logout(state["access_token"])
            except TokenRejected:
                pass
        reg = state.get("registration") or {}
        if not state.get("refresh_token") or reg.get("expires_at", 0) <= self.ctx.now():
            return None  # no refresh token, or its client registration is over: nothing still works
        tokens = self.client.refresh(reg, state["refresh_token"])
        if not tokens:
            return None  # the service refused the newest refresh token: that sign-in is over
        try:
            return self.client.logout(tokens["access_token"])
        except TokenRejected:
            return False
