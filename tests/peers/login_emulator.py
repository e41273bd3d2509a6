"""An emulator of AWS Sign-In's "login for AWS local development" (what `aws login` talks to), on
loopback. No real sign-in service can run here.

Built from botocore's `signin` service model (botocore/data/signin/2023-01-01: rest-json;
CreateOAuth2Token is `POST /v1/token`, unsigned, its payload the `tokenInput` structure, its answer
the `tokenOutput` structure; errors as HTTP status + `x-amzn-ErrorType` + a JSON body with `error`
and `message`), from botocore's consumer side (credentials.py LoginCredentialFetcher and
_build_dpop_header) and from the AWS CLI v2's sign-in side (awscli/customizations/login/utils.py,
v2 branch): the un-modelled `GET /v1/authorize` with the CLI's exact parameters
(`code_challenge_method=SHA-256`, `scope=openid`, client ids `arn:aws:signin:::devtools/same-device`
and `.../cross-device`), the same-device redirect to `http://127.0.0.1:PORT/oauth/callback` and the
cross-device confirmation page that shows `base64("code=...&state=...")` for the user to paste.

What it enforces, as the service does (or as a careful one must):
  - every CreateOAuth2Token carries a DPoP proof: an ES256 JWT (`typ` dpop+jwt, an EC P-256 `jwk`),
    `htm` POST, `htu` exactly this endpoint's /v1/token URL, a recent `iat`, a `jti` never seen
    before, a valid signature;
  - authorization codes are single-use, bound to the client id, the redirect URI and the PKCE
    challenge (sha256 of the verifier, base64url without padding);
  - the sign-in is bound to the DPoP key of the code exchange: a refresh with any other key fails;
  - refresh tokens rotate; presenting a spent one is reuse: it is counted ("Reuse") and ends the
    whole sign-in (every later refresh answers TOKEN_EXPIRED), as OAuth 2.0 security BCP advises;
  - the credentials are real: minted at moto's STS (AssumeRole of arn:aws:iam::ACCOUNT:role/
    ConsoleUser for 900 s), so GetCallerIdentity and AssumeRole work with them.

The test plays the user: GET the authorize URL (a 302 to the loopback redirect, or to the
confirmation page). Knobs: `revoke()` (TOKEN_EXPIRED), `change_credentials()`
(USER_CREDENTIALS_CHANGED), `deny_permissions = True` (INSUFFICIENT_PERMISSIONS),
`expire_codes = True` (AUTHCODE_EXPIRED), `decision = "deny"`. `counts` counts every operation
(CreateOAuth2Token also per grant type), `log` keeps (grant type, refresh token presented).
"""

from tests.peers.net import LoopbackHTTPServer
import base64
import collections
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse

SAME_DEVICE = "arn:aws:signin:::devtools/same-device"
CROSS_DEVICE = "arn:aws:signin:::devtools/cross-device"
CLIENT_IDS = (SAME_DEVICE, CROSS_DEVICE)
ACCOUNT = "111111111111"
LOGIN_SESSION = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ConsoleUser"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Error(Exception):
    def __init__(self, status, kind, error, message):
        super().__init__(f"{kind}: {error}: {message}")
        self.status, self.kind, self.error, self.message = status, kind, error, message


def _denied(error, message):
    return _Error(400, "AccessDeniedException", error, message)


def _invalid(message, error="INVALID_REQUEST"):
    return _Error(400, "ValidationException", error, message)


def jwk_thumbprint(jwk):
    """RFC 7638 thumbprint of an EC public JWK."""
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def verify_dpop(proof, htu, seen_jti, now, max_age=300):
    """Check a DPoP proof as the service must: returns the key's thumbprint, raises _Error."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    if not proof or proof.count(".") != 2:
        raise _invalid("a DPoP proof is required", "invalid_dpop_proof")
    h64, p64, s64 = proof.split(".")
    try:
        header, payload, sig = json.loads(_unb64url(h64)), json.loads(_unb64url(p64)), _unb64url(s64)
    except ValueError:
        raise _invalid("the DPoP proof is not a JWT", "invalid_dpop_proof") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise _invalid("the DPoP proof is not a JWT", "invalid_dpop_proof")
    jwk = header.get("jwk")
    if header.get("typ") != "dpop+jwt" or header.get("alg") != "ES256" or not isinstance(jwk, dict) \
            or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
        raise _invalid("the DPoP header must be typ dpop+jwt, alg ES256 with a public EC P-256 jwk", "invalid_dpop_proof")
    if payload.get("htm") != "POST" or payload.get("htu") != htu:
        raise _invalid(f"the DPoP proof is for {payload.get('htm')} {payload.get('htu')}, not POST {htu}", "invalid_dpop_proof")
    iat = payload.get("iat")
    if not isinstance(iat, int) or abs(now - iat) > max_age:
        raise _invalid("the DPoP proof's iat is missing or not recent", "invalid_dpop_proof")
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti or jti in seen_jti:
        raise _invalid("the DPoP proof's jti is missing or was used before", "invalid_dpop_proof")
    try:
        x, y = int.from_bytes(_unb64url(jwk["x"]), "big"), int.from_bytes(_unb64url(jwk["y"]), "big")
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        if len(sig) != 64:
            raise ValueError
        key.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                   f"{h64}.{p64}".encode(), ec.ECDSA(hashes.SHA256()))
    except (ValueError, KeyError, TypeError, InvalidSignature):
        raise _invalid("the DPoP proof's signature does not verify", "invalid_dpop_proof") from None
    seen_jti.add(jti)
    # the key, not its spelling: thumbprint of the canonical (full 32-byte) coordinates, as RFC 7518 spells them
    return jwk_thumbprint({"crv": "P-256", "kty": "EC", "x": b64url(x.to_bytes(32, "big")), "y": b64url(y.to_bytes(32, "big"))})


class LoginEmulator:
    def __init__(self, sts_url, expires_in=900, session_ttl=12 * 3600, login_session=LOGIN_SESSION):
        self.sts_url = sts_url
        self.expires_in = expires_in
        self.session_ttl = session_ttl
        self.login_session = login_session
        self.decision = "approve"
        self.deny_permissions = False
        self.expire_codes = False
        self.counts = collections.Counter()
        self.log = []  # (grant type, refresh token presented or None)
        self.lock = threading.Lock()
        self.codes = {}
        self.refresh_tokens = {}  # token -> {"session": id, "used": bool}
        self.sessions = {}  # id -> {"thumbprint", "client_id", "ended": None or error, "expires_at"}
        self.seen_jti = set()
        self.issued_keys = []  # access key ids handed out, newest last
        self.server = _Server(self)
        self.url = self.server.url
        self.token_url = self.url + "/v1/token"
        self.confirmation_url = self.url + "/v1/sessions/confirmation"

    # -- what the test does --------------------------------------------------------------------
    def revoke(self, error="TOKEN_EXPIRED"):
        """End every sign-in: later refreshes answer AccessDeniedException `error`."""
        with self.lock:
            for s in self.sessions.values():
                s["ended"] = error

    def change_credentials(self):
        self.revoke("USER_CREDENTIALS_CHANGED")

    def count(self, name):
        with self.lock:
            return self.counts[name]

    def refreshes(self):
        return self.count("CreateOAuth2Token:refresh_token")

    def stop(self):
        self.server.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- GET /v1/authorize (not in the model: the browser's page) --------------------------------
    def authorize(self, query):
        """(status, Location or message)."""
        with self.lock:
            self.counts["Authorize"] += 1
            client_id = query.get("client_id")
            redirect = query.get("redirect_uri", "")
            if client_id not in CLIENT_IDS:
                return 400, "unknown client_id"
            parts = urllib.parse.urlsplit(redirect)
            if client_id == SAME_DEVICE:
                if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not parts.port or parts.path != "/oauth/callback":
                    return 400, "redirect_uri must be http://127.0.0.1:PORT/oauth/callback"
            elif redirect != self.confirmation_url:
                return 400, f"redirect_uri must be {self.confirmation_url}"
            challenge = query.get("code_challenge") or ""
            if query.get("response_type") != "code" or query.get("scope") != "openid" \
                    or query.get("code_challenge_method") != "SHA-256" or not query.get("state") \
                    or len(challenge) != 43 or "=" in challenge:
                return 400, "response_type=code, scope=openid, state and a SHA-256 code_challenge are required"
            if self.decision == "deny":
                return 403, "the sign-in was cancelled"
            code = "code-" + secrets.token_urlsafe(24)
            self.codes[code] = {"client_id": client_id, "redirect_uri": redirect, "challenge": challenge,
                                "expires_at": time.time() + 300}
        return 302, redirect + "?" + urllib.parse.urlencode({"code": code, "state": query["state"]})

    def confirmation(self, query):
        """The cross-device page: the code to paste, base64("code=...&state=...")."""
        pasted = base64.b64encode(urllib.parse.urlencode({"code": query.get("code", ""),
                                                          "state": query.get("state", "")}).encode()).decode()
        return pasted

    # -- POST /v1/token (CreateOAuth2Token) -----------------------------------------------------
    def create_token(self, body, dpop):
        grant = body.get("grantType")
        with self.lock:
            self.counts["CreateOAuth2Token"] += 1
            self.counts["CreateOAuth2Token:" + str(grant)] += 1
            self.log.append((grant, body.get("refreshToken")))
            thumb = verify_dpop(dpop, self.token_url, self.seen_jti, int(time.time()))
            if body.get("clientId") not in CLIENT_IDS:
                raise _invalid("clientId must be a devtools client", "invalid_client")
            if grant == "authorization_code":
                return self._code(body, thumb)
            if grant == "refresh_token":
                return self._refresh(body, thumb)
            raise _invalid(f"unsupported grantType {grant!r}", "unsupported_grant_type")

    def _code(self, body, thumb):
        code = self.codes.pop(body.get("code"), None)
        if self.expire_codes and code is not None:
            raise _denied("AUTHCODE_EXPIRED", "the authorization code has expired")
        if code is None:
            raise _invalid("unknown or already used authorization code", "invalid_grant")
        if code["expires_at"] <= time.time():
            raise _denied("AUTHCODE_EXPIRED", "the authorization code has expired")
        if body["clientId"] != code["client_id"] or body.get("redirectUri") != code["redirect_uri"]:
            raise _invalid("clientId or redirectUri differ from the authorize request", "invalid_grant")
        verifier = body.get("codeVerifier") or ""
        if not 43 <= len(verifier) <= 128 or b64url(hashlib.sha256(verifier.encode()).digest()) != code["challenge"]:
            raise _invalid("PKCE verification failed", "invalid_grant")
        if self.deny_permissions:
            raise _denied("INSUFFICIENT_PERMISSIONS", "the identity lacks signin:AuthorizeOAuth2Access")
        sid = secrets.token_hex(8)
        self.sessions[sid] = {"thumbprint": thumb, "client_id": body["clientId"], "ended": None,
                              "expires_at": time.time() + self.session_ttl}
        return self._issue(sid, id_token=True)

    def _refresh(self, body, thumb):
        token = self.refresh_tokens.get(body.get("refreshToken"))
        if token is None:
            raise _denied("TOKEN_EXPIRED", "unknown refresh token")
        session = self.sessions[token["session"]]
        if token["used"]:
            self.counts["Reuse"] += 1
            session["ended"] = session["ended"] or "TOKEN_EXPIRED"
            raise _denied("TOKEN_EXPIRED", "the refresh token was already used: the sign-in is ended")
        if session["thumbprint"] != thumb:
            raise _invalid("the DPoP key is not the one this sign-in is bound to", "invalid_dpop_proof")
        if body["clientId"] != session["client_id"]:
            raise _invalid("clientId differs from the sign-in's", "invalid_client")
        if session["ended"]:
            raise _denied(session["ended"], "the sign-in has ended")
        if session["expires_at"] <= time.time():
            raise _denied("TOKEN_EXPIRED", "the sign-in has expired")
        if self.deny_permissions:
            raise _denied("INSUFFICIENT_PERMISSIONS", "the identity lacks signin:AuthorizeOAuth2Access")
        token["used"] = True
        return self._issue(token["session"], id_token=False)

    def _issue(self, sid, id_token):
        import boto3

        sts = boto3.client("sts", endpoint_url=self.sts_url, region_name="us-east-1",
                           aws_access_key_id="AKIASIGNINEMULATOR01", aws_secret_access_key="emulator")
        creds = sts.assume_role(RoleArn=ROLE, RoleSessionName="alice", DurationSeconds=900)["Credentials"]
        self.issued_keys.append(creds["AccessKeyId"])
        refresh = "ASOR" + secrets.token_urlsafe(48)
        self.refresh_tokens[refresh] = {"session": sid, "used": False}
        self.counts["TokensIssued"] += 1
        out = {"accessToken": {"accessKeyId": creds["AccessKeyId"], "secretAccessKey": creds["SecretAccessKey"],
                               "sessionToken": creds["SessionToken"]},
               "tokenType": "aws_sigv4", "expiresIn": self.expires_in, "refreshToken": refresh}
        if id_token:
            now = int(time.time())
            claims = {"sub": self.login_session, "iss": self.url, "aud": self.sessions[sid]["client_id"],
                      "iat": now, "exp": now + self.session_ttl}
            out["idToken"] = ".".join([b64url(json.dumps({"alg": "ES256", "typ": "JWT"}).encode()),
                                       b64url(json.dumps(claims).encode()), b64url(secrets.token_bytes(64))])
        return out


class _Server:
    def __init__(self, emulator):
        self.emulator = emulator
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=()):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                if not isinstance(body, bytes):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                em = server.emulator
                parts = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                route = (self.command, parts.path)
                if route == ("GET", "/v1/authorize"):
                    status, where = em.authorize(query)
                    if status == 302:
                        return self._send(302, b"", [("Location", where)])
                    return self._send(status, where.encode(), [("Content-Type", "text/plain")])
                if route == ("GET", "/v1/sessions/confirmation"):
                    return self._send(200, em.confirmation(query).encode(), [("Content-Type", "text/plain")])
                if route != ("POST", "/v1/token") or parts.query:
                    return self._send(404, {"error": "RESOURCE_NOT_FOUND", "message": f"no such operation: {self.command} {self.path}"},
                                      [("x-amzn-ErrorType", "ResourceNotFoundException")])
                try:
                    body = json.loads(raw) if raw else None
                    if not isinstance(body, dict):
                        raise ValueError
                    result = em.create_token(body, self.headers.get("DPoP"))
                except ValueError:
                    e = _invalid("the body is not a JSON object")
                    return self._send(e.status, {"error": e.error, "message": e.message}, [("x-amzn-ErrorType", e.kind)])
                except _Error as e:
                    with em.lock:
                        em.counts["Error:" + e.error] += 1
                    return self._send(e.status, {"error": e.error, "message": e.message}, [("x-amzn-ErrorType", e.kind)])
                return self._send(200, result)

            do_GET = do_POST = _handle

        self.httpd = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
