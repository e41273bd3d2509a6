"""type = "login" in pieces: the DPoP proof and the key's PEM against botocore's and the AWS CLI's
own code, the answer checks, the CLI file's checks, the configuration, and the per-source
lifetime hook (served with more than 10 minutes left, refreshed from 11)."""

import base64
import json
import os
import time

import pytest
from freezegun import freeze_time

from credproc import config
from credproc.context import Context
from credproc.core.errors import ConfigError, ServiceError
from credproc.core.store import EncryptedFileCache
from credproc.sources.cached import CachedProvider, refresh_at
from credproc.sources.login.protocol import (CROSS_DEVICE, SAME_DEVICE, CliLoginCache, DpopKey, SigninClient,
                                             base_url, login_session_of)
from credproc.sources.login.provider import LoginProvider
from tests.fakes import CountingProvider, ScriptedTerminal
from tests.peers.login_emulator import LOGIN_SESSION, jwk_thumbprint, verify_dpop

crypto = pytest.importorskip("awscrt.crypto")


def _b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_the_dpop_proof_is_byte_for_byte_botocores_and_verifies():
    from botocore.credentials import LoginCredentialFetcher, _build_dpop_header

    key = DpopKey.generate()
    crt_key = LoginCredentialFetcher._load_private_key({"dpopKey": key.pem()})  # botocore reads our PEM
    url = "https://eu-west-1.signin.aws.amazon.com/v1/token"
    ours = key.proof(url, now=1_800_000_000, jti="6a3b1c9e-0000-4000-8000-000000000001")
    theirs = _build_dpop_header(crt_key, url, uid="6a3b1c9e-0000-4000-8000-000000000001", ts=1_800_000_000)
    assert ours.rsplit(".", 1)[0] == theirs.rsplit(".", 1)[0]  # header and claims: the same bytes
    header, claims = _b64json(ours.split(".")[0]), _b64json(ours.split(".")[1])
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256" and set(header["jwk"]) == {"kty", "x", "y", "crv"}
    assert claims == {"htm": "POST", "htu": url, "iat": 1_800_000_000, "jti": "6a3b1c9e-0000-4000-8000-000000000001"}
    seen = set()
    assert verify_dpop(ours, url, seen, 1_800_000_000) == jwk_thumbprint(header["jwk"])
    assert verify_dpop(theirs, url, set(), 1_800_000_000)  # and the emulator checks botocore's the same way
    with pytest.raises(Exception):  # a jti seen before is a replay
        verify_dpop(theirs, url, seen, 1_800_000_000)


def test_the_pem_is_the_aws_clis_sec1_format():
    from tests.test_login_emulator import cli_key, pem

    crt_key = cli_key()
    cli_pem = pem(crt_key)
    key = DpopKey.from_pem(cli_pem)
    assert key is not None and key.pem() == cli_pem
    assert "private" in repr(key) and cli_pem.splitlines()[1] not in repr(key)
    assert DpopKey.from_pem("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n") is None


def test_base_url_by_partition():
    assert base_url("eu-west-1") == "https://eu-west-1.signin.aws.amazon.com"
    assert base_url("cn-north-1") == "https://cn-north-1.signin.amazonaws.cn"
    assert base_url("us-gov-west-1") == "https://us-gov-west-1.signin.amazonaws-us-gov.com"


IDP = {"name": "console", "type": "login", "region": "eu-west-1", "flow": "browser", "aws_cli_cache": "share",
       "login_session": None, "signin_endpoint_url": None}


def _client():
    return SigninClient(IDP, ScriptedTerminal(), "eu-west-1", clock=lambda: 1_800_000_000)


def _id_token(sub):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'ES256'})}.{enc({'sub': sub})}.sig"


GOOD = {"accessToken": {"accessKeyId": "ASIAEXAMPLE000000001", "secretAccessKey": "s", "sessionToken": "t"},
        "tokenType": "aws_sigv4", "expiresIn": 900, "refreshToken": "ASORx", "idToken": _id_token(LOGIN_SESSION)}


@pytest.mark.parametrize("bad", [
    {"expiresIn": 901}, {"expiresIn": 0}, {"expiresIn": "900"}, {"expiresIn": True}, {"refreshToken": ""},
    {"refreshToken": "x" * 20000}, {"accessToken": {"accessKeyId": "ASIAEXAMPLE000000001"}},
    {"accessToken": {"accessKeyId": "bad id\n", "secretAccessKey": "s", "sessionToken": "t"}}, {"accessToken": []},
])
def test_answers_are_checked(bad):
    with pytest.raises(ServiceError):
        _client()._checked({**GOOD, **bad}, "refresh_token")


def test_the_id_token_must_name_a_login_session():
    out = _client()._checked(GOOD, "authorization_code")
    assert out["login_session"] == LOGIN_SESSION and out["expires_at"] == 1_800_000_900
    for sub in ("alice", "arn:aws:iam::1:user/a", "arn:aws:iam::111111111111:user/a\x1b[31m"):
        with pytest.raises(ServiceError):
            _client()._checked({**GOOD, "idToken": _id_token(sub)}, "authorization_code")
    assert login_session_of("not.a.jwt.at.all") is None


def _cli_file(tmp_path, monkeypatch, **changes):
    monkeypatch.setenv("AWS_LOGIN_CACHE_DIRECTORY", str(tmp_path))
    cache = CliLoginCache(IDP)
    doc = {"accessToken": {"accessKeyId": "ASIAEXAMPLE000000001", "secretAccessKey": "s", "sessionToken": "t",
                           "accountId": "111111111111", "expiresAt": "2030-01-01T00:00:00Z"},
           "tokenType": "aws_sigv4", "clientId": SAME_DEVICE, "refreshToken": "ASORx",
           "idToken": _id_token(LOGIN_SESSION), "dpopKey": DpopKey.generate().pem(), **changes}
    path = cache.path(LOGIN_SESSION)
    with open(path, "w") as f:
        json.dump(doc, f)
    return cache, path


def test_a_cli_file_is_checked_before_use(tmp_path, monkeypatch):
    cache, path = _cli_file(tmp_path, monkeypatch)
    state = cache.load(path)
    assert state["login_session"] == LOGIN_SESSION and state["refresh_token"] == "ASORx"
    assert cache.candidates() == [path]
    # a refresh token with a bad client id or key is not taken (the credentials still may be)
    for change in ({"clientId": "arn:aws:signin:::devtools/other"}, {"dpopKey": "junk"}):
        cache, path = _cli_file(tmp_path, monkeypatch, **change)
        assert "refresh_token" not in cache.load(path)
    # a file whose session does not hash to its name, or is not the pinned one, is not used
    cache, path = _cli_file(tmp_path, monkeypatch, idToken=_id_token("arn:aws:iam::111111111111:user/mallory"))
    assert cache.load(path) is None
    cache, path = _cli_file(tmp_path, monkeypatch)
    pinned = CliLoginCache(dict(IDP, login_session="arn:aws:iam::111111111111:user/bob"))
    assert pinned.load(path) is None
    assert CliLoginCache(dict(IDP, aws_cli_cache="off")).candidates() == []


def test_share_mode_keeps_fields_it_does_not_know(tmp_path, monkeypatch):
    cache, path = _cli_file(tmp_path, monkeypatch, signInRegion="eu-west-1")
    state = dict(cache.load(path), refresh_token="ASORy", expires_at=1_900_000_000, client_id=CROSS_DEVICE)
    cache.write(state)
    with open(path) as f:
        doc = json.load(f)
    assert doc["signInRegion"] == "eu-west-1" and doc["refreshToken"] == "ASORy" and doc["clientId"] == CROSS_DEVICE
    assert doc["accessToken"]["expiresAt"] == "2030-03-17T17:46:40Z"
    assert os.stat(path).st_mode & 0o777 == 0o600


def _parse(idp_extra="", role_extra=""):
    return config.parse("c.toml", f"""
[idp.console]
type = "login"
region = "eu-west-1"
{idp_extra}

[role.me]
idp = "console"
{role_extra}
""".encode())


def test_configuration_checks():
    cfg = _parse()
    assert cfg.idps["console"]["flow"] == "browser" and cfg.idps["console"]["aws_cli_cache"] == "read"
    for bad in ('signin_endpoint_url = "http://signin.example.com"', 'login_session = "alice"', 'flow = "device"',
                'aws_cli_cache = "write"'):
        with pytest.raises(ConfigError):
            _parse(idp_extra=bad)
    with pytest.raises(ConfigError) as e:
        _parse(role_extra='session_name = "x-y"')
    assert "has no effect without arn" in str(e.value)
    _parse(role_extra='arn = "arn:aws:iam::111111111111:role/Deploy"\nsession_name = "x-y"')
    _parse(idp_extra='signin_endpoint_url = "http://127.0.0.1:8080"\nlogin_session = "arn:aws:iam::111111111111:user/alice"')


def test_refresh_at_with_the_short_lifetime_hook():
    assert refresh_at(0, 900, 1200, 600, 660) == 240  # refreshed from 11 minutes left
    assert refresh_at(0, 3600, 1200) == 2400  # the others unchanged


@pytest.fixture
def ctx(tmp_path):
    cfg = _parse()
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "key"))
    return Context(cfg, store, ScriptedTerminal(), lock_wait=0.2)


class _Session:
    def __init__(self, inner):
        self.inner = inner

    def credentials(self):
        return self.inner.retrieve()

    def describe(self):
        return "fake"


def test_fifteen_minute_credentials_are_served_down_to_ten_minutes(ctx):
    from credproc.core.errors import NetworkError

    with freeze_time("2026-11-21 10:00:00") as clock:
        inner = CountingProvider(time.time, lifetime=900)
        p = CachedProvider(LoginProvider(_Session(inner)), ctx, "role:me", "fp", "credentials for role 'me'")
        assert p.min_remaining == 600 and p.refresh_left == 660
        first = p.retrieve()
        clock.tick(200)  # 11:40 left: a hit
        assert p.retrieve() == first and inner.calls == 1
        clock.tick(60)  # 10:40 left: refreshed
        second = p.retrieve()
        assert inner.calls == 2 and second != first
        clock.tick(280)  # 10:20 left on the second: the refresh fails, still served
        inner.fail = NetworkError("down")
        assert p.retrieve() == second
        clock.tick(30)  # 9:50 left: never served
        with pytest.raises(NetworkError):
            p.retrieve()
    # any other provider keeps the 15-minute rule
    assert CachedProvider(CountingProvider(time.time), ctx, "role:x", "fp", "x").min_remaining == 900


def test_status_uses_the_sources_floor():
    from credproc.sources import get

    source = get("login")
    assert source.min_remaining({"arn": None}) == 600
    assert source.min_remaining({"arn": "arn:aws:iam::111111111111:role/Deploy"}) is None


def test_the_browser_gets_a_one_shot_start_link():
    import urllib.error
    import urllib.request

    from credproc.core.loopback import Listener

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    listener = Listener("/oauth/callback", "st")
    listener.start()
    try:
        link = listener.start_link("https://signin.example/v1/authorize?state=st&code_challenge=abc")
        assert link.startswith(f"http://127.0.0.1:{listener.port}/start/") and "st" not in link.split("/start/")[0]
        assert "state" not in link and "challenge" not in link
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as first:
            opener.open(link, timeout=5)
        assert first.value.code == 302 and first.value.headers["Location"].startswith("https://signin.example/")
        with pytest.raises(urllib.error.HTTPError) as second:  # spent
            opener.open(link, timeout=5)
        assert second.value.code == 404
    finally:
        listener.stop()


def test_a_sign_in_made_in_another_region_is_refreshed_there(monkeypatch):
    client = _client()
    seen = []
    monkeypatch.setattr(client, "create_token", lambda key, body, token_url=None: seen.append(token_url) or {"ok": 1})
    state = {"dpop_key": DpopKey.generate().pem(), "client_id": SAME_DEVICE, "refresh_token": "ASORx"}
    client.refresh(dict(state, sign_in_region="us-west-2"))
    client.refresh(state)
    assert seen == ["https://us-west-2.signin.aws.amazon.com/v1/token", "https://eu-west-1.signin.aws.amazon.com/v1/token"]
