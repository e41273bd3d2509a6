"""AWS Sign-In's "login for AWS local development" (what `aws login` does), and LoginSession, the
sign-in of one [idp.NAME] kept in the encrypted cache under its own lock.

The protocol, as botocore 1.44 (credentials.py LoginCredentialFetcher, _build_dpop_header; the
`signin` service model) and the AWS CLI v2 (awscli/customizations/login/) speak it:
  - authorize: GET {base}/v1/authorize?response_type=code&client_id=...&state=...&
    code_challenge_method=SHA-256&scope=openid&redirect_uri=...&code_challenge=<base64url sha256 of
    the verifier, no padding>; client_id arn:aws:signin:::devtools/same-device with the redirect
    http://127.0.0.1:PORT/oauth/callback, or .../cross-device with {base}/v1/sessions/confirmation
    (the user pastes back base64("code=...&state=..."));
  - CreateOAuth2Token: POST {base}/v1/token, unsigned, JSON {clientId, grantType, code, codeVerifier,
    redirectUri | refreshToken}, a DPoP proof (ES256 over an EC P-256 key) in the `DPoP` header on
    both grants; the answer holds the AWS credentials themselves, expiresIn (<= 900 s), a new
    refresh token (they rotate) and, on the code grant only, an ID token whose `sub` is the
    login_session ARN;
  - errors: x-amzn-ErrorType + {"error", "message"}; AccessDeniedException with TOKEN_EXPIRED,
    USER_CREDENTIALS_CHANGED (sign in again), INSUFFICIENT_PERMISSIONS, AUTHCODE_EXPIRED.
There is no revocation call: `aws logout` deletes the CLI's file.

The AWS CLI's file (~/.aws/login/cache/<sha256 of login_session>.json, or $AWS_LOGIN_CACHE_DIRECTORY)
can be read ("read"), shared ("share") or ignored ("off"); see CliLoginCache.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import string
import textwrap
import time
import urllib.parse
import uuid

from ...core import log
from ...core.cache import Entry
from ...core.credentials import Credentials, format_expiration, parse_expiration
from ...core.errors import AccessDenied, AuthenticationFailed, LoginRequired, ServiceError

SAME_DEVICE = "arn:aws:signin:::devtools/same-device"
CROSS_DEVICE = "arn:aws:signin:::devtools/cross-device"
CLIENT_IDS = (SAME_DEVICE, CROSS_DEVICE)
REDIRECT_PATH = "/oauth/callback"
MAX_EXPIRES_IN = 900  # the model: ExpiresIn max 900
SESSION_LIFE = 12 * 3600  # a sign-in refreshes for up to 12 hours
SERVE_LEFT = 600  # served with more than 10 minutes left (botocore's mandatory refresh window)
REFRESH_LEFT = 660  # refreshed from 11 minutes left
MAX_FILE_BYTES = 64 * 1024
MAX_TOKEN = 12288  # the model's RefreshToken max
MAX_ID_TOKEN = 4096
POLICY = "SignInLocalDevelopmentAccess"
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
LOGIN_SESSION_RE = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/:*-]{1,1900}\Z")
_KEY_ID_RE = re.compile(r"^[A-Z0-9]{16,128}\Z")
_ERROR_JUNK = re.compile(r"[^\w.:-]")

# the sign-in base URL by partition, as botocore's signin endpoint rules give it
_PARTITIONS = (("cn-", "https://{}.signin.amazonaws.cn"), ("us-gov-", "https://{}.signin.amazonaws-us-gov.com"))


def base_url(region):
    fmt = next((f for prefix, f in _PARTITIONS if region.startswith(prefix)), "https://{}.signin.aws.amazon.com")
    return fmt.format(region)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def _parse_iso(value):
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return parse_expiration(value)
    except (ValueError, TypeError, OverflowError):
        return None


def printable(text, limit=128):
    return "".join(c for c in str(text) if c.isprintable())[:limit]


def login_session_of(id_token):
    """The `sub` of an ID token (the login_session ARN), unverified as the AWS CLI reads it; None
    when it is not one."""
    if not isinstance(id_token, str) or len(id_token) > MAX_ID_TOKEN or id_token.count(".") != 2:
        return None
    try:
        claims = json.loads(_unb64url(id_token.split(".")[1]))
    except (ValueError, TypeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and LOGIN_SESSION_RE.match(sub) else None


def account_of(login_session):
    return login_session.split(":")[4]


class DpopKey:
    """The sign-in's EC P-256 key. Its PEM is SEC1 ("EC PRIVATE KEY"), as the AWS CLI writes it.
    Never printed: repr shows nothing of it."""

    def __init__(self, private_key):
        self._key = private_key

    def __repr__(self):
        return "DpopKey(<private>)"

    @classmethod
    def generate(cls):
        from cryptography.hazmat.primitives.asymmetric import ec

        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem):
        """None unless an EC P-256 private key in PEM."""
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        if not isinstance(pem, str) or len(pem) > 4096:
            return None
        try:
            key = load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            return None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            return None
        return cls(key)

    def pem(self):
        from cryptography.hazmat.primitives import serialization

        der = self._key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption())
        body = textwrap.fill(base64.b64encode(der).decode(), width=64)
        return f"-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\n"

    def proof(self, htu, now=None, jti=None):
        """The DPoP header value, built exactly as botocore's _build_dpop_header builds it."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        numbers = self._key.public_key().public_numbers()
        jwk = {"kty": "EC", "x": _b64url(numbers.x.to_bytes(32, "big")), "y": _b64url(numbers.y.to_bytes(32, "big")),
               "crv": "P-256"}
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
        payload = {"htm": "POST", "htu": htu, "iat": int(now if now is not None else time.time()),
                   "jti": jti or str(uuid.uuid4())}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(payload, separators=(",", ":")).encode()))
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class SigninError(Exception):
    """A modelled error answer of CreateOAuth2Token: kind (x-amzn-ErrorType), error (its code)."""

    def __init__(self, kind, error, status):
        super().__init__(f"{kind}/{error}")
        self.kind, self.error, self.status = kind, error, status


def _insufficient(where):
    return AccessDenied(f"AWS Sign-In at {where} refused: the signed-in identity may not use login for AWS local "
                        "development (INSUFFICIENT_PERMISSIONS)",
                        hint=f"attach the AWS managed policy {POLICY} (or allow signin:AuthorizeOAuth2Access and "
                             "signin:CreateOAuth2Token) to the identity")


class SigninClient:
    """CreateOAuth2Token and the browser's authorize step for one [idp.NAME]. `terminal` shows URLs
    (never stdout); nothing secret is ever logged."""

    def __init__(self, idp, terminal, region, clock=time.time, open_browser=None):
        self.idp = idp
        self.terminal = terminal
        self.clock = clock
        self.region = region
        self.base = self._base(region)
        self.token_url = self.base + "/v1/token"
        self._open_browser = open_browser or _open_browser

    def _base(self, region):
        return (self.idp.get("signin_endpoint_url") or base_url(region)).rstrip("/")

    def create_token(self, key, body, token_url=None):
        """The checked tokenOutput, or SigninError for a modelled error."""
        from ...core.http import request

        url = token_url or self.token_url  # the DPoP proof's htu is exactly the URL posted to
        resp = request("POST", url, data=json.dumps(body).encode(), timeout=30, what="AWS Sign-In",
                       headers={"Content-Type": "application/json", "DPoP": key.proof(url, self.clock())},
                       follow_redirects=False, max_bytes=MAX_FILE_BYTES)
        try:
            doc = json.loads(resp.body)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if resp.status != 200:
            kind = _ERROR_JUNK.sub("", str(resp.headers.get("x-amzn-ErrorType") or "").split(":")[0])[:80]
            error = _ERROR_JUNK.sub("", str(doc.get("error") if isinstance(doc, dict) else ""))[:80]
            log.debug("signin CreateOAuth2Token: HTTP %s %s %s", resp.status, kind, error)
            raise SigninError(kind or f"HTTP {resp.status}", error, resp.status)
        return self._checked(doc, body["grantType"])

    def _checked(self, doc, grant):
        bad = ServiceError(f"AWS Sign-In at {self.base} answered CreateOAuth2Token with a malformed response")
        if not isinstance(doc, dict):
            raise bad
        access = doc.get("accessToken")
        if not isinstance(access, dict):
            raise bad
        parts = [access.get(k) for k in ("accessKeyId", "secretAccessKey", "sessionToken")]
        if not all(isinstance(p, str) and 0 < len(p) <= MAX_TOKEN for p in parts) or not _KEY_ID_RE.match(parts[0]):
            raise bad
        expires_in = doc.get("expiresIn")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or not 0 < expires_in <= MAX_EXPIRES_IN:
            raise bad
        refresh = doc.get("refreshToken")
        if not isinstance(refresh, str) or not 0 < len(refresh) <= MAX_TOKEN:
            raise bad
        out = {"access_key_id": parts[0], "secret_access_key": parts[1], "session_token": parts[2],
               "expires_at": int(self.clock()) + expires_in, "refresh_token": refresh,
               "token_type": doc.get("tokenType") if isinstance(doc.get("tokenType"), str) else "aws_sigv4"}
        if grant == "authorization_code":
            session = login_session_of(doc.get("idToken"))
            if session is None:
                raise ServiceError(f"AWS Sign-In at {self.base} answered the sign-in without a usable ID token")
            out.update(id_token=doc["idToken"], login_session=session)
        return out

    # -- sign-in --------------------------------------------------------------------------------
    def sign_in(self, flow, key):
        """A new sign-in (browser or remote): the checked tokenOutput with id_token and login_session."""
        verifier = "".join(secrets.choice(string.ascii_letters + string.digits + "-._~") for _ in range(64))
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        state = str(uuid.uuid4())
        if flow == "remote":
            client_id, redirect = CROSS_DEVICE, self.base + "/v1/sessions/confirmation"
            code = self._remote(self._authorize_url(client_id, state, challenge, redirect), state)
        else:
            client_id = SAME_DEVICE
            code, redirect = self._browser(client_id, state, challenge)
        body = {"clientId": client_id, "grantType": "authorization_code", "code": code, "codeVerifier": verifier,
                "redirectUri": redirect}
        try:
            return self.create_token(key, body)
        except SigninError as e:
            if e.error == "AUTHCODE_EXPIRED":
                raise AuthenticationFailed("the sign-in's authorization code expired before credproc could redeem it",
                                           hint="sign in again, a little faster") from None
            if e.error == "INSUFFICIENT_PERMISSIONS":
                raise _insufficient(self.base) from None
            raise AuthenticationFailed(f"AWS Sign-In did not accept the sign-in: {e.kind} {e.error}".rstrip()) from None

    def _authorize_url(self, client_id, state, challenge, redirect):
        query = {"response_type": "code", "client_id": client_id, "state": state, "code_challenge_method": "SHA-256",
                 "scope": "openid", "redirect_uri": redirect}
        return f"{self.base}/v1/authorize?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}" \
               f"&code_challenge={challenge}"

    def _browser(self, client_id, state, challenge, wait=300):
        from ...core.loopback import Listener

        self.terminal.require("an AWS console sign-in in a browser")
        listener = Listener(REDIRECT_PATH, state)
        try:
            redirect = f"http://127.0.0.1:{listener.port}{REDIRECT_PATH}"
            url = self._authorize_url(client_id, state, challenge, redirect)
            self.terminal.say(f"To sign in to AWS ({self.base}), open this URL in a browser on this machine:\n  {url}")
            listener.start()
            self._open_browser(self.idp, listener.start_link(url))
            with self.terminal.progress("  waiting for the sign-in..."):
                params = listener.wait(wait)
        finally:
            listener.stop()
        if params is None:
            raise AuthenticationFailed(f"no sign-in arrived within {wait} s",
                                       hint='over SSH, or without a browser on this machine, set flow = "remote"')
        if params.get("error"):
            raise AuthenticationFailed(f"the sign-in failed: {printable(params['error'], 100)}")
        code = params.get("code")
        if not isinstance(code, str) or not 0 < len(code) <= 512:
            raise AuthenticationFailed("the sign-in's answer carried no authorization code")
        return code, redirect

    def _remote(self, url, state):
        self.terminal.require("an AWS console sign-in (remote)")
        self.terminal.say(f"To sign in to AWS ({self.base}), open this URL in a browser on any device:\n  {url}")
        for _ in range(3):
            pasted = self.terminal.ask("Enter the authorization code displayed in your browser: ",
                                       "the authorization code of an AWS console sign-in", secret=True).strip()
            try:
                params = dict(urllib.parse.parse_qsl(base64.b64decode(pasted, validate=True).decode("utf-8"),
                                                     strict_parsing=True))
            except (ValueError, UnicodeDecodeError):
                params = {}
            if params.get("code") and params.get("state") == state and len(params["code"]) <= 512:
                return params["code"]
            if params.get("code"):
                raise AuthenticationFailed("the pasted authorization code belongs to another sign-in (its state differs)",
                                           hint="paste the code shown for the URL printed above")
            self.terminal.say("That is not an authorization code from this sign-in; paste it exactly as shown.")
        raise AuthenticationFailed("no valid authorization code was pasted")

    def refresh(self, state):
        """(tokens, None), or (None, error code) when the sign-in must be redone."""
        key = DpopKey.from_pem(state["dpop_key"])
        body = {"clientId": state["client_id"], "grantType": "refresh_token", "refreshToken": state["refresh_token"]}
        # a sign-in made in another region (the CLI's signInRegion) is refreshed there, as botocore does
        region = state.get("sign_in_region") or self.region
        try:
            return self.create_token(key, body, self._base(region) + "/v1/token"), None
        except SigninError as e:
            if e.error in ("TOKEN_EXPIRED", "USER_CREDENTIALS_CHANGED"):
                return None, e.error
            if e.error == "INSUFFICIENT_PERMISSIONS":
                raise _insufficient(self.base) from None
            if e.kind == "AccessDeniedException":
                return None, e.error or "AccessDenied"
            raise ServiceError(f"refreshing the AWS console sign-in at {self.base} failed: {e.kind} {e.error}".rstrip()) from None


def _open_browser(idp, url):
    from ...core.browser import open_url

    open_url(url)


def _cli_dir():
    path = os.environ.get("AWS_LOGIN_CACHE_DIRECTORY")
    if path:
        return os.path.expanduser(os.path.expandvars(path))
    return os.path.expanduser(os.path.join("~", ".aws", "login", "cache"))


class CliLoginCache:
    """The AWS CLI's login files. Nothing read there is trusted: a file must be a JSON object with
    the fields botocore requires, credentials in the right shapes, a devtools client id, a P-256
    key, and a login session (its ID token's sub) that hashes to the file's own name."""

    def __init__(self, idp):
        self.idp = idp
        self.mode = idp["aws_cli_cache"]
        self.dir = os.path.normpath(_cli_dir())

    def path(self, login_session):
        return os.path.join(self.dir, hashlib.sha256(login_session.encode("utf-8")).hexdigest() + ".json")

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read(MAX_FILE_BYTES))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def load(self, path):
        """The file as our state, or None."""
        data = self._read(path)
        if data is None:
            return None
        access = data.get("accessToken")
        if not isinstance(access, dict):
            return None
        fields = [access.get(k) for k in ("accessKeyId", "secretAccessKey", "sessionToken")]
        expires = _parse_iso(access.get("expiresAt"))
        if not all(isinstance(p, str) and 0 < len(p) <= MAX_TOKEN for p in fields) or expires is None \
                or not _KEY_ID_RE.match(fields[0]):
            return None
        session = login_session_of(data.get("idToken"))
        if session is None or self.path(session) != os.path.normpath(path):
            return None
        pinned = self.idp.get("login_session")
        if pinned and session != pinned:
            return None
        state = {"login_session": session, "access_key_id": fields[0], "secret_access_key": fields[1],
                 "session_token": fields[2], "expires_at": expires, "account_id": account_of(session),
                 "id_token": data["idToken"], "from_cli": path}
        refresh, client_id, key = data.get("refreshToken"), data.get("clientId"), data.get("dpopKey")
        if isinstance(refresh, str) and 0 < len(refresh) <= MAX_TOKEN and client_id in CLIENT_IDS \
                and DpopKey.from_pem(key) is not None:
            state.update(refresh_token=refresh, client_id=client_id, dpop_key=key)
            region = data.get("signInRegion")
            if isinstance(region, str) and REGION_RE.match(region):
                state["sign_in_region"] = region
        return state

    def candidates(self, login_session=None):
        """The CLI files that may hold this idp's sign-in: the pinned (or already known) session's, or
        else the only valid one in the directory (several: none, pin one with login_session)."""
        if self.mode == "off":
            return []
        session = self.idp.get("login_session") or login_session
        if session:
            return [self.path(session)]
        try:
            names = sorted(n for n in os.listdir(self.dir) if re.match(r"^[0-9a-f]{64}\.json\Z", n))
        except OSError:
            return []
        found = [os.path.join(self.dir, n) for n in names if self.load(os.path.join(self.dir, n)) is not None]
        if len(found) > 1:
            log.debug("%d AWS CLI login sessions in %s and no login_session to pick one", len(found), self.dir)
            return []
        return found

    def write(self, state):
        """share mode: the CLI's file for this session, in the CLI's exact format (fields it has that
        we do not know are kept), written atomically with 0600."""
        if self.mode != "share" or not state.get("refresh_token") or not state.get("login_session"):
            return
        from ...core.store import atomic_write, ensure_private_dir

        path = self.path(state["login_session"])
        doc = self._read(path) or {}
        doc.update({"accessToken": {"accessKeyId": state["access_key_id"], "secretAccessKey": state["secret_access_key"],
                                    "sessionToken": state["session_token"], "accountId": state["account_id"],
                                    "expiresAt": _iso(state["expires_at"])},
                    "tokenType": state.get("token_type") or "aws_sigv4", "clientId": state["client_id"],
                    "refreshToken": state["refresh_token"], "idToken": state["id_token"], "dpopKey": state["dpop_key"]})
        if state.get("sign_in_region"):  # botocore refreshes in this region, whatever the profile's
            doc["signInRegion"] = state["sign_in_region"]
        try:
            ensure_private_dir(self.dir)
            atomic_write(path, json.dumps(doc).encode())
        except Exception as e:  # noqa: BLE001 - sharing is a convenience; our own cache holds the sign-in
            log.warn(f"could not write the AWS CLI login file {path}: {getattr(e, 'message', None) or type(e).__name__}")

    def delete(self, login_session, refresh_token=None):
        """share mode: remove the CLI's file (with refresh_token: only while it still holds that one)."""
        if self.mode != "share" or not login_session:
            return False
        path = self.path(login_session)
        if refresh_token is not None:
            theirs = self.load(path)
            if theirs is None or theirs.get("refresh_token") != refresh_token:
                return False
        try:
            os.unlink(path)
            return True
        except OSError:
            return False


_KEEP = ("login_session", "client_id", "refresh_token", "dpop_key", "id_token", "token_type", "access_key_id",
         "secret_access_key", "session_token", "expires_at", "account_id", "session_until", "sign_in_region")


class LoginSession:
    """The console sign-in of one [idp.NAME]: the DPoP key, the refresh token and the current
    credentials, in the encrypted cache under the sign-in's own lock, shared by every role over it."""

    def __init__(self, ctx, idp, region, client=None):
        self.ctx = ctx
        self.idp = idp
        self.identity = f"login:{idp['name']}"
        self.client = client or SigninClient(idp, ctx.terminal, region)
        self.cli = CliLoginCache(idp)

    def describe(self):
        return f"LoginSession({self.client.base}, flow={self.idp['flow']}, aws_cli_cache={self.cli.mode})"

    def _lock(self):
        return self.ctx.store.lock(self.identity, f"the AWS console sign-in of idp {self.idp['name']!r}")

    def load(self):
        entry = self.ctx.store.get(self.identity)
        if entry is None or entry.fingerprint != self.ctx.config.idp_fingerprint(self.idp["name"]):
            return {}
        try:
            state = json.loads(entry.body)
        except ValueError:
            return {}
        if not isinstance(state, dict):
            return {}
        pinned = self.idp.get("login_session")
        if pinned and state.get("login_session") != pinned:
            return {}
        return state

    def _save(self, state):
        state = {k: state[k] for k in _KEEP if k in state}
        now = self.ctx.now()
        until = state.get("session_until") or now + SESSION_LIFE
        state["session_until"] = until
        keep = max(until if state.get("refresh_token") else 0, state.get("expires_at", 0), now + 60)
        self.ctx.store.put(self.identity, Entry(keep, keep, self.ctx.config.digest,
                                                self.ctx.config.idp_fingerprint(self.idp["name"]),
                                                json.dumps(state).encode()))
        self.cli.write(state)

    def _usable(self, state, left=REFRESH_LEFT):
        exp = state.get("expires_at")
        return bool(state.get("access_key_id")) and isinstance(exp, int) and exp - self.ctx.now() > left

    def _newest(self):
        """(state, adopted): ours, or in share mode a newer copy in the CLI's file (an SDK or the CLI
        refreshed, and so rotated, the shared sign-in: theirs wins), or in read mode the credentials
        (never the refresh token) of a CLI sign-in when ours are not usable."""
        if self.ctx.force:
            return {}, False
        state = self.load()
        ours = state.get("expires_at", 0)
        for path in self.cli.candidates(state.get("login_session")):
            theirs = self.cli.load(path)
            if theirs is None:
                continue
            theirs.pop("from_cli", None)
            if self.cli.mode == "share" and theirs.get("refresh_token") \
                    and (theirs["expires_at"] > ours or (theirs["expires_at"] == ours
                                                         and theirs["refresh_token"] != state.get("refresh_token"))):
                log.debug("%s: adopting the newer sign-in from the AWS CLI's file", self.identity)
                if state.get("login_session") == theirs["login_session"] and state.get("session_until"):
                    theirs["session_until"] = state["session_until"]
                return theirs, True
            if self._usable(theirs, SERVE_LEFT) and not self._usable(state) and theirs["expires_at"] > ours:
                log.debug("%s: using the credentials the AWS CLI left (not its refresh token)", self.identity)
                borrowed = {k: theirs[k] for k in ("login_session", "access_key_id", "secret_access_key", "session_token",
                                                   "expires_at", "account_id")}
                return dict(state, **borrowed, borrowed=True), False
        return state, False

    def credentials(self):
        state, adopted = self._newest()
        if self._usable(state) and not adopted:
            return self._creds(state)
        lock = self._lock()
        lock.acquire(self.ctx.lock_deadline)
        try:
            shared = self._lock_cli_file()
            try:
                state, adopted = self._newest()  # again, under the lock: another process may have refreshed
                if adopted:
                    self._save(state)
                if self._usable(state):
                    return self._creds(state)
                if state.get("borrowed") and self._usable(state, SERVE_LEFT) and not state.get("refresh_token"):
                    return self._creds(state)
                return self._creds(self._renew(state))
            finally:
                if shared is not None:
                    shared.release()
        finally:
            lock.release()

    def _lock_cli_file(self):
        """share mode: a lock beside the CLI's file (<sha256>.lock, which the AWS CLI ignores), so
        that every credproc sharing it (other configs, other caches) re-reads, refreshes and replaces
        it one at a time. botocore takes no lock: against it, the re-read just before the refresh
        and the newest-copy rule are what keep a spent refresh token from being presented."""
        session = self.idp.get("login_session") or self.load().get("login_session")
        if self.cli.mode != "share" or not isinstance(session, str):
            return None
        from ...core.errors import LocalFileError
        from ...core.locking import FileLock
        from ...core.store import ensure_private_dir

        lock = FileLock(self.cli.path(session)[:-len(".json")] + ".lock", "the AWS CLI's login file")
        try:
            ensure_private_dir(self.cli.dir)
            lock.acquire(self.ctx.lock_deadline)
        except (LocalFileError, OSError) as e:
            log.debug("cannot lock beside the AWS CLI's login file: %s", type(e).__name__)
            return None
        return lock

    def _renew(self, state, raced=False):
        why = None
        if state.get("refresh_token") and state.get("dpop_key"):
            log.debug("%s: refreshing the credentials", self.identity)
            tokens, why = self.client.refresh(state)
            if tokens is not None:
                new = dict(state, **tokens)
                new.pop("borrowed", None)
                self._save(new)  # first: the rotated refresh token is the only one still good
                return new
            log.debug("%s: the refresh was refused (%s); a new sign-in is needed", self.identity, why)
            spent = state["refresh_token"]
            self._save({k: state[k] for k in ("login_session", "session_until") if k in state})
            self.cli.delete(state.get("login_session"), refresh_token=spent)
            theirs, adopted = self._newest()
            if adopted and not raced and theirs.get("refresh_token") != spent:
                # an SDK refreshed the shared file at the same moment and won the rotation
                self._save(theirs)
                return theirs if self._usable(theirs) else self._renew(theirs, raced=True)
        elif self._usable(state, SERVE_LEFT):
            return state  # borrowed from the CLI in read mode, still servable
        if not self.ctx.terminal.available():
            if why:
                msg = f"your AWS console sign-in has ended ({why})"
            else:
                msg = "an AWS console sign-in is needed"
            raise LoginRequired(f"{msg} and there is no terminal to ask on",
                                hint=f"run in a terminal: {self.ctx.terminal.login_command}")
        if why:
            self.ctx.terminal.say(f"Your AWS console sign-in has ended ({why}); sign in again.")
        key = DpopKey.generate()
        tokens = self.client.sign_in(self.idp["flow"], key)
        pinned = self.idp.get("login_session")
        if pinned and tokens["login_session"] != pinned:
            raise AuthenticationFailed(f"the browser signed in as {printable(tokens['login_session'], 200)}, but "
                                       f"[idp.{self.idp['name']}] login_session pins {pinned}",
                                       hint="sign in as that identity, or change login_session")
        new = dict(tokens, client_id=CROSS_DEVICE if self.idp["flow"] == "remote" else SAME_DEVICE,
                   dpop_key=key.pem(), account_id=account_of(tokens["login_session"]), sign_in_region=self.client.region,
                   session_until=self.ctx.now() + SESSION_LIFE)
        self._save(new)
        return new

    @staticmethod
    def _creds(state):
        return Credentials(state["access_key_id"], state["secret_access_key"], state["session_token"],
                           state["expires_at"], state.get("account_id"))


def session_summary(state, now):
    """What `status` shows of a stored sign-in (no secret)."""
    exp = state.get("expires_at") if isinstance(state.get("expires_at"), int) else None
    until = state.get("session_until") if isinstance(state.get("session_until"), int) else None
    return {"login_session": state.get("login_session") if isinstance(state.get("login_session"), str) else None,
            "credentials_until": format_expiration(exp) if exp and exp > now else None,
            "credentials_seconds_left": exp - now if exp and exp > now else None,
            "refreshable_until": format_expiration(until) if until and until > now and state.get("refresh_token") else None,
            "session_seconds_left": until - now if until and until > now and state.get("refresh_token") else None}
