import pytest

from credproc import config
from credproc.core import sts
from credproc.core.errors import ConfigError

GOOD = b"""
[settings]
region = "eu-west-1"
sts_endpoint_url = "http://127.0.0.1:5000"

[idp.corp]
type = "iam"
profile = "corp-user"
mfa_serial = "arn:aws:iam::123456789012:mfa/alice"
mfa_command = "ykman oath accounts code -s aws"
session_duration = 43200

[role.admin]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"
duration = 3600
session_name = "alice"
external_id = "xyz"
tags = { team = "platform" }

[role.audit]
source_role = "admin"
arn = "arn:aws:iam::222222222222:role/Audit"
"""


def test_the_documented_example_parses():
    cfg = config.parse("c.toml", GOOD)
    assert cfg.roles["admin"]["arn"] == "arn:aws:iam::111111111111:role/Admin"
    assert [r["name"] for r in cfg.chain_of("audit")] == ["audit", "admin"]
    assert cfg.idp_of("audit")["profile"] == "corp-user"
    assert cfg.region_for(cfg.roles["audit"]) == "eu-west-1"
    assert cfg.settings["refresh_margin"] == 20 * 60


def test_every_problem_is_reported_at_once_with_file_and_key():
    bad = b"""
[settings]
regoin = "x"
[idp.corp]
type = "iam"
[role.admin]
idp = "nope"
duration = "long"
arn = "admin"
[role.loop1]
source_role = "loop2"
arn = "arn:aws:iam::111111111111:role/A"
[role.loop2]
source_role = "loop1"
arn = "arn:aws:iam::111111111111:role/B"
"""
    with pytest.raises(ConfigError) as e:
        config.parse("/home/me/credproc.toml", bad)
    msg = str(e.value)
    assert msg.startswith("/home/me/credproc.toml: ")
    for fragment in ("settings.regoin: unknown key", "idp.corp.profile: is required", "role.admin.idp: no [idp.nope]",
                     "role.admin.duration: must be an integer", "role.admin.arn: 'admin' is not an IAM role ARN",
                     "role chain loops"):
        assert fragment in msg


def test_invalid_toml_names_the_file():
    with pytest.raises(ConfigError, match=r"^c.toml: invalid TOML"):
        config.parse("c.toml", b"[role.admin\n")


@pytest.mark.parametrize("duration, ok", [(900, False), (1200, True), (43200, True), (43201, False)])
def test_duration_must_leave_room_beyond_the_sdks_15_minute_window(duration, ok):
    text = GOOD.replace(b"duration = 3600", f"duration = {duration}".encode())
    if ok:
        config.parse("c.toml", text)
    else:
        with pytest.raises(ConfigError, match="role.admin.duration"):
            config.parse("c.toml", text)


def test_chained_roles_are_capped_at_one_hour():
    text = GOOD + b"duration = 7200\n"
    with pytest.raises(ConfigError, match=r"role.audit.duration: must be between 1200 and 3600"):
        config.parse("c.toml", text)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no configuration file at"):
        config.load(str(tmp_path / "nope.toml"))


def test_unknown_role_lists_the_configured_ones():
    cfg = config.parse("c.toml", GOOD)
    with pytest.raises(ConfigError, match=r"no role named 'dev' \(configured roles: admin, audit\)"):
        cfg.role("dev")


def test_fingerprint_changes_with_anything_that_shapes_the_credentials():
    a = config.parse("c.toml", GOOD)
    b = config.parse("c.toml", GOOD.replace(b"role/Admin", b"role/Other"))
    c = config.parse("c.toml", GOOD + b"\n# a comment changes the bytes, not the meaning\n")
    assert a.fingerprint("audit") != b.fingerprint("audit")  # the source role changed
    assert a.fingerprint("admin") == c.fingerprint("admin")
    assert a.digest != c.digest


@pytest.mark.parametrize("raw, expected", [("alice", "alice"), ("alice smith@example.com", "alice-smith@example.com"),
                                           ("a", "credproc"), ("", "credproc"), ("x" * 80, "x" * 64),
                                           ("josé", "jos")])
def test_session_names_are_always_valid_for_sts(raw, expected):
    name = sts.sanitize_session_name(raw)
    assert name == expected
    assert config.SESSION_NAME_RE.match(name)


def test_keys_a_cas_or_oidc_role_would_ignore_are_errors():
    text = b"""
[idp.campus]
type = "cas"
url = "https://sso.example.edu/cas"
[idp.okta]
type = "oidc"
issuer = "https://example.okta.com"
client_id = "0oa1"
[role.a]
idp = "campus"
external_id = "x"
region = "eu-west-1"
[role.b]
idp = "okta"
arn = "arn:aws:iam::111111111111:role/dev"
tags = { team = "x" }
region = "eu-west-1"
"""
    with pytest.raises(ConfigError) as e:
        config.parse("c.toml", text)
    msg = str(e.value)
    assert "role.a.external_id: has no effect for a role over a cas identity provider" in msg
    assert "role.a.region: has no effect" in msg and "role.b.tags: has no effect" in msg
    assert "role.b.region" not in msg  # used for AssumeRoleWithWebIdentity


@pytest.mark.parametrize("url, ok", [("https://sts.eu-west-1.amazonaws.com", True), ("http://127.0.0.1:5000", True),
                                     ("http://localhost:5000", True), ("http://sts.example.com", False)])
def test_plain_http_endpoints_only_to_loopback(url, ok):
    text = GOOD.replace(b"http://127.0.0.1:5000", url.encode())
    if ok:
        config.parse("c.toml", text)
    else:
        with pytest.raises(ConfigError, match="settings.sts_endpoint_url: .* must be an https:// URL"):
            config.parse("c.toml", text)


def test_an_oidc_role_needs_an_arn_or_a_roles_claim():
    text = b"""
[idp.okta]
type = "oidc"
issuer = "https://example.okta.com"
client_id = "0oa1"
scopes = ["email"]
[role.dev]
idp = "okta"
"""
    with pytest.raises(ConfigError) as e:
        config.parse("c.toml", text)
    assert "role.dev.arn: is required: [idp.okta] has no roles_claim" in str(e.value)
    assert 'idp.okta.scopes: must include "openid"' in str(e.value)


@pytest.mark.parametrize("fragment, where", [
    (b'[settings]\nregion = "eu-west-1\\n"\n', "settings.region"),
    (b'[settings]\nfederation_url = "https://[unclosed/federation"\n', "settings.federation_url"),
    (b'[role.x]\nidp = "corp"\nsession_name = "alice\\n"\n', "role.x.session_name"),
])
def test_values_with_a_trailing_newline_or_a_broken_url_are_config_errors(fragment, where):
    text = b'[idp.corp]\ntype = "iam"\nprofile = "p"\n' + fragment
    with pytest.raises(ConfigError, match=where):
        config.parse("c.toml", text)


def test_missing_default_file_names_init_and_the_example(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load(str(tmp_path / "nope.toml"))
    assert "credproc init" in e.value.hint and "examples/config.toml" in e.value.hint


def test_examples_config_toml_is_valid_with_and_without_its_commented_blocks():
    """examples/config.toml parses as shipped (the iam block active), and with every commented block
    uncommented: one block per registered source, each a valid idp and role."""
    import re
    from pathlib import Path

    from credproc import sources

    text = (Path(__file__).resolve().parent.parent / "examples" / "config.toml").read_text()
    config.parse("examples/config.toml", text.encode())
    everything = re.sub(r"^# (\[|[a-z_]+ = )", r"\1", text, flags=re.M)
    cfg = config.parse("examples/config.toml (uncommented)", everything.encode())
    assert {idp["type"] for idp in cfg.idps.values()} == set(sources.names())
    assert all(any(r.get("idp") == name for r in cfg.roles.values()) for name in cfg.idps)
