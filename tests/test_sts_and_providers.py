import datetime as dt

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from credproc import config
from credproc.chain import build
from credproc.context import Context
from credproc.core import sts
from credproc.core.credentials import Credentials
from credproc.core.errors import AccessDenied, AuthenticationFailed, ConfigError, LoginRequired, NetworkError
from credproc.core.store import EncryptedFileCache
from credproc.sources.assume_role import AssumeRoleProvider
from credproc.sources.cached import CachedProvider
from credproc.sources.iam.session_token import SessionTokenProvider
from credproc.sources.iam.static_keys import StaticKeysProvider
from tests.fakes import ScriptedTerminal

NOW = dt.datetime(2026, 11, 21, 10, 0, 0, tzinfo=dt.timezone.utc)


def sts_response(lifetime=3600, date=NOW, arn=None):
    r = {"Credentials": {"AccessKeyId": "ASIAFAKEFAKEFAKE", "SecretAccessKey": "s", "SessionToken": "t",
                         "Expiration": date + dt.timedelta(seconds=lifetime)},
         "ResponseMetadata": {"HTTPHeaders": {"date": date.strftime("%a, %d %b %Y %H:%M:%S GMT")}}}
    if arn:
        r["AssumedRoleUser"] = {"Arn": arn}
    return r


def client_error(code, message="", op="AssumeRole"):
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


class FakeSts:
    """Stands in for a botocore STS client."""

    class meta:
        endpoint_url = "https://sts.fake"

    def __init__(self, results):
        self.results = list(results)
        self.calls = []

    def _next(self, op, params):
        self.calls.append((op, params))
        r = self.results.pop(0)
        if isinstance(r, Exception):
            raise r
        return r

    def get_session_token(self, **p):
        return self._next("GetSessionToken", p)

    def assume_role(self, **p):
        return self._next("AssumeRole", p)

    def get_caller_identity(self):
        return {"Arn": "arn:aws:iam::123456789012:user/alice"}


def test_a_local_clock_behind_sts_shortens_the_expiry():
    sent_at = NOW.timestamp() - 300  # our clock is 5 minutes behind STS
    creds = sts.credentials_from_response(sts_response(), sent_at)
    assert creds.expiration == int(NOW.timestamp()) + 3600 - 300


def test_a_local_clock_ahead_keeps_stss_expiry():
    creds = sts.credentials_from_response(sts_response(), NOW.timestamp() + 300)
    assert creds.expiration == int(NOW.timestamp()) + 3600


def test_account_id_comes_from_the_assumed_role_arn():
    creds = sts.credentials_from_response(sts_response(arn="arn:aws:sts::222222222222:assumed-role/R/s"), NOW.timestamp())
    assert creds.account_id == "222222222222"


@pytest.mark.parametrize("code, message, cls, fragment", [
    ("InvalidClientTokenId", "The security token included in the request is invalid.", AuthenticationFailed, "does not recognise"),
    ("SignatureDoesNotMatch", "", AuthenticationFailed, "secret access key of profile p"),
    ("ExpiredToken", "The security token included in the request is expired", AuthenticationFailed, "have expired"),
    ("AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass code.", AuthenticationFailed, "MFA code"),
    ("AccessDenied", "User x is not authorized", AccessDenied, "is not allowed to assume arn:aws:iam::1:role/R"),
])
def test_sts_errors_become_user_messages(code, message, cls, fragment):
    fake = FakeSts([client_error(code, message)])
    with pytest.raises(cls) as e:
        sts.call(fake, "AssumeRole", "profile p", RoleArn="arn:aws:iam::1:role/R")
    assert fragment in str(e.value)


def test_unreachable_sts_is_a_network_error():
    fake = FakeSts([EndpointConnectionError(endpoint_url="https://sts.fake")])
    with pytest.raises(NetworkError, match="cannot reach STS at https://sts.fake"):
        sts.call(fake, "AssumeRole", "profile p", RoleArn="x")


def test_sts_clients_ignore_the_callers_aws_profile(monkeypatch, tmp_path):
    """AWS_PROFILE may name the profile whose credential_process is credproc, or none at all."""
    monkeypatch.setenv("AWS_PROFILE", "does-not-exist")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    sts._session = None
    c = sts.client("eu-west-1", None, Credentials("AKIA", "s"))
    assert c.meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"


class Keys:
    def describe(self):
        return "keys"

    def retrieve(self):
        return Credentials("AKIAIOSFODNN7EXAMPLE", "secret")


def session_provider(monkeypatch, results, terminal, mfa_command=None):
    fake = FakeSts(results)
    monkeypatch.setattr(sts, "client", lambda *a, **k: fake)
    idp = {"name": "corp", "profile": "p", "mfa_serial": "arn:aws:iam::123456789012:mfa/alice",
           "mfa_command": mfa_command, "session_duration": 43200}
    return SessionTokenProvider(Keys(), idp, "us-east-1", None, terminal), fake


def test_mfa_code_is_asked_on_the_terminal_and_sent(monkeypatch):
    term = ScriptedTerminal(["12345", "123456"])
    p, fake = session_provider(monkeypatch, [sts_response()], term)
    p.retrieve()
    assert fake.calls[0][1]["TokenCode"] == "123456"
    assert fake.calls[0][1]["SerialNumber"] == "arn:aws:iam::123456789012:mfa/alice"
    assert term.said == ["An MFA code is 6 digits."]


def test_a_rejected_mfa_code_is_asked_again(monkeypatch):
    term = ScriptedTerminal(["111111", "222222"])
    bad = client_error("AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass code.")
    p, fake = session_provider(monkeypatch, [bad, sts_response()], term)
    p.retrieve()
    assert [c[1]["TokenCode"] for c in fake.calls] == ["111111", "222222"]


def test_without_a_terminal_the_mfa_prompt_says_what_to_run(monkeypatch):
    p, fake = session_provider(monkeypatch, [sts_response()], ScriptedTerminal(None))
    with pytest.raises(LoginRequired, match="run in a terminal: credproc login --role admin"):
        p.retrieve()
    assert fake.calls == []


def test_mfa_command_supplies_the_code(monkeypatch):
    p, fake = session_provider(monkeypatch, [sts_response()], ScriptedTerminal(None), mfa_command="echo 654321")
    p.retrieve()
    assert fake.calls[0][1]["TokenCode"] == "654321"


def test_access_denied_names_the_role_and_the_caller(monkeypatch):
    fake = FakeSts([client_error("AccessDenied", "not authorized")])
    monkeypatch.setattr(sts, "client", lambda *a, **k: fake)
    role = {"arn": "arn:aws:iam::111111111111:role/Admin", "duration": 3600}
    p = AssumeRoleProvider(Keys(), role, "alice", "us-east-1", None, "profile corp-user")
    with pytest.raises(AccessDenied) as e:
        p.retrieve()
    assert str(e.value).startswith("arn:aws:iam::123456789012:user/alice (from profile corp-user (AKIA…MPLE)) "
                                   "is not allowed to assume arn:aws:iam::111111111111:role/Admin")


def test_assume_role_sends_the_optional_parameters():
    role = {"arn": "arn:aws:iam::1:role/R", "duration": 1800, "external_id": "ext", "source_identity": "alice",
            "tags": {"b": "2", "a": "1"}, "transitive_tag_keys": ["a"], "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}
    p = AssumeRoleProvider(Keys(), role, "sess", "us-east-1", None, "x").params()
    assert p == {"RoleArn": "arn:aws:iam::1:role/R", "RoleSessionName": "sess", "DurationSeconds": 1800, "ExternalId": "ext",
                 "SourceIdentity": "alice", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
                 "TransitiveTagKeys": ["a"], "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]}


@pytest.mark.parametrize("profile_text", [
    "[profile corp-user]\ncredential_process = /usr/bin/credproc --role admin\n",
    "[profile corp-user]\nrole_arn = arn:aws:iam::1:role/R\nsource_profile = x\n",
    "[profile corp-user]\nsso_session = corp\n",
])
def test_a_source_profile_that_is_not_static_keys_is_refused(tmp_path, monkeypatch, profile_text):
    (tmp_path / "config").write_text(profile_text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(ConfigError, match="not static keys"):
        StaticKeysProvider("corp-user", "corp").retrieve()


def test_static_keys_are_read_from_the_credentials_file(tmp_path, monkeypatch):
    (tmp_path / "credentials").write_text("[corp-user]\naws_access_key_id = AKIAX\naws_secret_access_key = sec\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    assert StaticKeysProvider("corp-user", "corp").retrieve() == Credentials("AKIAX", "sec")
    with pytest.raises(ConfigError, match="aws configure --profile other"):
        StaticKeysProvider("other", "corp").retrieve()


CHAIN_CFG = b"""
[idp.mfa]
type = "iam"
profile = "p"
mfa_serial = "arn:aws:iam::123456789012:mfa/alice"
[idp.plain]
type = "iam"
profile = "p"
[role.admin]
idp = "mfa"
arn = "arn:aws:iam::111111111111:role/Admin"
[role.session]
idp = "mfa"
[role.direct]
idp = "plain"
arn = "arn:aws:iam::111111111111:role/Direct"
[role.audit]
source_role = "admin"
arn = "arn:aws:iam::222222222222:role/Audit"
"""


def chain_types(provider):
    out = []
    while provider is not None:
        out.append(type(provider).__name__ + (f"[{provider.identity}]" if isinstance(provider, CachedProvider) else ""))
        provider = getattr(provider, "inner", None) or getattr(provider, "source", None)
    return out


def test_the_factory_builds_the_documented_chains(tmp_path):
    cfg = config.parse("c.toml", CHAIN_CFG)
    ctx = Context(cfg, EncryptedFileCache(str(tmp_path), str(tmp_path / "k")), ScriptedTerminal())
    assert chain_types(build(ctx, "admin")) == [
        "CachedProvider[role:admin]", "AssumeRoleProvider", "CachedProvider[idp:mfa]", "SessionTokenProvider",
        "StaticKeysProvider"]
    assert chain_types(build(ctx, "session")) == [
        "CachedProvider[role:session]", "CachedProvider[idp:mfa]", "SessionTokenProvider", "StaticKeysProvider"]
    assert chain_types(build(ctx, "direct")) == ["CachedProvider[role:direct]", "AssumeRoleProvider", "StaticKeysProvider"]
    assert chain_types(build(ctx, "audit")) == [
        "CachedProvider[role:audit]", "AssumeRoleProvider", "CachedProvider[role:admin]", "AssumeRoleProvider",
        "CachedProvider[idp:mfa]", "SessionTokenProvider", "StaticKeysProvider"]
