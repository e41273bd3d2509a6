"""A minimal OpenID Connect issuer in Python for what oidc-provider will not do on request: the
password grant, and handing out forged ID tokens. Loopback only."""

import base64
import http.server
import json
import threading
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.peers.net import LoopbackHTTPServer


def new_rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_of(private_key, kid):
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return jwk


class FakeIssuer:
    def __init__(self, client_id="cli", password="pw", roles=("arn:aws:iam::111111111111:role/dev",)):
        self.client_id = client_id
        self.password = password
        self.roles = list(roles)
        self.key = new_rsa()
        self.kid = "k1"
        self.forge = None  # None, or a callable(claims, headers) -> token string
        self.token_requests = []
        self.nonce_override = None  # the code flow answers with this nonce instead of the client's
        self.pkce_ok = []
        self.refresh_tokens = False  # True: the password grant also issues a refresh token
        self.refresh_expires_in = None  # sent with refresh tokens when set
        self._issued = set()
        self._codes = {}
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.startswith("/auth?"):  # signs the user in at once and redirects back
                    q = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).items()}
                    code = f"code-{len(issuer._codes)}"
                    issuer._codes[code] = q
                    self.send_response(302)
                    self.send_header("Location", f"{q['redirect_uri']}?code={code}&state={urllib.parse.quote(q['state'])}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/.well-known/openid-configuration":
                    self._json(200, issuer.discovery())
                elif self.path == "/jwks":
                    self._json(200, {"keys": [jwk_of(issuer.key, issuer.kid)]})
                else:
                    self._json(404, {})

            def do_POST(self):
                form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
                issuer.token_requests.append(form.get("grant_type"))
                if form.get("grant_type") == "authorization_code":
                    q = issuer._codes.pop(form.get("code"), None)
                    if q is None or form.get("redirect_uri") != q["redirect_uri"]:
                        return self._json(400, {"error": "invalid_grant"})
                    import hashlib

                    challenge = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()).rstrip(b"=")
                    issuer.pkce_ok.append(challenge.decode() == q["code_challenge"] and q["code_challenge_method"] == "S256")
                    nonce = issuer.nonce_override or q["nonce"]
                    return self._json(200, {"id_token": issuer.sign(issuer.claims(nonce=nonce)), "token_type": "Bearer"})
                if form.get("grant_type") == "refresh_token":
                    if form.get("refresh_token") not in issuer._issued:
                        return self._json(400, {"error": "invalid_grant"})
                    issuer._issued.discard(form["refresh_token"])  # rotated
                    return self._json(200, issuer._with_refresh({"id_token": issuer.sign(issuer.claims()),
                                                                 "token_type": "Bearer"}))
                if form.get("grant_type") != "password" or form.get("client_id") != issuer.client_id:
                    return self._json(400, {"error": "unsupported_grant_type"})
                if form.get("password") != issuer.password:
                    return self._json(400, {"error": "invalid_grant"})
                claims = issuer.claims(form["username"])
                self._json(200, issuer._with_refresh({"id_token": issuer.sign(claims), "token_type": "Bearer",
                                                      "access_token": "at"}))

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _with_refresh(self, answer):
        if self.refresh_tokens:
            token = f"rt-{len(self._issued)}-{time.time()}"
            self._issued.add(token)
            answer["refresh_token"] = token
            if self.refresh_expires_in is not None:
                answer["refresh_expires_in"] = self.refresh_expires_in
        return answer

    def discovery(self):
        return {"issuer": self.url, "token_endpoint": self.url + "/token", "jwks_uri": self.url + "/jwks",
                "authorization_endpoint": self.url + "/auth", "id_token_signing_alg_values_supported": ["RS256"],
                "grant_types_supported": ["password"]}

    def claims(self, sub="alice", **over):
        now = int(time.time())
        c = {"iss": self.url, "aud": self.client_id, "sub": sub, "iat": now, "exp": now + 3600,
             "email": f"{sub}@example.com", "aws_roles": self.roles}
        c.update(over)
        return c

    def sign(self, claims, key=None, kid=None, alg="RS256"):
        if self.forge:
            return self.forge(self, claims)
        return jwt.encode(claims, key or self.key, algorithm=alg, headers={"kid": kid or self.kid})

    def public_pem(self):
        return self.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def unsigned(claims):
    head = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return (head + b"." + body + b".").decode()


def hs256_with_public_key(issuer, claims):
    """The classic key-confusion forgery: HMAC keyed with the issuer's public key."""
    import hashlib
    import hmac

    head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": issuer.kid}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(issuer.public_pem(), head + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    return (head + b"." + body + b"." + sig).decode()


FORGERIES = {
    "other_key": lambda iss, c: jwt.encode(c, new_rsa(), algorithm="RS256", headers={"kid": iss.kid}),
    "wrong_iss": lambda iss, c: jwt.encode(dict(c, iss="https://evil.example.com"), iss.key, algorithm="RS256", headers={"kid": iss.kid}),
    "wrong_aud": lambda iss, c: jwt.encode(dict(c, aud="someone-else"), iss.key, algorithm="RS256", headers={"kid": iss.kid}),
    "expired": lambda iss, c: jwt.encode(dict(c, iat=c["iat"] - 7200, exp=c["iat"] - 3600), iss.key, algorithm="RS256",
                                         headers={"kid": iss.kid}),
    "alg_none": lambda iss, c: unsigned(c),
    "hs256_public_key": hs256_with_public_key,
    "unknown_kid": lambda iss, c: jwt.encode(c, new_rsa(), algorithm="RS256", headers={"kid": "rotated-away"}),
}
