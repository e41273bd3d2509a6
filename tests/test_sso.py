"""Unit tests of the Identity Center client logic (credproc/sso.py) with fakes at the seams: the
botocore call (SsoClient._call), the terminal, the clock and the cache."""

import hashlib
import json
import os
import time

import pytest

from credproc import sso
from credproc.cache import Entry
from credproc.context import Context
from credproc.errors import AccessDenied, AuthenticationFailed, LoginRequired
from credproc.store import EncryptedFileCache

START_URL = "https://my-org.awsapps.com/start"


def idp(**kw):
    base = {"name": "corp-sso", "type": "sso", "start_url": START_URL, "region": "eu-west-1", "flow": "device",
            "scopes": ["sso:account:access"], "aws_cli_cache": "read", "oidc_endpoint_url": None, "portal_endpoint_url": None}
    base.update(kw)
    return base


class FakeTerminal:
    login_command = "credproc login --role prod-admin"

    def __init__(self, available=True):
        self._available = available
        self.lines = []

    def available(self):
        return self._available

    def require(self, what):
        if not self._available:
            raise LoginRequired(f"{what} is needed")

    def say(self, line):
        self.lines.append(line)

    def progress(self, text):
        import contextlib

        return contextlib.nullcontext()


class ScriptedClient(sso.SsoClient):
    """SsoClient whose botocore calls answer from a script: {operation: [response or error code, ...]}."""

    def __init__(self, script, **kw):
        self.now = 1000.0
        self.slept = []
        super().__init__(kw.pop("idp", idp()), kw.pop("terminal", FakeTerminal()), sleep=self._sleep,
                         clock=lambda: self.now, open_browser=lambda idp, url: None)
        self.script = script
        self.calls = []

    def _sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def _call(self, service, operation, **params):
        self.calls.append((operation, params))
        answer = self.script[operation].pop(0)
        return (None, answer) if isinstance(answer, str) else (answer, None)


REG = {"client_id": "c", "client_secret": "s", "expires_at": 10 ** 10, "flow": "device", "scopes": ["sso:account:access"]}
DEVICE = {"deviceCode": "d", "userCode": "ABCD-EFGH", "verificationUri": "https://device.sso/", "interval": 2,
          "verificationUriComplete": "https://device.sso/?user_code=ABCD-EFGH", "expiresIn": 600}


def test_endpoints_follow_the_region_in_every_partition_as_botocore_resolves_them():
    import boto3
    import botocore

    for region in ("eu-west-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1", "ap-southeast-2"):
        oidc, portal = sso.endpoints(region)
        for service, mine in (("sso-oidc", oidc), ("sso", portal)):
            client = boto3.client(service, region_name=region, config=botocore.config.Config(signature_version=botocore.UNSIGNED))
            seen = {}

            def grab(request, **kw):
                seen["url"] = request.url
                raise RuntimeError("stop before the network")

            client.meta.events.register("before-send", grab)
            with pytest.raises(RuntimeError):
                if service == "sso":
                    client.logout(accessToken="x")
                else:
                    client.register_client(clientName="x", clientType="public")
            assert seen["url"].startswith(mine + "/"), (region, service, seen["url"])


def test_device_flow_pending_slow_down_adds_five_seconds_then_tokens():
    c = ScriptedClient({"StartDeviceAuthorization": [DEVICE],
                        "CreateToken": ["AuthorizationPendingException", "SlowDownException", "AuthorizationPendingException",
                                        {"accessToken": "at", "expiresIn": 3600, "refreshToken": "rt"}]})
    tokens = c.device_login(REG)
    assert c.slept == [2, 2, 7, 7]
    assert tokens == {"access_token": "at", "expires_at": int(c.now) + 3600, "refresh_token": "rt"}
    assert any("ABCD-EFGH" in line for line in c.terminal.lines)
    assert c.calls[0][1]["startUrl"] == START_URL


@pytest.mark.parametrize("code, message", [("ExpiredTokenException", "expired"), ("AccessDeniedException", "denied")])
def test_device_flow_expired_and_denied(code, message):
    c = ScriptedClient({"StartDeviceAuthorization": [DEVICE], "CreateToken": [code]})
    with pytest.raises(AuthenticationFailed, match=message):
        c.device_login(REG)


def test_device_flow_gives_up_at_the_codes_expiry_even_if_the_service_never_says_so():
    c = ScriptedClient({"StartDeviceAuthorization": [dict(DEVICE, expiresIn=30)],
                        "CreateToken": ["AuthorizationPendingException"] * 100})
    with pytest.raises(AuthenticationFailed, match="expired"):
        c.device_login(REG)
    assert len(c.calls) < 20


def test_without_a_terminal_no_device_authorization_is_started():
    c = ScriptedClient({}, terminal=FakeTerminal(available=False))
    with pytest.raises(LoginRequired):
        c.device_login(REG)
    assert c.calls == []


def test_refresh_invalid_grant_is_none_and_expiration_is_epoch_milliseconds():
    c = ScriptedClient({"CreateToken": ["InvalidGrantException"],
                        "GetRoleCredentials": [{"roleCredentials": {"accessKeyId": "ASIA1", "secretAccessKey": "x",
                                                                    "sessionToken": "t", "expiration": 1900000000123}}]})
    assert c.refresh(REG, "rt") is None
    creds = c.role_credentials("at", "111111111111", "Admin")
    assert creds.expiration == 1900000000 and creds.account_id == "111111111111"
    assert creds.to_process_dict()["AccountId"] == "111111111111"


def test_portal_401_is_token_rejected_and_404_is_access_denied():
    c = ScriptedClient({"GetRoleCredentials": ["UnauthorizedException", "ResourceNotFoundException"]})
    with pytest.raises(sso.TokenRejected):
        c.role_credentials("at", "111111111111", "Admin")
    with pytest.raises(AccessDenied, match="sso roles --idp corp-sso"):
        c.role_credentials("at", "111111111111", "Admin")


def test_pagination_follows_next_token():
    c = ScriptedClient({"ListAccounts": [{"accountList": [{"accountId": "2", "accountName": "b"}], "nextToken": "n"},
                                         {"accountList": [{"accountId": "1", "accountName": "a"}]}]})
    assert c.accounts("at") == [("1", "a"), ("2", "b")]
    assert "nextToken" not in c.calls[0][1] and c.calls[1][1]["nextToken"] == "n"


def test_browser_registration_is_a_public_pkce_client_with_the_start_url_as_issuer():
    c = ScriptedClient({"RegisterClient": [{"clientId": "c", "clientSecret": "s", "clientSecretExpiresAt": 2000000000}]},
                       idp=idp(flow="browser"))
    reg = c.register("browser")
    params = c.calls[0][1]
    assert params["clientType"] == "public" and params["grantTypes"] == ["authorization_code", "refresh_token"]
    assert params["redirectUris"] == ["http://127.0.0.1/oauth/callback"] and params["issuerUrl"] == START_URL
    assert reg["expires_at"] == 2000000000 and reg["flow"] == "browser"


# -- the session: cache, lock, refresh ---------------------------------------------------------------
class FakeConfig:
    digest = "d"
    settings = {}

    def idp_fingerprint(self, name):
        return "f"


@pytest.fixture
def ctx(tmp_path):
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "key"))
    return Context(FakeConfig(), store, FakeTerminal(available=False), lock_wait=5)


def put_state(ctx, state):
    ctx.store.put("sso:corp-sso", Entry(10 ** 10, 10 ** 10, "d", "f", json.dumps(state).encode()))


def test_a_rotated_refresh_token_is_stored_and_a_short_lived_fresh_token_is_used(ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    put_state(ctx, {"registration": REG, "access_token": "old", "expires_at": 0, "refresh_token": "rt1"})
    client = ScriptedClient({"CreateToken": [{"accessToken": "new", "expiresIn": 30, "refreshToken": "rt2"}]})
    client.now = time.time()
    session = sso.SsoSession(ctx, idp(), client=client)
    assert session.access_token() == "new"  # 30 s of life, but brand new: used
    state = session.load()
    assert state["refresh_token"] == "rt2" and state["access_token"] == "new"


def test_refused_refresh_without_terminal_is_login_required_and_keeps_the_registration(ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    put_state(ctx, {"registration": REG, "access_token": "old", "expires_at": 0, "refresh_token": "rt1"})
    session = sso.SsoSession(ctx, idp(), client=ScriptedClient({"CreateToken": ["InvalidGrantException"]}))
    with pytest.raises(LoginRequired, match="sign-in has ended") as e:
        session.access_token()
    assert "credproc login --role prod-admin" in str(e.value)
    assert session.load() == {"registration": REG}


def write_cli(tmp_path, name, doc):
    d = tmp_path / ".aws" / "sso" / "cache"
    d.mkdir(parents=True, exist_ok=True)
    (d / (hashlib.sha1(name.encode()).hexdigest() + ".json")).write_text(json.dumps(doc))


@pytest.mark.parametrize("doc", [
    {"startUrl": "https://other.awsapps.com/start", "accessToken": "a", "expiresAt": "2999-01-01T00:00:00Z"},
    {"startUrl": START_URL, "accessToken": "", "expiresAt": "2999-01-01T00:00:00Z"},
    {"startUrl": START_URL, "accessToken": "a", "expiresAt": "soon"},
    {"startUrl": START_URL, "accessToken": ["a"], "expiresAt": "2999-01-01T00:00:00Z"},
    ["not", "an", "object"],
])
def test_cli_token_files_are_untrusted(tmp_path, monkeypatch, doc):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_cli(tmp_path, START_URL, doc)
    cache = sso.CliTokenCache(idp())
    assert [cache.load(p) for p in cache.candidates()] == [None]


def test_cli_token_file_named_by_the_sso_session_of_aws_config(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "config"
    config.write_text(f"[sso-session other]\nsso_start_url = https://x.awsapps.com/start\n"
                      f"[sso-session mine]\nsso_start_url = {START_URL}\nsso_region = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    write_cli(tmp_path, "mine", {"startUrl": START_URL, "accessToken": "a", "expiresAt": "2999-01-01T00:00:00+00:00",
                                 "region": "eu-west-1", "clientId": "c", "clientSecret": "s",
                                 "registrationExpiresAt": "2999-01-01T00:00:00Z", "refreshToken": "r"})
    cache = sso.CliTokenCache(idp())
    states = [cache.load(p) for p in cache.candidates()]
    assert states[0]["access_token"] == "a" and states[0]["refresh_token"] == "r" and states[1] is None
    assert sso.CliTokenCache(idp(aws_cli_cache="off")).candidates() == []


def test_share_mode_writes_0600_atomically_in_the_clis_format(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = sso.CliTokenCache(idp(aws_cli_cache="share"))
    cache.write({"access_token": "a", "expires_at": 2000000000, "refresh_token": "r", "registration": REG})
    path = cache.shared_path()
    assert os.path.basename(path) == hashlib.sha1(b"corp-sso").hexdigest() + ".json"
    assert os.stat(path).st_mode & 0o777 == 0o600
    doc = json.loads(open(path).read())
    assert doc["expiresAt"] == "2033-05-18T03:33:20Z" and doc["clientSecret"] == "s" and doc["refreshToken"] == "r"
    assert cache.load(path)["access_token"] == "a"


# -- configuration ---------------------------------------------------------------------------------
def parse(text):
    from credproc import config

    return config.parse("test.toml", text.encode())


def problems(text):
    from credproc.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        parse(text)
    return e.value.message.splitlines()[1:]


IDP = '[idp.corp-sso]\ntype = "sso"\nstart_url = "https://my-org.awsapps.com/start"\nregion = "eu-west-1"\n'


def test_config_defaults_and_role_keys():
    cfg = parse(IDP + '[role.a]\nidp = "corp-sso"\naccount_id = "111111111111"\nrole_name = "AdministratorAccess"\n')
    idp = cfg.idps["corp-sso"]
    assert (idp["flow"], idp["scopes"], idp["aws_cli_cache"]) == ("browser", ["sso:account:access"], "read")
    assert cfg.roles["a"]["account_id"] == "111111111111" and cfg.roles["a"]["role_name"] == "AdministratorAccess"
    # changing the account or role makes the cached credentials a miss
    other = parse(IDP + '[role.a]\nidp = "corp-sso"\naccount_id = "222222222222"\nrole_name = "AdministratorAccess"\n')
    assert cfg.fingerprint("a") != other.fingerprint("a")


def test_config_problems_are_reported_at_once():
    found = problems('[idp.s]\ntype = "sso"\nflow = "password"\nportal_endpoint_url = "http://example.com"\n'
                     '[role.a]\nidp = "s"\naccount_id = "1234"\narn = "arn:aws:iam::111111111111:role/x"\nregion = "eu-west-1"\n'
                     '[idp.i]\ntype = "iam"\nprofile = "p"\n[role.b]\nidp = "i"\naccount_id = "111111111111"\n'
                     '[role.c]\nsource_role = "a"\narn = "arn:aws:iam::111111111111:role/y"\nrole_name = "x"\n')
    text = "\n".join(found)
    for expected in ("idp.s.start_url: is required", "idp.s.region: is required", "idp.s.flow: must be one of",
                     "idp.s.portal_endpoint_url:", "role.a.account_id: '1234' is not a 12-digit AWS account id",
                     "role.a.arn: has no effect", "role.a.region: has no effect", "role.b.account_id: unknown key",
                     "role.c.role_name: unknown key"):
        assert expected in text, (expected, found)
