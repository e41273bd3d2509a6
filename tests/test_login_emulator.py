"""The AWS Sign-In emulator (tests/peers/login_emulator.py) proved against the official code:
botocore's own `signin` client (the model's request, response and error shapes), botocore's own
DPoP proof builder (`_build_dpop_header`, over an awscrt key as the AWS CLI makes it), the AWS
CLI v2's exact authorize URL, and botocore's own LoginProvider refreshing a cache file in the CLI's
format through it."""

import base64
import datetime
import functools
import hashlib
import json
import os
import secrets
import string
import textwrap
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import botocore
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

awscrt_crypto = pytest.importorskip("awscrt.crypto")
from botocore.credentials import LoginProvider, _build_dpop_header  # noqa: E402
from botocore.exceptions import LoginRefreshRequired  # noqa: E402
from botocore.utils import JSONFileCache, generate_login_cache_key, percent_encode_sequence  # noqa: E402

from tests.peers.login_emulator import CROSS_DEVICE, LOGIN_SESSION, SAME_DEVICE, LoginEmulator  # noqa: E402
from tests.peers.moto import MotoServer  # noqa: E402

EC, ECType, ECExportFormat = awscrt_crypto.EC, awscrt_crypto.ECType, awscrt_crypto.ECExportFormat


@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def em(moto):
    with LoginEmulator(moto.url) as e:
        yield e


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def _get(url):
    """(status, Location or body) of a GET, not following redirects."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location") or e.read().decode()


def signin_client(em):
    cfg = Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1})
    return boto3.client("signin", region_name="us-east-1", endpoint_url=em.url, config=cfg,
                        aws_access_key_id="unused", aws_secret_access_key="unused")


def with_dpop(client, key):
    """What the AWS CLI and botocore register: botocore's own proof builder on every call."""
    client.meta.events.register("before-call.signin.CreateOAuth2Token",
                                lambda **kw: kw["params"]["headers"].__setitem__("DPoP", _build_dpop_header(key, kw["params"]["url"])))
    return client


def cli_authorize_url(base, client_id, redirect_uri):
    """As awscli/customizations/login/utils.py builds it (v2 branch), to the letter."""
    verifier = "".join(secrets.choice(string.ascii_letters + string.digits + "-._~") for _ in range(64))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
    state = uuid.uuid4()
    query = {"response_type": "code", "client_id": client_id, "state": state, "code_challenge_method": "SHA-256",
             "scope": "openid", "redirect_uri": redirect_uri}
    return f"{base}/v1/authorize?{percent_encode_sequence(query)}&code_challenge={challenge[:-1]}", verifier, str(state)


def cli_key():
    """A P-256 key made as the AWS CLI makes it (awscrt). About 1 in 200 awscrt keys does not survive
    its own SEC1 export (a coordinate or the scalar with a leading zero byte: exported short, then
    read back as another encoding or refused), a quirk the AWS CLI shares; these tests take keys that
    round-trip, so that they test credproc and the emulator rather than awscrt's encoder."""
    while True:
        key = EC.new_generate(ECType.P_256)
        x, y = key.get_public_coords()
        try:
            again = EC.new_key_from_der_data(key.export_key(ECExportFormat.SEC1)).get_public_coords()
        except RuntimeError:
            continue
        if len(x) == len(y) == 32 and again == (x, y):
            return key


def pem(key):
    """The CLI's _serialize_to_pem."""
    contents = base64.b64encode(key.export_key(ECExportFormat.SEC1)).decode()
    return f"-----BEGIN EC PRIVATE KEY-----\n{textwrap.fill(contents, width=64)}\n-----END EC PRIVATE KEY-----\n"


def cli_sign_in(em, key, client_id=SAME_DEVICE):
    """The AWS CLI's same-device (or cross-device) sign-in, against the emulator: (tokenOutput, redirect)."""
    redirect = "http://127.0.0.1:4321/oauth/callback" if client_id == SAME_DEVICE else em.confirmation_url
    url, verifier, state = cli_authorize_url(em.url, client_id, redirect)
    status, location = _get(url)
    assert status == 302, location
    if client_id == CROSS_DEVICE:
        status, pasted = _get(location)
        assert status == 200
        params = dict(urllib.parse.parse_qsl(base64.b64decode(pasted).decode()))  # parse_verification_code
    else:
        assert location.startswith(redirect + "?")
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert params["state"] == state
    out = with_dpop(signin_client(em), key).create_o_auth2_token(tokenInput={
        "clientId": client_id, "grantType": "authorization_code", "code": params["code"], "codeVerifier": verifier,
        "redirectUri": redirect})
    return out["tokenOutput"], redirect


def test_same_device_sign_in_with_botocore_client_and_dpop(em, moto):
    key = cli_key()
    out, _ = cli_sign_in(em, key)
    assert out["tokenType"] == "aws_sigv4" and out["expiresIn"] == 900 and out["refreshToken"].startswith("ASOR")
    claims = json.loads(base64.urlsafe_b64decode(out["idToken"].split(".")[1] + "=="))
    assert claims["sub"] == LOGIN_SESSION
    a = out["accessToken"]
    sts = boto3.client("sts", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=a["accessKeyId"],
                       aws_secret_access_key=a["secretAccessKey"], aws_session_token=a["sessionToken"])
    assert ":assumed-role/ConsoleUser/" in sts.get_caller_identity()["Arn"]
    assert em.count("Authorize") == 1 and em.count("CreateOAuth2Token:authorization_code") == 1


def test_cross_device_sign_in(em):
    out, _ = cli_sign_in(em, cli_key(), client_id=CROSS_DEVICE)
    assert out["idToken"] and out["refreshToken"]


def test_authorize_rejects_anything_but_the_clis_parameters(em):
    url, _, _ = cli_authorize_url(em.url, SAME_DEVICE, "http://127.0.0.1:4321/oauth/callback")
    assert _get(url.replace("SHA-256", "S256"))[0] == 400
    assert _get(url.replace("scope=openid", "scope=profile"))[0] == 400
    assert _get(url.replace("127.0.0.1", "localhost"))[0] == 400
    assert _get(url.replace("same-device", "other"))[0] == 400
    cross, _, _ = cli_authorize_url(em.url, CROSS_DEVICE, "http://127.0.0.1:4321/oauth/callback")
    assert _get(cross)[0] == 400  # cross device only to the confirmation page


def test_codes_are_single_use_and_bound_to_the_verifier(em):
    key = cli_key()
    redirect = "http://127.0.0.1:4321/oauth/callback"
    url, verifier, _ = cli_authorize_url(em.url, SAME_DEVICE, redirect)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(_get(url)[1]).query))["code"]
    client = with_dpop(signin_client(em), key)
    body = {"clientId": SAME_DEVICE, "grantType": "authorization_code", "code": code, "redirectUri": redirect}
    with pytest.raises(ClientError) as e:
        client.create_o_auth2_token(tokenInput=dict(body, codeVerifier="x" * 64))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError):  # the failed attempt spent it
        client.create_o_auth2_token(tokenInput=dict(body, codeVerifier=verifier))


def test_refresh_rotates_reuse_ends_the_sign_in_with_the_models_error_shape(em):
    key = cli_key()
    out, _ = cli_sign_in(em, key)
    client = with_dpop(signin_client(em), key)
    first = out["refreshToken"]
    new = client.create_o_auth2_token(tokenInput={"clientId": SAME_DEVICE, "grantType": "refresh_token",
                                                  "refreshToken": first})["tokenOutput"]
    assert new["refreshToken"] != first and "idToken" not in new
    with pytest.raises(client.exceptions.AccessDeniedException) as e:
        client.create_o_auth2_token(tokenInput={"clientId": SAME_DEVICE, "grantType": "refresh_token", "refreshToken": first})
    assert e.value.response["error"] == "TOKEN_EXPIRED"  # where botocore's LoginCredentialFetcher looks
    assert em.count("Reuse") == 1
    with pytest.raises(client.exceptions.AccessDeniedException):  # the whole sign-in ended
        client.create_o_auth2_token(tokenInput={"clientId": SAME_DEVICE, "grantType": "refresh_token",
                                                "refreshToken": new["refreshToken"]})


def test_dpop_proofs_are_checked_and_bound_to_the_sign_ins_key(em):
    key = cli_key()
    out, _ = cli_sign_in(em, key)
    other = with_dpop(signin_client(em), cli_key())
    body = {"clientId": SAME_DEVICE, "grantType": "refresh_token", "refreshToken": out["refreshToken"]}
    with pytest.raises(other.exceptions.ValidationException):
        other.create_o_auth2_token(tokenInput=body)
    bare = signin_client(em)
    with pytest.raises(bare.exceptions.ValidationException):
        bare.create_o_auth2_token(tokenInput=body)
    replay = signin_client(em)
    proof = _build_dpop_header(key, em.token_url)
    replay.meta.events.register("before-call.signin.CreateOAuth2Token",
                                lambda **kw: kw["params"]["headers"].__setitem__("DPoP", proof))
    replay.create_o_auth2_token(tokenInput=body)  # the key's proof: accepted once
    with pytest.raises(replay.exceptions.ValidationException):  # the same jti again
        replay.create_o_auth2_token(tokenInput=body)
    wrong_htu = signin_client(em)
    wrong_htu.meta.events.register("before-call.signin.CreateOAuth2Token", lambda **kw: kw["params"]["headers"].__setitem__(
        "DPoP", _build_dpop_header(key, em.url + "/v1/token/")))
    with pytest.raises(wrong_htu.exceptions.ValidationException):
        wrong_htu.create_o_auth2_token(tokenInput=body)


def test_error_codes_in_the_models_shape(em):
    key = cli_key()
    out, _ = cli_sign_in(em, key)
    client = with_dpop(signin_client(em), key)
    em.deny_permissions = True
    with pytest.raises(client.exceptions.AccessDeniedException) as e:
        client.create_o_auth2_token(tokenInput={"clientId": SAME_DEVICE, "grantType": "refresh_token",
                                                "refreshToken": out["refreshToken"]})
    assert e.value.response["error"] == "INSUFFICIENT_PERMISSIONS"
    em.deny_permissions = False
    em.expire_codes = True
    with pytest.raises(client.exceptions.AccessDeniedException) as e:
        cli_sign_in(em, key)
    assert e.value.response["error"] == "AUTHCODE_EXPIRED"


def _cli_cache_file(em, tmp_path, key, out, expires_at):
    """The file `aws login` writes (awscli login.py + utils.py), via botocore's JSONFileCache."""
    token = {"accessToken": {**out["accessToken"], "accountId": "111111111111", "expiresAt": expires_at},
             "tokenType": out["tokenType"], "clientId": SAME_DEVICE, "refreshToken": out["refreshToken"],
             "idToken": out["idToken"], "dpopKey": pem(key)}
    cache = JSONFileCache(str(tmp_path))
    cache[generate_login_cache_key(LOGIN_SESSION)] = token
    return os.path.join(str(tmp_path), generate_login_cache_key(LOGIN_SESSION) + ".json")


def botocore_login_provider(em, tmp_path):
    session = botocore.session.get_session()
    creator = functools.partial(session.create_client, endpoint_url=em.url, region_name="us-east-1")
    return LoginProvider(load_config=lambda: {"profiles": {"dev": {"login_session": LOGIN_SESSION}}},
                         client_creator=creator, profile_name="dev", token_cache=JSONFileCache(str(tmp_path)))


def test_botocores_login_provider_refreshes_the_cli_file_through_the_emulator(em, moto, tmp_path):
    key = cli_key()
    out, _ = cli_sign_in(em, key)
    path = _cli_cache_file(em, tmp_path, key, out, "2020-01-01T00:00:00Z")  # expired: botocore must refresh
    creds = botocore_login_provider(em, tmp_path).load()
    frozen = creds.get_frozen_credentials()
    assert frozen.access_key != out["accessToken"]["accessKeyId"]
    assert em.refreshes() == 1 and em.count("Reuse") == 0
    with open(path) as f:
        saved = json.load(f)
    assert saved["refreshToken"] != out["refreshToken"] and saved["accessToken"]["accessKeyId"] == frozen.access_key
    sts = boto3.client("sts", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=frozen.access_key,
                       aws_secret_access_key=frozen.secret_key, aws_session_token=frozen.token)
    assert ":assumed-role/ConsoleUser/" in sts.get_caller_identity()["Arn"]
    left = datetime.datetime.strptime(saved["accessToken"]["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)
    assert 800 < left.total_seconds() <= 900


def test_botocores_login_provider_sees_a_revoked_session(em, tmp_path):
    key = cli_key()
    out, _ = cli_sign_in(em, key)
    _cli_cache_file(em, tmp_path, key, out, "2020-01-01T00:00:00Z")
    em.revoke()
    with pytest.raises(LoginRefreshRequired):
        botocore_login_provider(em, tmp_path).load().get_frozen_credentials()
