"""The Identity Center emulator proved against the official clients: boto3's own `sso-oidc` and
`sso` clients (unsigned, endpoint_url at the emulator) on every operation credproc uses, and
botocore's own SSO credential provider reading a token file."""

import base64
import hashlib
import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore
import pytest
from botocore.config import Config

from tests.peers.moto import MotoServer
from tests.peers.sso_emulator import DEVICE_GRANT, SsoEmulator

START_URL = "https://my-org.awsapps.com/start"


@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def emulator(moto):
    with SsoEmulator(moto.url) as em:
        yield em


def clients(em):
    cfg = Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1})
    oidc = boto3.client("sso-oidc", region_name="eu-west-1", endpoint_url=em.oidc_url, config=cfg,
                        aws_access_key_id="unused", aws_secret_access_key="unused")
    portal = boto3.client("sso", region_name="eu-west-1", endpoint_url=em.portal_url, config=cfg,
                          aws_access_key_id="unused", aws_secret_access_key="unused")
    return oidc, portal


def device_sign_in(em, oidc):
    reg = oidc.register_client(clientName="test", clientType="public", scopes=["sso:account:access"],
                               grantTypes=[DEVICE_GRANT, "refresh_token"])
    auth = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"], startUrl=START_URL)
    return reg, auth


def poll(oidc, reg, auth):
    return oidc.create_token(grantType=DEVICE_GRANT, clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                             deviceCode=auth["deviceCode"])


def test_device_flow_pending_slow_down_then_approved_with_boto3(emulator):
    oidc, _ = clients(emulator)
    reg, auth = device_sign_in(emulator, oidc)
    assert reg["clientSecretExpiresAt"] > reg["clientIdIssuedAt"] and auth["interval"] == 1
    assert auth["verificationUriComplete"].endswith("user_code=" + auth["userCode"])
    emulator.script = ["pending", "slow_down"]
    with pytest.raises(oidc.exceptions.AuthorizationPendingException):
        poll(oidc, reg, auth)
    with pytest.raises(oidc.exceptions.SlowDownException):
        poll(oidc, reg, auth)
    # the user opens the verification page and approves
    with urllib.request.urlopen(auth["verificationUriComplete"], timeout=5) as r:
        assert r.status == 200
    token = poll(oidc, reg, auth)
    assert token["tokenType"] == "Bearer" and token["expiresIn"] == 3600 and token["refreshToken"]
    with pytest.raises(oidc.exceptions.InvalidGrantException):  # a device code is good once
        poll(oidc, reg, auth)
    assert emulator.count("CreateToken:" + DEVICE_GRANT) == 4


@pytest.mark.parametrize("outcome, exc", [("denied", "AccessDeniedException"), ("expired", "ExpiredTokenException")])
def test_device_flow_denied_and_expired_are_the_models_exceptions(emulator, outcome, exc):
    oidc, _ = clients(emulator)
    reg, auth = device_sign_in(emulator, oidc)
    emulator.script = [outcome]
    with pytest.raises(getattr(oidc.exceptions, exc)) as e:
        poll(oidc, reg, auth)
    assert e.value.response["Error"]["Code"] == exc


def test_a_denial_in_the_browser_and_a_real_expiry(emulator):
    oidc, _ = clients(emulator)
    reg, auth = device_sign_in(emulator, oidc)
    emulator.deny(auth["userCode"])
    with pytest.raises(oidc.exceptions.AccessDeniedException):
        poll(oidc, reg, auth)
    emulator.device_expires_in = 0
    reg, auth = device_sign_in(emulator, oidc)
    with pytest.raises(oidc.exceptions.ExpiredTokenException):
        poll(oidc, reg, auth)


def test_wrong_client_secret_is_invalid_client(emulator):
    oidc, _ = clients(emulator)
    reg, auth = device_sign_in(emulator, oidc)
    with pytest.raises(oidc.exceptions.InvalidClientException):
        oidc.create_token(grantType=DEVICE_GRANT, clientId=reg["clientId"], clientSecret="nope", deviceCode=auth["deviceCode"])


def pkce_sign_in(emulator, oidc, tamper_verifier=False):
    reg = oidc.register_client(clientName="test", clientType="public", scopes=["sso:account:access"],
                               grantTypes=["authorization_code", "refresh_token"],
                               redirectUris=["http://127.0.0.1/oauth/callback"], issuerUrl=START_URL)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    redirect = "http://127.0.0.1:9/oauth/callback"  # any port on loopback (RFC 8252); nothing listens
    query = {"response_type": "code", "client_id": reg["clientId"], "redirect_uri": redirect, "state": "s1",
             "code_challenge_method": "S256", "scopes": "sso:account:access", "code_challenge": challenge}

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(emulator.oidc_url + "/authorize?" + urllib.parse.urlencode(query), timeout=5)
    assert e.value.code == 302
    location = urllib.parse.urlsplit(e.value.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    got = dict(urllib.parse.parse_qsl(location.query))
    assert got["state"] == "s1"
    return oidc.create_token(grantType="authorization_code", clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                             redirectUri=redirect, code=got["code"],
                             codeVerifier=verifier + ("x" if tamper_verifier else "")), reg


def test_pkce_flow_and_refresh_with_rotation(emulator):
    oidc, _ = clients(emulator)
    token, reg = pkce_sign_in(emulator, oidc)
    refreshed = oidc.create_token(grantType="refresh_token", clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                  refreshToken=token["refreshToken"])
    assert refreshed["accessToken"] != token["accessToken"] and refreshed["refreshToken"] != token["refreshToken"]
    with pytest.raises(oidc.exceptions.InvalidGrantException):  # the rotated-out token is spent
        oidc.create_token(grantType="refresh_token", clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                          refreshToken=token["refreshToken"])


def test_pkce_with_a_wrong_verifier_is_refused(emulator):
    oidc, _ = clients(emulator)
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        pkce_sign_in(emulator, oidc, tamper_verifier=True)


def test_registration_for_pkce_needs_a_loopback_redirect(emulator):
    oidc, _ = clients(emulator)
    with pytest.raises(oidc.exceptions.InvalidRedirectUriException):
        oidc.register_client(clientName="t", clientType="public", grantTypes=["authorization_code"],
                             redirectUris=["http://localhost.evil.example/cb"], issuerUrl=START_URL)


def test_portal_operations_with_boto3_including_pagination(emulator, moto):
    oidc, portal = clients(emulator)
    token, _ = pkce_sign_in(emulator, oidc)
    access = token["accessToken"]
    accounts = [a for page in portal.get_paginator("list_accounts").paginate(accessToken=access) for a in page["accountList"]]
    assert [a["accountId"] for a in accounts] == ["111111111111", "222222222222"]
    assert accounts[0]["accountName"] == "Production"
    roles = [r["roleName"] for page in portal.get_paginator("list_account_roles").paginate(accessToken=access, accountId="111111111111")
             for r in page["roleList"]]
    assert roles == ["AdministratorAccess", "ReadOnly"]
    assert emulator.count("ListAccounts") == 2 and emulator.count("ListAccountRoles") == 2  # page_size 1
    creds = portal.get_role_credentials(accessToken=access, accountId="111111111111", roleName="ReadOnly")["roleCredentials"]
    assert isinstance(creds["expiration"], int) and creds["expiration"] > 10 ** 12  # epoch milliseconds
    sts = boto3.client("sts", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=creds["accessKeyId"],
                       aws_secret_access_key=creds["secretAccessKey"], aws_session_token=creds["sessionToken"])
    assert sts.get_caller_identity()["Arn"].startswith("arn:aws:sts::111111111111:assumed-role/ReadOnly/")
    with pytest.raises(portal.exceptions.ResourceNotFoundException):
        portal.get_role_credentials(accessToken=access, accountId="222222222222", roleName="ReadOnly")
    portal.logout(accessToken=access)
    with pytest.raises(portal.exceptions.UnauthorizedException):
        portal.list_accounts(accessToken=access)


def test_an_expired_access_token_is_unauthorized(emulator):
    oidc, portal = clients(emulator)
    token, _ = pkce_sign_in(emulator, oidc)
    emulator.expire_access_tokens()
    with pytest.raises(portal.exceptions.UnauthorizedException):
        portal.get_role_credentials(accessToken=token["accessToken"], accountId="111111111111", roleName="ReadOnly")


def test_botocore_sso_credential_provider_uses_the_emulator(emulator, moto, tmp_path, monkeypatch):
    """botocore's own SSO provider (sso_session profile -> token file -> GetRoleCredentials)."""
    oidc, _ = clients(emulator)
    token, reg = pkce_sign_in(emulator, oidc)
    cache = tmp_path / "home" / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    (cache / (hashlib.sha1(b"corp").hexdigest() + ".json")).write_text(json.dumps({
        "startUrl": START_URL, "region": "eu-west-1", "accessToken": token["accessToken"],
        "expiresAt": "2999-01-01T00:00:00Z", "clientId": reg["clientId"], "clientSecret": reg["clientSecret"],
        "registrationExpiresAt": "2999-01-01T00:00:00Z", "refreshToken": token["refreshToken"]}))
    config = tmp_path / "config"
    config.write_text(f"[profile p]\nsso_session = corp\nsso_account_id = 222222222222\nsso_role_name = Developer\n"
                      f"region = us-east-1\n[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO", emulator.portal_url)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    import botocore.credentials
    import botocore.session
    import botocore.tokens
    from botocore.utils import JSONFileCache

    session = botocore.session.Session(profile="p")
    token_cache = JSONFileCache(str(cache))
    provider = botocore.credentials.SSOProvider(
        load_config=lambda: session.full_config, client_creator=session.create_client, profile_name="p",
        token_cache=token_cache, token_provider=botocore.tokens.SSOTokenProvider(session, cache=token_cache))
    creds = provider.load().get_frozen_credentials()
    sts = boto3.client("sts", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=creds.access_key,
                       aws_secret_access_key=creds.secret_key, aws_session_token=creds.token)
    assert sts.get_caller_identity()["Arn"].startswith("arn:aws:sts::222222222222:assumed-role/Developer/")
    assert emulator.count("GetRoleCredentials") == 1
    assert os.environ["HOME"] == str(tmp_path / "home")
