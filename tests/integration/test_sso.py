"""IAM Identity Center end to end: the real credproc executable against the sso-oidc/sso emulator
(tests/peers/sso_emulator.py, proved against boto3 in tests/test_sso_emulator.py), which mints
real moto credentials; the test plays the user in the browser."""

import hashlib
import json
import os
import subprocess
import threading
import time
import urllib.request

import pytest

from credproc.store import EncryptedFileCache
from tests.peers.sso_emulator import DEVICE_GRANT, SsoEmulator
from tests.pty_helper import PtyProcess
from tests.sandbox import caller_arn, credproc_exe

START_URL = "https://my-org.awsapps.com/start"


@pytest.fixture
def em(moto_server):
    with SsoEmulator(moto_server.url) as emulator:
        yield emulator


def sso_config(em, flow="device", cli_cache="read", account='"111111111111"', role_name='"AdministratorAccess"', extra=""):
    lines = [f"account_id = {account}" if account else "", f"role_name = {role_name}" if role_name else ""]
    return f"""
[idp.corp-sso]
type = "sso"
start_url = "{START_URL}"
region = "eu-west-1"
flow = "{flow}"
aws_cli_cache = "{cli_cache}"
oidc_endpoint_url = "{em.oidc_url}"
portal_endpoint_url = "{em.portal_url}"

[role.prod-admin]
idp = "corp-sso"
{lines[0]}
{lines[1]}

[role.sandbox-dev]
idp = "corp-sso"
account_id = "222222222222"
role_name = "Developer"
{extra}
"""


def screen_between(p, start, end):
    p.expect(start)
    p.expect(end)
    return p.screen.decode().split(start, 1)[1].split(end, 1)[0].strip()


def approve_device_code(p):
    """Play the user: open verificationUriComplete (the emulator's approval page)."""
    url = screen_between(p, "(or open ", ")")
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200


def device_login(sandbox, role="prod-admin", *args):
    p = PtyProcess([credproc_exe(), "login", "--role", role, *args], sandbox.env)
    approve_device_code(p)
    code, out, err = p.finish(timeout=60)
    assert code == 0, (err, p.screen)
    return out.decode(), p


def session_state(sandbox):
    entry = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path).get("sso:corp-sso")
    return json.loads(entry.body) if entry else None


def drop_role_credentials(sandbox, *roles):
    store = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path)
    for role in roles:
        store.delete(f"role:{role}")


def test_device_flow_then_the_role_through_credproc_and_the_aws_cli(sandbox, em, moto_server):
    from tests.peers.consumers import aws_cli_caller_arn

    sandbox.write_config(sso_config(em))
    out, p = device_login(sandbox)
    assert "To sign in to https://my-org.awsapps.com/start, open" in p.screen.decode()
    assert out.startswith("role prod-admin (account 111111111111): credentials valid until")
    # the secrets are nowhere in the output: not the user code's tokens, not the access token
    state = session_state(sandbox)
    assert state["access_token"] and state["refresh_token"] and state["registration"]["client_id"]
    assert state["access_token"].encode() not in p.screen and state["refresh_token"] not in out
    sandbox.add_aws_profile("admin", "prod-admin", moto_server.url)
    assert aws_cli_caller_arn(sandbox.env, "admin").startswith("arn:aws:sts::111111111111:assumed-role/AdministratorAccess/")
    # a second role over the same sign-in: no new sign-in, no terminal needed
    doc = sandbox.credentials("sandbox-dev")
    assert doc["AccountId"] == "222222222222" and doc["Expiration"].endswith("Z")
    assert caller_arn(doc, moto_server.url).startswith("arn:aws:sts::222222222222:assumed-role/Developer/")
    assert em.count("RegisterClient") == 1 and em.count("StartDeviceAuthorization") == 1
    assert em.count("GetRoleCredentials") == 2


def test_without_a_terminal_and_without_a_sign_in_exit_4_at_once(sandbox, em):
    sandbox.write_config(sso_config(em))
    started = time.monotonic()
    r = sandbox.run("--role", "prod-admin")
    assert r.returncode == 4, r.stderr
    assert time.monotonic() - started < 10
    assert b"login --role prod-admin" in r.stderr and r.stdout == b""
    assert em.count("RegisterClient") == 0 and em.count("StartDeviceAuthorization") == 0
