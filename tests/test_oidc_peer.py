"""The OpenID Connect test peer itself (tests/node/oidc-server.mjs via tests/peers/oidc.py) and the
scripted browser (tests/peers/browser.py), exercised with plain HTTP calls."""

import base64
import concurrent.futures
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse

import pytest
import requests

from tests.peers.browser import BrowserError, complete_code_flow, complete_device_flow
from tests.peers.oidc import DEVICE_GRANT, OidcProvider, node_available

pytestmark = pytest.mark.skipif(node_available() is not None, reason=str(node_available()))

ROLES = ["arn:aws:iam::123456789012:role/dev", "arn:aws:iam::123456789012:role/admin"]
SCOPE = "openid offline_access email"
T = 5  # seconds, every HTTP call


def b64json(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_parts(token):
    header, payload, _sig = token.split(".")
    return b64json(header), b64json(payload)


@pytest.fixture(scope="module")
def op():
    with OidcProvider(roles=ROLES) as provider:
        yield provider


@pytest.fixture
def fresh_stats(op):
    op.reset_stats()
    return op


def token(op, auth=None, **data):
    data.setdefault("client_id", op.client_id)
    if auth is not None:
        data.pop("client_id")
    return requests.post(op.token_endpoint, data=data, auth=auth, timeout=T)


def device_authorize(op, client_id=None, auth=None, scope=SCOPE):
    data = {"scope": scope}
    if auth is None:
        data["client_id"] = client_id or op.client_id
    r = requests.post(op.device_authorization_endpoint, data=data, auth=auth, timeout=T)
    assert r.status_code == 200, r.text
    return r.json()


def device_login(op, login="alice"):
    d = device_authorize(op)
    assert complete_device_flow(d["verification_uri_complete"], login=login).approved
    r = token(op, grant_type=DEVICE_GRANT, device_code=d["device_code"])
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------- discovery and keys

def test_discovery_and_jwks(op):
    disc = requests.get(op.issuer + "/.well-known/openid-configuration", timeout=T).json()
    assert disc["issuer"] == op.issuer == f"http://127.0.0.1:{op.port}"
    assert DEVICE_GRANT in disc["grant_types_supported"]
    assert {"openid", "offline_access", "email"} <= set(disc["scopes_supported"])
    assert disc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert disc["code_challenge_methods_supported"] == ["S256"]
    assert "aws_roles" in disc["claims_supported"]
    for key in ("device_authorization_endpoint", "token_endpoint", "revocation_endpoint", "jwks_uri"):
        assert disc[key].startswith(op.issuer + "/")
    jwks = requests.get(disc["jwks_uri"], timeout=T).json()
    assert [(k["kty"], k["alg"], k["use"]) for k in jwks["keys"]] == [("RSA", "RS256", "sig")]
    assert "d" not in jwks["keys"][0]  # public part only


# ---------------------------------------------------------------- device flow

def test_device_flow_pending_then_tokens_with_claims(fresh_stats):
    op = fresh_stats
    d = device_authorize(op)
    assert d["verification_uri_complete"].startswith(op.issuer + "/device?user_code=")
    assert "interval" not in d  # clients must default to 5 s (RFC 8628)

    pending = token(op, grant_type=DEVICE_GRANT, device_code=d["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    t0 = time.monotonic()
    result = complete_device_flow(d["verification_uri_complete"], login="alice")
    assert result.approved and result.page.title == "Sign-in Success"
    assert time.monotonic() - t0 < T

    r = token(op, grant_type=DEVICE_GRANT, device_code=d["device_code"])
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["refresh_token"] and tok["access_token"]
    assert set(tok["scope"].split()) == set(SCOPE.split())
    header, claims = jwt_parts(tok["id_token"])
    assert header["alg"] == "RS256"
    jwks = requests.get(op.jwks_uri, timeout=T).json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert claims["iss"] == op.issuer and claims["aud"] == op.client_id
    assert claims["sub"] == "alice"
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is True
    assert claims["aws_roles"] == ROLES
    assert claims["exp"] - claims["iat"] == 3600

    # a device code is single use
    again = token(op, grant_type=DEVICE_GRANT, device_code=d["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    s = op.stats()
    assert s["device_authorization"] == 1
    assert s["token"] == 3
    assert s["token_by_grant_type"] == {"device_code": 3}
    assert s["token_errors"] == {"authorization_pending": 1, "invalid_grant": 1}
    assert [(x["status"], x["error"]) for x in s["token_requests"]] == [
        (400, "authorization_pending"), (200, None), (400, "invalid_grant")]
    assert s["token_requests"][1]["client_id"] == op.client_id


def test_device_flow_denied(op):
    d = device_authorize(op)
    result = complete_device_flow(d["verification_uri_complete"], approve=False)
    assert result.approved is False
    r = token(op, grant_type=DEVICE_GRANT, device_code=d["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "access_denied"


def test_device_flow_login_becomes_sub(op):
    tok = device_login(op, login="bob")
    assert jwt_parts(tok["id_token"])[1]["sub"] == "bob"
    assert jwt_parts(tok["id_token"])[1]["email"] == "bob@example.com"


def test_browser_rejects_unknown_user_code(op):
    with pytest.raises(BrowserError, match="rejected"):
        complete_device_flow(op.issuer + "/device?user_code=BCDF-GHJK")


def test_refresh_token_requires_offline_access(op):
    d = device_authorize(op, scope="openid email")
    assert complete_device_flow(d["verification_uri_complete"]).approved
    tok = token(op, grant_type=DEVICE_GRANT, device_code=d["device_code"]).json()
    assert "id_token" in tok and "refresh_token" not in tok


# ---------------------------------------------------------------- refresh and revocation

def test_refresh_rotates_and_reuse_is_invalid_grant(fresh_stats):
    op = fresh_stats
    first = device_login(op)
    r = token(op, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    claims = jwt_parts(second["id_token"])[1]
    assert claims["sub"] == "alice" and claims["aws_roles"] == ROLES and claims["email"] == "alice@example.com"

    reuse = token(op, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # reuse detection revokes the whole grant: the newest refresh token is dead too
    newest = token(op, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert newest.status_code == 400 and newest.json()["error"] == "invalid_grant"

    s = op.stats()
    assert s["token_by_grant_type"] == {"device_code": 1, "refresh_token": 3}
    assert s["token_errors"] == {"invalid_grant": 2}


def test_revoked_refresh_token_is_invalid_grant(fresh_stats):
    op = fresh_stats
    tok = device_login(op)
    r = requests.post(op.revocation_endpoint, timeout=T, data={
        "client_id": op.client_id, "token": tok["refresh_token"], "token_type_hint": "refresh_token"})
    assert r.status_code == 200, r.text
    r = token(op, grant_type="refresh_token", refresh_token=tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert op.stats()["revocation"] == 1


def test_concurrent_refreshes_are_each_counted(fresh_stats):
    op = fresh_stats
    tok = device_login(op)
    op.reset_stats()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(
            lambda _: token(op, grant_type="refresh_token", refresh_token=tok["refresh_token"]).status_code,
            range(20)))
    # one wins, the others reuse a consumed token (and kill the grant): why callers must share one refresh
    assert results.count(200) >= 1 and set(results) <= {200, 400}
    s = op.stats()
    assert s["token"] == 20 and s["token_by_grant_type"] == {"refresh_token": 20}


# ---------------------------------------------------------------- confidential client

def test_confidential_client_secret_basic(op):
    good = (op.confidential_client_id, op.confidential_client_secret)
    d = device_authorize(op, auth=good)
    assert complete_device_flow(d["verification_uri_complete"]).approved
    bad = token(op, auth=(op.confidential_client_id, "wrong"), grant_type=DEVICE_GRANT,
                device_code=d["device_code"])
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    r = token(op, auth=good, grant_type=DEVICE_GRANT, device_code=d["device_code"])
    assert r.status_code == 200, r.text
    assert jwt_parts(r.json()["id_token"])[1]["aud"] == op.confidential_client_id
    r = token(op, auth=good, grant_type="refresh_token", refresh_token=r.json()["refresh_token"])
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- authorization code flow + PKCE

class Listener:
    """A one-shot loopback redirect_uri listener on a random port (what credproc would run)."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                body = b"done, you can close this window"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}/callback"
        self.thread = threading.Thread(target=self.server.handle_request, daemon=True)
        self.thread.start()

    def close(self):
        self.server.server_close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def auth_url(op, redirect_uri, challenge=None, state="st-1", scope=SCOPE, **extra):
    params = {"client_id": op.client_id, "response_type": "code", "scope": scope,
              "redirect_uri": redirect_uri, "state": state, **extra}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return op.authorization_endpoint + "?" + urllib.parse.urlencode(params)


def test_code_flow_with_pkce_and_loopback_port(fresh_stats, listener):
    op = fresh_stats
    assert op.redirect_uri == "http://127.0.0.1/callback"  # registered without a port
    verifier, challenge = pkce_pair()
    result = complete_code_flow(auth_url(op, listener.redirect_uri, challenge), login="carol")
    assert result.callback_url.startswith(listener.redirect_uri + "?")
    assert result.response.status_code == 200 and b"done" in result.response.content
    listener.thread.join(T)
    assert len(listener.requests) == 1 and listener.requests[0].startswith("/callback?")
    assert result.params["state"] == "st-1" and result.params["iss"] == op.issuer
    code = result.params["code"]

    r = token(op, grant_type="authorization_code", code=code, redirect_uri=listener.redirect_uri,
              code_verifier=verifier)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["refresh_token"]
    claims = jwt_parts(tok["id_token"])[1]
    assert claims["sub"] == "carol" and claims["email"] == "carol@example.com" and claims["aws_roles"] == ROLES

    r = token(op, grant_type="refresh_token", refresh_token=tok["refresh_token"])
    assert r.status_code == 200 and r.json()["refresh_token"] != tok["refresh_token"]
    s = op.stats()
    assert s["authorization"] == 1
    assert s["token_by_grant_type"] == {"authorization_code": 1, "refresh_token": 1}


def test_code_flow_wrong_verifier_is_invalid_grant(op):
    verifier, challenge = pkce_pair()
    redirect = "http://127.0.0.1:9/callback"  # not delivered: nothing needs to listen
    result = complete_code_flow(auth_url(op, redirect, challenge), deliver=False)
    assert result.response is None and result.callback_url.startswith(redirect + "?")
    r = token(op, grant_type="authorization_code", code=result.params["code"], redirect_uri=redirect,
              code_verifier=pkce_pair()[0])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = token(op, grant_type="authorization_code", code=result.params["code"], redirect_uri=redirect)
    assert r.status_code == 400


def test_code_flow_requires_pkce(op):
    result = complete_code_flow(auth_url(op, "http://127.0.0.1:9/callback"), deliver=False)
    assert result.params["error"] == "invalid_request"
    assert "PKCE" in result.params["error_description"]


def test_code_flow_unregistered_redirect_uri_is_refused(op):
    with pytest.raises(BrowserError, match="HTTP 400"):
        complete_code_flow(auth_url(op, "http://127.0.0.1:9/other", pkce_pair()[1]), deliver=False)
    with pytest.raises(BrowserError, match="HTTP 400"):
        complete_code_flow(auth_url(op, "http://192.0.2.1:9/callback", pkce_pair()[1]), deliver=False)


def test_code_flow_user_aborts(op, listener):
    result = complete_code_flow(auth_url(op, listener.redirect_uri, pkce_pair()[1]), approve=False)
    assert result.params["error"] == "access_denied" and result.params["state"] == "st-1"
    assert result.response.status_code == 200


def test_code_flow_offline_access_with_prompt_login(op):
    # OIDC drops offline_access unless prompt has "consent"; the peer adds it (offline_access_adds_consent)
    verifier, challenge = pkce_pair()
    redirect = "http://127.0.0.1:9/callback"
    result = complete_code_flow(auth_url(op, redirect, challenge, prompt="login"), deliver=False)
    r = token(op, grant_type="authorization_code", code=result.params["code"], redirect_uri=redirect,
              code_verifier=verifier)
    assert r.status_code == 200, r.text
    assert "offline_access" in r.json()["scope"].split() and r.json()["refresh_token"]


# ---------------------------------------------------------------- per-start settings

def test_settings_ttls_roles_and_key_rotation():
    roles_bob = ["arn:aws:iam::210987654321:role/bob"]
    with OidcProvider(client_id="other-client", roles=ROLES, roles_by_account={"bob": roles_bob},
                      id_token_ttl=5, refresh_token_ttl=2, keys=2, email_domain="corp.test") as op2:
        jwks = requests.get(op2.jwks_uri, timeout=T).json()
        assert len(jwks["keys"]) == 2
        tok = device_login(op2, login="bob")
        r = token(op2, grant_type="refresh_token", refresh_token=tok["refresh_token"])
        refreshed_at = time.monotonic()
        assert r.status_code == 200, r.text
        refreshed = r.json()
        for t in (tok, refreshed):
            header, claims = jwt_parts(t["id_token"])
            assert header["kid"] == jwks["keys"][0]["kid"]  # the first key signs
            assert claims["aud"] == "other-client" and claims["exp"] - claims["iat"] == 5
            assert claims["aws_roles"] == roles_bob and claims["email"] == "bob@corp.test"
        assert jwt_parts(device_login(op2, login="alice")["id_token"])[1]["aws_roles"] == ROLES

        rotated = op2.rotate_keys()
        assert len(rotated["kids"]) == 3 and rotated["kids"][0] == rotated["kid"]
        jwks = requests.get(op2.jwks_uri, timeout=T).json()
        assert [k["kid"] for k in jwks["keys"]] == rotated["kids"]
        assert jwt_parts(device_login(op2)["id_token"])[0]["kid"] == rotated["kid"]
        only = op2.rotate_keys(drop_old=True)
        assert only["kids"] == [only["kid"]]
        assert [k["kid"] for k in requests.get(op2.jwks_uri, timeout=T).json()["keys"]] == only["kids"]

        time.sleep(max(0.0, refreshed_at + 2.3 - time.monotonic()))  # refresh_token_ttl=2
        r = token(op2, grant_type="refresh_token", refresh_token=refreshed["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_injected_token_failures_and_delay(op):
    tok = device_login(op)
    op.reset_stats()
    op.configure(fail_token={"status": 503, "error": "temporarily_unavailable", "count": 2})
    for _ in range(2):
        r = token(op, grant_type="refresh_token", refresh_token=tok["refresh_token"])
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    op.configure(token_delay_ms=300)
    try:
        t0 = time.monotonic()
        r = token(op, grant_type="refresh_token", refresh_token=tok["refresh_token"])
        assert r.status_code == 200 and time.monotonic() - t0 >= 0.3
    finally:
        op.configure(token_delay_ms=0)
    s = op.stats()
    assert s["token"] == 3 and [x["status"] for x in s["token_requests"]] == [503, 503, 200]
