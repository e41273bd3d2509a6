"""Unit tests of the Identity Center client logic (credproc/sources/sso/protocol.py) with fakes at the seams: the
botocore call (SsoClient._call), the terminal, the clock and the cache."""

import hashlib
import json
import os
import time

import pytest

from credproc.context import Context
from credproc.core.cache import Entry
from credproc.core.errors import AccessDenied, AuthenticationFailed, LoginRequired, ServiceError
from credproc.core.store import EncryptedFileCache
from credproc.sources.sso import protocol as sso

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

    attended = browser_possible = available
    require_browser = require

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


@pytest.mark.parametrize("complete", ["file:///etc/passwd", "http://evil.example/device", "javascript:alert(1)", ["x"]])
def test_device_flow_opens_only_web_urls_and_shows_no_escape_sequences(complete):
    c = ScriptedClient({"StartDeviceAuthorization": [dict(DEVICE, verificationUriComplete=complete,
                                                          userCode="ABCD\x1b]0;owned\x07-EFGH\n")],
                        "CreateToken": [{"accessToken": "at", "expiresIn": 3600}]})
    opened = []
    c._open_browser = lambda idp, url: opened.append(url)
    c.device_login(REG)
    assert opened == [] and not any("(or open" in line for line in c.terminal.lines)
    assert "ABCD]0;owned-EFGH" in c.terminal.lines[0] and not any(ch in "".join(c.terminal.lines) for ch in "\x1b\x07\n")
    c = ScriptedClient({"StartDeviceAuthorization": [DEVICE], "CreateToken": [{"accessToken": "at", "expiresIn": 3600}]})
    c._open_browser = lambda idp, url: opened.append(url)
    c.device_login(REG)
    assert opened == [DEVICE["verificationUriComplete"]]


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
    c.now = 1900000000 - 3600
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


GOOD_RC = {"accessKeyId": "ASIA1", "secretAccessKey": "x", "sessionToken": "t", "expiration": (1000 + 3600) * 1000}


@pytest.mark.parametrize("change, why", [
    ({"expiration": 1000 + 3600}, "epoch milliseconds"),  # seconds: credentials that ended in January 1970
    ({"expiration": True}, "epoch milliseconds"),
    ({"expiration": 10 ** 30}, "epoch milliseconds"),  # was an OverflowError: "unexpected error", exit 1
    ({"expiration": 999 * 1000}, "epoch milliseconds"),  # already over
    ({"accessKeyId": {"a": 1}}, "without credentials"),  # was printed as is in the credential_process JSON
    ({"sessionToken": ["t"]}, "without credentials"),
    ({"sessionToken": None}, "without credentials"),
])
def test_role_credentials_of_the_wrong_type_or_with_an_expiration_in_seconds_are_refused(change, why):
    c = ScriptedClient({"GetRoleCredentials": [{"roleCredentials": dict(GOOD_RC, **change)}]})
    with pytest.raises(ServiceError, match=why) as e:
        c.role_credentials("at", "111111111111", "Admin")
    assert "\n" not in str(e.value)
    assert ScriptedClient({"GetRoleCredentials": [{"roleCredentials": GOOD_RC}]}).role_credentials(
        "at", "111111111111", "Admin").expiration == 1000 + 3600


@pytest.mark.parametrize("operation, page", [
    ("ListAccounts", {"accountList": [{"accountId": '111111111111"\n[idp.evil]\nx = "', "accountName": "a"}]}),
    ("ListAccounts", {"accountList": [{"accountId": 111111111111, "accountName": "a"}]}),
    ("ListAccountRoles", {"roleList": [{"roleName": 'Admin"\ncredential_process = "/tmp/evil'}]}),
    ("ListAccountRoles", {"roleList": [{"roleName": "Admin\x1b]0;pwned\x07"}]}),
    ("ListAccountRoles", {"roleList": [{"roleName": "Admin"}], "nextToken": {"not": "a string"}}),
])
def test_portal_ids_and_role_names_that_could_inject_toml_or_escapes_are_refused(operation, page):
    c = ScriptedClient({operation: [page]})
    with pytest.raises(ServiceError) as e:
        c.accounts("at") if operation == "ListAccounts" else c.roles("at", "111111111111")
    assert operation in str(e.value) and "\n" not in str(e.value) and "\x1b" not in str(e.value)


def test_account_names_from_the_portal_lose_control_characters():
    c = ScriptedClient({"ListAccounts": [{"accountList": [{"accountId": "111111111111",
                                                           "accountName": "Prod\n[idp.evil]\x1b[2J" + "x" * 500}]}]})
    ((account, name),) = c.accounts("at")
    assert account == "111111111111" and name.startswith("Prod[idp.evil][2J") and len(name) == 128


def test_pagination_follows_next_token():
    c = ScriptedClient({"ListAccounts": [{"accountList": [{"accountId": "2" * 12, "accountName": "b"}], "nextToken": "n"},
                                         {"accountList": [{"accountId": "1" * 12, "accountName": "a"}]}]})
    assert c.accounts("at") == [("1" * 12, "a"), ("2" * 12, "b")]
    assert "nextToken" not in c.calls[0][1] and c.calls[1][1]["nextToken"] == "n"


def test_browser_registration_is_a_public_pkce_client_with_the_start_url_as_issuer():
    c = ScriptedClient({"RegisterClient": [{"clientId": "c", "clientSecret": "s", "clientSecretExpiresAt": 2000000000}]},
                       idp=idp(flow="browser"))
    c.now = 2000000000 - 90 * 86400
    reg = c.register("browser")
    params = c.calls[0][1]
    assert params["clientType"] == "public" and params["grantTypes"] == ["authorization_code", "refresh_token"]
    assert params["redirectUris"] == ["http://127.0.0.1/oauth/callback"] and params["issuerUrl"] == START_URL
    assert reg["expires_at"] == 2000000000 and reg["flow"] == "browser"


@pytest.mark.parametrize("change", [{"clientSecretExpiresAt": 10 ** 20}, {"clientSecretExpiresAt": 999},
                                    {"clientSecretExpiresAt": True}, {"clientId": ["c"]}, {"clientSecret": 5}])
def test_a_registration_with_a_wrong_type_or_an_absurd_expiry_is_refused_or_bounded(change):
    good = {"clientId": "c", "clientSecret": "s", "clientSecretExpiresAt": 1000 + 90 * 86400}
    c = ScriptedClient({"RegisterClient": [dict(good, **change)]})
    if change.get("clientSecretExpiresAt") == 10 ** 20:  # was stored as is: status then died of OverflowError
        assert c.register("device")["expires_at"] == 1000 + sso.MAX_REGISTRATION_LIFE
    else:
        with pytest.raises(ServiceError, match="without a usable client"):
            c.register("device")
    assert ScriptedClient({"RegisterClient": [good]}).register("device")["expires_at"] == 1000 + 90 * 86400


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
    with pytest.raises(LoginRequired, match="sign-in at https://my-org.awsapps.com/start has ended") as e:
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


@pytest.mark.parametrize("expires_at", ["2999-01-01T00:00:00UTC", "2999-01-01T00:00:00Z", "2999-01-01T00:00:00.123456+00:00"])
def test_cli_token_files_of_aws_cli_v1_with_utc_suffix_are_read(tmp_path, monkeypatch, expires_at):
    # AWS CLI v1 / older botocore: JSONFileCache wrote strftime("%Y-%m-%dT%H:%M:%S%Z"), i.e. "...UTC"
    monkeypatch.setenv("HOME", str(tmp_path))
    write_cli(tmp_path, START_URL, {"startUrl": START_URL, "region": "eu-west-1", "accessToken": "a", "expiresAt": expires_at})
    cache = sso.CliTokenCache(idp())
    (state,) = [cache.load(p) for p in cache.candidates()]
    assert state["access_token"] == "a" and state["expires_at"] == 32472144000


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
    from credproc.core.errors import ConfigError

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


# -- hostile answers through botocore's own parser ------------------------------------------------------
@pytest.mark.parametrize("answer", [{"accountList": "not a list"}, {"accountList": [5]}, ["not", "an", "object"]])
def test_an_answer_botocore_cannot_parse_is_a_service_error_not_an_unexpected_error(answer):
    from tests.peers.sso_emulator import SsoEmulator

    with SsoEmulator("http://127.0.0.1:9") as em:  # ListAccounts needs no STS
        em.list_accounts = lambda query, headers: answer
        c = sso.SsoClient(idp(oidc_endpoint_url=em.oidc_url, portal_endpoint_url=em.portal_url), FakeTerminal())
        with pytest.raises(ServiceError, match="answered ListAccounts with a malformed response"):
            c.accounts("at")  # was botocore's AttributeError: "unexpected error", exit 1


def _shared(tmp_path, access, refresh, expires_at):
    write_cli(tmp_path, "corp-sso", {"startUrl": START_URL, "region": "eu-west-1", "accessToken": access,
                                     "expiresAt": sso._iso(expires_at), "clientId": "c", "clientSecret": "s",
                                     "registrationExpiresAt": "2999-01-01T00:00:00Z", "refreshToken": refresh})


def test_share_mode_a_rotation_within_the_same_second_still_wins(ctx, monkeypatch, tmp_path):
    # the SDK refreshed within the second of our own sign-in: same expiresAt, another refresh token
    monkeypatch.setenv("HOME", str(tmp_path))
    until = int(time.time()) + 3600
    put_state(ctx, {"registration": REG, "access_token": "ours", "expires_at": until, "refresh_token": "spent"})
    _shared(tmp_path, "theirs", "rotated", until)
    session = sso.SsoSession(ctx, idp(aws_cli_cache="share"), client=ScriptedClient({}))
    assert session.access_token() == "theirs" and session.load()["refresh_token"] == "rotated"
    _shared(tmp_path, "older", "other", until - 10)  # an older file (our write failed) is not taken
    assert session.access_token() == "theirs"


def _provider(ctx, session):
    from credproc.sources.sso.provider import SsoRoleProvider

    return SsoRoleProvider(ctx, session, {"name": "r", "account_id": "111111111111", "role_name": "Admin"})


def _role_credentials():
    return {"roleCredentials": {"accessKeyId": "ASIA1", "secretAccessKey": "x", "sessionToken": "t",
                                "expiration": (int(time.time()) + 3600) * 1000}}


def test_share_mode_an_adopted_token_the_portal_refuses_is_refreshed_with_their_refresh_token(ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    until = int(time.time()) + 3600
    put_state(ctx, {"registration": REG, "access_token": "ours", "expires_at": until - 60, "refresh_token": "spent"})
    _shared(tmp_path, "theirs", "rotated", until)
    client = ScriptedClient({"GetRoleCredentials": ["UnauthorizedException", _role_credentials()],
                             "CreateToken": [{"accessToken": "fresh", "expiresIn": 3600, "refreshToken": "rotated2"}]})
    client.now = time.time()
    session = sso.SsoSession(ctx, idp(aws_cli_cache="share"), client=client)
    assert _provider(ctx, session).retrieve().access_key_id == "ASIA1"
    assert [p["accessToken"] for op, p in client.calls if op == "GetRoleCredentials"] == ["theirs", "fresh"]
    assert [p["refreshToken"] for op, p in client.calls if op == "CreateToken"] == ["rotated"]  # not the spent one
    assert session.load()["refresh_token"] == "rotated2"


def test_a_refused_token_then_a_refused_cli_token_still_ends_in_a_refresh_not_exit_4(ctx, monkeypatch, tmp_path):
    # read mode: ours is refused (401), the one `aws sso login` left is newer and refused too; our
    # refresh token still works. Two tries used to end in "rejects the sign-in" (exit 4).
    monkeypatch.setenv("HOME", str(tmp_path))
    until = int(time.time()) + 3600
    put_state(ctx, {"registration": REG, "access_token": "ours", "expires_at": until - 60, "refresh_token": "ours-rt"})
    write_cli(tmp_path, START_URL, {"startUrl": START_URL, "region": "eu-west-1", "accessToken": "cli",
                                    "expiresAt": sso._iso(until)})
    client = ScriptedClient({"GetRoleCredentials": ["UnauthorizedException", "UnauthorizedException", _role_credentials()],
                             "CreateToken": [{"accessToken": "fresh", "expiresIn": 3600, "refreshToken": "rt2"}]})
    client.now = time.time()
    session = sso.SsoSession(ctx, idp(), client=client)
    assert _provider(ctx, session).retrieve().access_key_id == "ASIA1"
    assert [p["accessToken"] for op, p in client.calls if op == "GetRoleCredentials"] == ["ours", "cli", "fresh"]
    assert [p["refreshToken"] for op, p in client.calls if op == "CreateToken"] == ["ours-rt"]


def test_an_older_shared_file_is_not_taken_after_our_token_is_refused(ctx, monkeypatch, tmp_path):
    # our write of the shared file failed, so it is older than ours: a 401 on our access token
    # must refresh with OUR refresh token, not adopt theirs (spent) and end in exit 4
    monkeypatch.setenv("HOME", str(tmp_path))
    until = int(time.time()) + 3600
    put_state(ctx, {"registration": REG, "access_token": "ours", "expires_at": until, "refresh_token": "ours-rt"})
    _shared(tmp_path, "old", "spent", until - 600)
    client = ScriptedClient({"GetRoleCredentials": ["UnauthorizedException", _role_credentials()],
                             "CreateToken": [{"accessToken": "fresh", "expiresIn": 3600, "refreshToken": "rt2"}]})
    client.now = time.time()
    session = sso.SsoSession(ctx, idp(aws_cli_cache="share"), client=client)
    assert _provider(ctx, session).retrieve().access_key_id == "ASIA1"
    assert [p["refreshToken"] for op, p in client.calls if op == "CreateToken"] == ["ours-rt"]


def test_sso_roles_survives_a_token_refused_between_list_accounts_and_list_account_roles(ctx, monkeypatch, tmp_path):
    # the access token ends mid-listing (an organisation with many accounts): was TokenRejected
    # escaping as "unexpected error", exit 1; now refreshed and listed again
    from credproc.commands.sso import _blocks

    monkeypatch.setenv("HOME", str(tmp_path))
    put_state(ctx, {"registration": REG, "access_token": "a1", "expires_at": int(time.time()) + 600, "refresh_token": "rt"})
    page = {"accountList": [{"accountId": "111111111111", "accountName": "Prod"}]}
    client = ScriptedClient({"ListAccounts": [page, page], "ListAccountRoles": ["UnauthorizedException", {"roleList": [{"roleName": "Admin"}]}],
                             "CreateToken": [{"accessToken": "a2", "expiresIn": 3600, "refreshToken": "rt2"}]})
    client.now = time.time()
    session = sso.SsoSession(ctx, idp(), client=client)
    blocks = session.with_token(lambda token: _blocks(client, token, "corp-sso"))
    assert blocks == ['# Prod (111111111111)\n[role.prod-admin]\nidp = "corp-sso"\naccount_id = "111111111111"\nrole_name = "Admin"\n']
    assert [p["accessToken"] for op, p in client.calls if op == "ListAccountRoles"] == ["a1", "a2"]


def test_a_browser_sign_in_error_reaches_the_message_as_one_printable_line():
    import threading
    import urllib.error
    import urllib.parse
    import urllib.request

    def browser(idp_, url):  # the authorize server redirects back with an error (and the right state)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        back = q["redirect_uri"] + "?" + urllib.parse.urlencode({"error": "access_denied\n\x1b[31mforged line", "state": q["state"]})

        def go():
            try:
                urllib.request.urlopen(back, timeout=5).read()
            except urllib.error.URLError:
                pass
        threading.Thread(target=go, daemon=True).start()

    c = ScriptedClient({}, idp=idp(flow="browser"))
    c._open_browser = browser
    with pytest.raises(AuthenticationFailed) as e:
        c.browser_login(dict(REG, flow="browser"), wait=10)
    assert str(e.value) == "the sign-in failed: access_denied[31mforged line"


def test_share_mode_a_refresh_race_lost_to_an_sdk_takes_the_sdks_copy_instead_of_a_new_sign_in(ctx, monkeypatch, tmp_path):
    # credproc and an SDK refresh the shared sign-in at the same moment; the SDK's CreateToken wins
    # the rotation, ours is refused (invalid_grant). The SDK's copy is good: no exit 4, no sign-in.
    monkeypatch.setenv("HOME", str(tmp_path))
    until = int(time.time()) + 3600
    put_state(ctx, {"registration": REG, "access_token": "old", "expires_at": int(time.time()) - 10, "refresh_token": "r1"})
    client = ScriptedClient({})
    client.now = time.time()

    def refresh(reg, refresh_token):
        assert refresh_token == "r1"
        _shared(tmp_path, "sdk-access", "r2-from-sdk", until)  # the SDK's write lands meanwhile
        return None  # invalid_grant: r1 was spent by the SDK

    client.refresh = refresh
    session = sso.SsoSession(ctx, idp(aws_cli_cache="share"), client=client)
    assert session.access_token() == "sdk-access"
    assert session.load()["refresh_token"] == "r2-from-sdk"


def test_item18_share_mode_writes_the_registrations_expiry_as_registrationexpiresat(tmp_path, monkeypatch):
    """registrationExpiresAt in the CLI's token file is the client registration's expiry, not the
    access token's (the CLI would re-register, or use an expired client)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = sso.CliTokenCache(idp(aws_cli_cache="share"))
    reg = dict(REG, expires_at=2100000000)
    cache.write({"access_token": "a", "expires_at": 2000000000, "refresh_token": "r", "registration": reg})
    doc = json.loads(open(cache.shared_path()).read())
    assert doc["registrationExpiresAt"] == sso._iso(2100000000) and doc["expiresAt"] == sso._iso(2000000000)
    state = cache.load(cache.shared_path())
    assert state["registration"]["expires_at"] == 2100000000 and state["expires_at"] == 2000000000
