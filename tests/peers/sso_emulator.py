"""An emulator of AWS IAM Identity Center's two public services, `sso-oidc` (OIDC endpoint) and
`sso` (the access portal), on loopback. No real Identity Center can run here.

Built from the botocore service models (botocore/data/sso-oidc/2019-06-10 and sso/2019-06-10:
rest-json; errors as HTTP status + `x-amzn-ErrorType` header + JSON body, `error`/`error_description`
for sso-oidc, `message` for sso) and from how botocore's SSOTokenProvider/SSOCredentialFetcher
and the AWS CLI v2's `sso login` (SSOTokenFetcher, SSOTokenFetcherAuth) call them, including the
un-modelled `/authorize` page of the PKCE flow. tests/test_sso_emulator.py proves it against
boto3's own clients.

Role credentials are real: GetRoleCredentials calls moto's STS AssumeRole for
arn:aws:iam::<account>:role/<role_name>, so GetCallerIdentity shows the role.

The test plays the user: `approve(user_code)` (or a GET of verificationUriComplete) for the device
flow, a GET of the /authorize URL (a 302 to the loopback redirect URI with code and state) for the
browser flow. `script` lists forced CreateToken outcomes for device polls ("pending",
"slow_down", "denied", "expired"); `decision` is what the "user" does when a device code is
opened in the browser ("approve" or "deny"). `counts` counts every operation (CreateToken also
per grant type).
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

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "sso:account:access"


def _b64url_sha256(text):
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode().rstrip("=")


class _Error(Exception):
    def __init__(self, status, kind, error=None, description="", portal=False):
        super().__init__(kind)
        self.status, self.kind, self.error, self.description, self.portal = status, kind, error, description, portal


def _oidc_error(status, kind, error, description=""):
    return _Error(status, kind, error, description)


def _portal_error(status, kind, message):
    return _Error(status, kind, None, message, portal=True)


class SsoEmulator:
    def __init__(self, sts_url, accounts=None, access_ttl=3600, registration_ttl=90 * 86400, page_size=1,
                 rotate_refresh_tokens=True, credentials_duration=3600, device_interval=1):
        """accounts: {account_id: {"name": ..., "email": ..., "roles": [role_name, ...]}}, what the
        signed-in user is assigned."""
        self.sts_url = sts_url
        self.accounts = accounts or {
            "111111111111": {"name": "Production", "email": "prod@example.com", "roles": ["AdministratorAccess", "ReadOnly"]},
            "222222222222": {"name": "Sandbox", "email": "sandbox@example.com", "roles": ["Developer"]},
        }
        self.access_ttl = access_ttl
        self.registration_ttl = registration_ttl
        self.page_size = page_size
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.credentials_duration = credentials_duration
        self.device_interval = device_interval
        self.script = []
        self.decision = "approve"
        self.device_expires_in = 600
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.clients = {}
        self.devices = {}
        self.codes = {}
        self.access_tokens = {}
        self.refresh_tokens = {}
        self.requests = []  # (service, method, path) of every request, for tests that check routing
        self.oidc = _Server(self, "oidc")
        self.portal = _Server(self, "portal")
        self.oidc_url = self.oidc.url
        self.portal_url = self.portal.url

    # -- what the test does --------------------------------------------------------------------
    def approve(self, user_code):
        self._decide(user_code, "approved")

    def deny(self, user_code):
        self._decide(user_code, "denied")

    def _decide(self, user_code, status):
        with self.lock:
            for device in self.devices.values():
                if device["user_code"] == user_code and device["status"] == "pending":
                    device["status"] = status
                    return
        raise KeyError(f"no pending device authorization with user code {user_code}")

    def expire_access_tokens(self):
        with self.lock:
            for token in self.access_tokens.values():
                token["expires_at"] = 0

    def revoke_refresh_tokens(self):
        with self.lock:
            for token in self.refresh_tokens.values():
                token["revoked"] = True

    def valid_access_tokens(self):
        now = time.time()
        with self.lock:
            return [t for t, v in self.access_tokens.items() if v["expires_at"] > now]

    def count(self, name):
        with self.lock:
            return self.counts[name]

    def reset_counts(self):
        with self.lock:
            self.counts.clear()

    def stop(self):
        self.oidc.stop()
        self.portal.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- sso-oidc --------------------------------------------------------------------------------
    def register_client(self, body):
        name, kind = body.get("clientName"), body.get("clientType")
        if not isinstance(name, str) or not name or kind is None:
            raise _oidc_error(400, "InvalidRequestException", "invalid_request", "clientName and clientType are required")
        if kind != "public":
            raise _oidc_error(400, "InvalidClientMetadataException", "invalid_client_metadata", "clientType must be public")
        grants = body.get("grantTypes")
        redirects = body.get("redirectUris") or []
        if grants is not None:
            for g in grants:
                if g not in ("authorization_code", "refresh_token", DEVICE_GRANT):
                    raise _oidc_error(400, "UnsupportedGrantTypeException", "unsupported_grant_type", g)
            if "authorization_code" in grants:
                if not redirects:
                    raise _oidc_error(400, "InvalidRedirectUriException", "invalid_redirect_uri", "redirectUris required")
                for uri in redirects:
                    parts = urllib.parse.urlsplit(uri)
                    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
                        raise _oidc_error(400, "InvalidRedirectUriException", "invalid_redirect_uri", uri)
                if not body.get("issuerUrl"):
                    raise _oidc_error(400, "InvalidRequestException", "invalid_request", "issuerUrl required")
        scopes = body.get("scopes") or []
        for s in scopes:
            if not s.startswith("sso:") and s not in ("openid",):
                raise _oidc_error(400, "InvalidScopeException", "invalid_scope", s)
        client_id = "client-" + secrets.token_urlsafe(12)
        now = int(time.time())
        client = {"secret": "secret-" + secrets.token_urlsafe(24), "expires_at": now + self.registration_ttl,
                  "grants": grants, "redirects": redirects, "scopes": scopes, "issuer": body.get("issuerUrl")}
        with self.lock:
            self.clients[client_id] = client
        return {"clientId": client_id, "clientSecret": client["secret"], "clientIdIssuedAt": now,
                "clientSecretExpiresAt": client["expires_at"],
                "authorizationEndpoint": self.oidc_url + "/authorize", "tokenEndpoint": self.oidc_url + "/token"}

    def _client(self, body):
        client = self.clients.get(body.get("clientId"))
        if client is None or not secrets.compare_digest(str(body.get("clientSecret")), client["secret"]):
            raise _oidc_error(401, "InvalidClientException", "invalid_client", "unknown client or wrong secret")
        if client["expires_at"] <= time.time():
            raise _oidc_error(401, "InvalidClientException", "invalid_client", "the client registration has expired")
        return client

    def start_device_authorization(self, body):
        with self.lock:
            client = self._client(body)
            if client["grants"] is not None and DEVICE_GRANT not in client["grants"]:
                raise _oidc_error(400, "UnauthorizedClientException", "unauthorized_client", "no device grant")
            if not body.get("startUrl"):
                raise _oidc_error(400, "InvalidRequestException", "invalid_request", "startUrl required")
            device_code = "device-" + secrets.token_urlsafe(24)
            user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
            self.devices[device_code] = {"client_id": body["clientId"], "user_code": user_code, "status": "pending",
                                         "expires_at": time.time() + self.device_expires_in, "last_poll": 0.0,
                                         "start_url": body["startUrl"]}
        verify = self.oidc_url + "/device"
        return {"deviceCode": device_code, "userCode": user_code, "verificationUri": verify,
                "verificationUriComplete": verify + "?user_code=" + user_code, "expiresIn": self.device_expires_in,
                "interval": self.device_interval}

    def authorize(self, query):
        """GET /authorize: (status, location or message)."""
        with self.lock:
            client = self.clients.get(query.get("client_id"))
            redirect = query.get("redirect_uri", "")
            if client is None:
                return 400, "unknown client_id"
            parts = urllib.parse.urlsplit(redirect)
            registered = {(urllib.parse.urlsplit(u).hostname, urllib.parse.urlsplit(u).path) for u in client["redirects"]}
            # RFC 8252 7.3: any port on the loopback redirect URI
            if (parts.hostname, parts.path) not in registered or parts.scheme != "http":
                return 400, "redirect_uri not registered for this client"
            if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256" \
                    or not query.get("code_challenge") or not query.get("state"):
                return 400, "response_type=code, state and an S256 code_challenge are required"
            if self.decision == "deny":
                sep = "&" if parts.query else "?"
                return 302, redirect + sep + urllib.parse.urlencode({"error": "access_denied", "state": query["state"]})
            code = "code-" + secrets.token_urlsafe(24)
            self.codes[code] = {"client_id": query["client_id"], "redirect_uri": redirect,
                                "challenge": query["code_challenge"], "expires_at": time.time() + 300}
        sep = "&" if parts.query else "?"
        return 302, redirect + sep + urllib.parse.urlencode({"code": code, "state": query["state"]})

    def create_token(self, body):
        grant = body.get("grantType")
        with self.lock:
            self.counts["CreateToken:" + str(grant)] += 1
            client = self._client(body)
            if client["grants"] is not None and grant not in client["grants"]:
                raise _oidc_error(400, "UnauthorizedClientException", "unauthorized_client", f"{grant} not registered")
            if grant == DEVICE_GRANT:
                return self._device_token(body, client)
            if grant == "authorization_code":
                return self._code_token(body, client)
            if grant == "refresh_token":
                return self._refresh_token(body, client)
            raise _oidc_error(400, "UnsupportedGrantTypeException", "unsupported_grant_type", str(grant))

    def _device_token(self, body, client):
        device = self.devices.get(body.get("deviceCode"))
        if device is None or device["client_id"] != body["clientId"]:
            raise _oidc_error(400, "InvalidGrantException", "invalid_grant", "unknown device code")
        if self.script:
            forced = self.script.pop(0)
            raise {"pending": _oidc_error(400, "AuthorizationPendingException", "authorization_pending"),
                   "slow_down": _oidc_error(400, "SlowDownException", "slow_down"),
                   "denied": _oidc_error(400, "AccessDeniedException", "access_denied"),
                   "expired": _oidc_error(400, "ExpiredTokenException", "expired_token")}[forced]
        now = time.time()
        if device["expires_at"] <= now:
            raise _oidc_error(400, "ExpiredTokenException", "expired_token", "the device code has expired")
        too_fast = now - device["last_poll"] < self.device_interval * 0.8
        device["last_poll"] = now
        if device["status"] == "denied":
            raise _oidc_error(400, "AccessDeniedException", "access_denied", "the user denied the request")
        if device["status"] == "used":
            raise _oidc_error(400, "InvalidGrantException", "invalid_grant", "the device code was already used")
        if device["status"] == "pending":
            if too_fast:
                raise _oidc_error(400, "SlowDownException", "slow_down")
            raise _oidc_error(400, "AuthorizationPendingException", "authorization_pending")
        device["status"] = "used"
        return self._issue(body["clientId"], client)

    def _code_token(self, body, client):
        code = self.codes.pop(body.get("code"), None)
        if code is None or code["client_id"] != body["clientId"] or code["expires_at"] <= time.time():
            raise _oidc_error(400, "InvalidGrantException", "invalid_grant", "unknown, used or expired code")
        if body.get("redirectUri") != code["redirect_uri"]:
            raise _oidc_error(400, "InvalidGrantException", "invalid_grant", "redirectUri differs from the authorize request")
        if not body.get("codeVerifier") or _b64url_sha256(body["codeVerifier"]) != code["challenge"]:
            raise _oidc_error(400, "InvalidGrantException", "invalid_grant", "PKCE verification failed")
        return self._issue(body["clientId"], client)

    def _refresh_token(self, body, client):
        token = self.refresh_tokens.get(body.get("refreshToken"))
        if token is None or token["revoked"] or token["client_id"] != body["clientId"]:
            raise _oidc_error(400, "InvalidGrantException", "invalid_grant", "invalid refresh token")
        if self.rotate_refresh_tokens:
            token["revoked"] = True
        return self._issue(body["clientId"], client, keep_refresh=None if self.rotate_refresh_tokens else body["refreshToken"])

    def _issue(self, client_id, client, keep_refresh=None, grant=None):
        self.counts["TokensIssued"] += 1
        access = "access-" + secrets.token_urlsafe(32)
        self.access_tokens[access] = {"expires_at": time.time() + self.access_ttl, "client_id": client_id}
        out = {"accessToken": access, "tokenType": "Bearer", "expiresIn": self.access_ttl}
        if SCOPE in client["scopes"]:  # only this scope earns a refresh token
            refresh = keep_refresh or "refresh-" + secrets.token_urlsafe(32)
            self.refresh_tokens.setdefault(refresh, {"client_id": client_id, "revoked": False})
            out["refreshToken"] = refresh
        return out

    # -- sso (the portal) --------------------------------------------------------------------
    def _bearer(self, headers):
        token = headers.get("x-amz-sso_bearer_token")
        with self.lock:
            info = self.access_tokens.get(token)
            if info is None or info["expires_at"] <= time.time():
                raise _portal_error(401, "UnauthorizedException", "Session token not found or invalid")
        return token

    def _page(self, items, query, key):
        try:
            start = int(query.get("next_token") or 0)
            size = int(query.get("max_result") or self.page_size)
        except ValueError:
            raise _portal_error(400, "InvalidRequestException", "bad pagination parameters") from None
        size = max(1, min(size, self.page_size))
        out = {key: items[start:start + size]}
        if start + size < len(items):
            out["nextToken"] = str(start + size)
        return out

    def list_accounts(self, query, headers):
        self._bearer(headers)
        items = [{"accountId": a, "accountName": v["name"], "emailAddress": v["email"]} for a, v in sorted(self.accounts.items())]
        return self._page(items, query, "accountList")

    def list_account_roles(self, query, headers):
        self._bearer(headers)
        account = query.get("account_id")
        if not account:
            raise _portal_error(400, "InvalidRequestException", "account_id is required")
        if account not in self.accounts:
            raise _portal_error(404, "ResourceNotFoundException", "No access")
        items = [{"roleName": r, "accountId": account} for r in self.accounts[account]["roles"]]
        return self._page(items, query, "roleList")

    def get_role_credentials(self, query, headers):
        self._bearer(headers)
        account, role = query.get("account_id"), query.get("role_name")
        if not account or not role:
            raise _portal_error(400, "InvalidRequestException", "account_id and role_name are required")
        if role not in self.accounts.get(account, {}).get("roles", []):
            raise _portal_error(404, "ResourceNotFoundException", "No access")
        import boto3

        sts = boto3.client("sts", endpoint_url=self.sts_url, region_name="us-east-1",
                           aws_access_key_id="AKIAIDENTITYCENTER01", aws_secret_access_key="emulator")
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="sso-user@example.com",
                                DurationSeconds=self.credentials_duration)["Credentials"]
        return {"roleCredentials": {"accessKeyId": creds["AccessKeyId"], "secretAccessKey": creds["SecretAccessKey"],
                                    "sessionToken": creds["SessionToken"],
                                    "expiration": int(creds["Expiration"].timestamp() * 1000)}}

    def logout(self, headers):
        token = self._bearer(headers)
        with self.lock:
            info = self.access_tokens.pop(token, None)
            for value in self.refresh_tokens.values():  # the whole sign-in of this client ends
                if info and value["client_id"] == info["client_id"]:
                    value["revoked"] = True
        return None


class _Server:
    """One service on its own loopback port."""

    def __init__(self, emulator, service):
        self.emulator = emulator
        self.service = service
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=()):
                data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                if body is not None and not isinstance(body, bytes):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                parts = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                em = server.emulator
                with em.lock:
                    em.requests.append((server.service, self.command, parts.path))
                try:
                    body = json.loads(raw) if raw else {}
                    if not isinstance(body, dict):
                        raise ValueError
                except ValueError:
                    return self._send(400, {"error": "invalid_request", "error_description": "body is not JSON"},
                                      [("x-amzn-ErrorType", "InvalidRequestException")])
                route = (server.service, self.command, parts.path)
                op = {
                    ("oidc", "POST", "/client/register"): ("RegisterClient", lambda: em.register_client(body)),
                    ("oidc", "POST", "/device_authorization"): ("StartDeviceAuthorization", lambda: em.start_device_authorization(body)),
                    ("oidc", "POST", "/token"): ("CreateToken", lambda: em.create_token(body)),
                    ("portal", "GET", "/federation/credentials"): ("GetRoleCredentials", lambda: em.get_role_credentials(query, headers)),
                    ("portal", "GET", "/assignment/accounts"): ("ListAccounts", lambda: em.list_accounts(query, headers)),
                    ("portal", "GET", "/assignment/roles"): ("ListAccountRoles", lambda: em.list_account_roles(query, headers)),
                    ("portal", "POST", "/logout"): ("Logout", lambda: em.logout(headers)),
                }.get(route)
                if route == ("oidc", "GET", "/authorize"):
                    with em.lock:
                        em.counts["Authorize"] += 1
                    status, where = em.authorize(query)
                    if status == 302:
                        return self._send(302, b"", [("Location", where)])
                    return self._send(status, where.encode(), [("Content-Type", "text/plain")])
                if route == ("oidc", "GET", "/device"):  # the verification page: the user approves
                    with em.lock:
                        em.counts["DeviceVerification"] += 1
                    try:
                        (em.approve if em.decision == "approve" else em.deny)(query.get("user_code", ""))
                    except KeyError:
                        return self._send(404, b"unknown code", [("Content-Type", "text/plain")])
                    return self._send(200, b"Request approved" if em.decision == "approve" else b"Request denied",
                                      [("Content-Type", "text/plain")])
                if op is None:
                    return self._send(404, {"message": f"no such operation: {self.command} {parts.path}"},
                                      [("x-amzn-ErrorType", "UnknownOperationException")])
                name, call = op
                with em.lock:
                    em.counts[name] += 1
                try:
                    result = call()
                except _Error as e:
                    payload = {"message": e.description} if e.portal else \
                        {"error": e.error, "error_description": e.description or e.error}
                    return self._send(e.status, payload, [("x-amzn-ErrorType", e.kind)])
                return self._send(200, {} if result is None else result)

            do_GET = do_POST = _handle

        self.httpd = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
