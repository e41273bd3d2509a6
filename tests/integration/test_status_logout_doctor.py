"""status, logout and doctor against the real peers: moto STS (through the counting proxy), the
OIDC provider (npm oidc-provider) and the CAS emulator, running the real credproc executable."""

import json
import os
import re
import threading
import time

from tests.integration.conftest import ROLE_DEV
from tests.integration.test_cas import PASSWORD, ROLE_A
from tests.integration.test_iam_moto import iam_config
from tests.integration.test_oidc import device_login, oidc_config, session_state
from tests.peers.cas_emulator import CasEmulator
from tests.sandbox import STATIC_KEY_ID, STATIC_SECRET

ENTRY = re.compile(r"^[0-9a-f]{40}$")


def status(sandbox):
    r = sandbox.run("status", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    return {x["role"]: x for x in doc["roles"]}, {x["identity"]: x for x in doc["sessions"]}


def entries(sandbox):
    return [n for n in sandbox.cache_files() if ENTRY.match(n)]


def test_status_after_a_role_call_shows_the_role_and_the_mfa_session(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    doc = sandbox.credentials("admin")
    sts.clear()
    before = {n: os.stat(os.path.join(sandbox.cache_dir, n)).st_mtime_ns for n in os.listdir(sandbox.cache_dir)}
    roles, sessions = status(sandbox)
    assert roles["admin"]["state"] == "valid" and roles["admin"]["account"] == "111111111111"
    assert 50 * 60 < roles["admin"]["seconds_left"] <= 3600
    assert roles["readonly"]["state"] == "none" and roles["audit"]["state"] == "none"
    assert sessions["idp:corp"]["state"] == "valid" and sessions["idp:corp"]["kind"] == "mfa session"
    table = sandbox.run("status")
    assert table.returncode == 0 and table.stderr == b""
    row = next(line for line in table.stdout.decode().splitlines() if line.startswith("admin "))
    assert row.split()[1:3] == ["corp", "valid"] and row.split()[-1] == "111111111111"
    assert sts.actions == []  # read-only: no refresh
    for secret in (doc["AccessKeyId"], doc["SecretAccessKey"], doc["SessionToken"], STATIC_KEY_ID, STATIC_SECRET):
        assert secret.encode() not in table.stdout
    after = {n: os.stat(os.path.join(sandbox.cache_dir, n)).st_mtime_ns for n in os.listdir(sandbox.cache_dir)}
    assert after == before  # status wrote nothing: no entry, lock or temp file created or touched


def test_logout_role_then_the_next_call_authenticates_again(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    sandbox.credentials("admin")
    sandbox.credentials("readonly")
    r = sandbox.run("logout", "--role", "admin")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "removed credentials for role admin\n" in out and "removed the MFA session of idp corp\n" in out
    assert "other roles over idp corp keep their cached credentials" in out and "readonly" in out
    roles, sessions = status(sandbox)
    assert roles["admin"]["state"] == "none" and sessions["idp:corp"]["state"] == "none"
    assert roles["readonly"]["state"] == "valid"
    sts.clear()
    sandbox.credentials("admin")
    assert sts.actions == ["GetSessionToken", "AssumeRole"] and mfa_counter[1]() == 2
    # nothing left to remove for an unknown role: a config error naming the roles
    r = sandbox.run("logout", "--role", "nosuch")
    assert r.returncode == 3 and b"configured roles" in r.stderr


def test_logout_all_revokes_the_oidc_refresh_token(sandbox, op, sts):
    import requests

    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url))
    device_login(sandbox, op)
    token = session_state(sandbox)["refresh_token"]
    _, sessions = status(sandbox)
    assert sessions["oidc:corp"]["state"] == "valid" and sessions["oidc:corp"]["refresh_token"] is True
    op.reset_stats()
    r = sandbox.run("logout", "--all")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert f"revoked and removed the sign-in at {op.issuer}\n" in out
    assert "removed credentials for role dev\n" in out
    assert token not in out + r.stderr.decode()
    assert op.stats()["revocation"] == 1
    refused = requests.post(op.token_endpoint, data={"grant_type": "refresh_token", "refresh_token": token,
                                                     "client_id": op.client_id}, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert entries(sandbox) == [] and os.path.exists(sandbox.key_path)
    roles, sessions = status(sandbox)
    assert roles["dev"]["state"] == "none" and sessions["oidc:corp"]["state"] == "none"
    r = sandbox.run("--role", "dev")  # signed out, and no terminal to sign in again
    assert r.returncode == 4


def test_logout_warns_but_succeeds_when_the_idp_is_unreachable(sandbox, op, sts):
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url))
    device_login(sandbox, op)
    op.stop()  # logout still knows the revocation endpoint (cached discovery document); the POST fails
    r = sandbox.run("logout", "--role", "dev")
    assert r.returncode == 0
    assert f"removed the sign-in at {op.issuer} (not revoked" in r.stdout.decode()
    assert b"warning: could not revoke the refresh token" in r.stderr
    assert entries(sandbox) == []


def test_logout_all_while_ten_processes_read_the_cache(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    sandbox.credentials("admin")
    stop = threading.Event()
    results = []
    lock = threading.Lock()

    def reader():
        while not stop.is_set():
            r = sandbox.run("--role", "admin", timeout=60)
            try:
                doc = json.loads(r.stdout)
                good = doc["Version"] == 1 and bool(doc["AccessKeyId"])
            except (ValueError, KeyError, TypeError):
                good = False
            with lock:
                results.append((r.returncode, good, r.stderr.decode(errors="replace")[-300:]))

    threads = [threading.Thread(target=reader) for _ in range(10)]
    for t in threads:
        t.start()
    logouts = []
    try:
        deadline = time.monotonic() + 60
        while len(results) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(4):
            logouts.append(sandbox.run("logout", "--all", timeout=60))
            time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join(90)
    assert [r.returncode for r in logouts] == [0] * 4, [r.stderr for r in logouts]
    assert all(r.stdout for r in logouts)
    bad = [x for x in results if x[0] != 0 or not x[1]]
    assert not bad, bad[:3]
    assert len(results) >= 20
    assert mfa_counter[1]() >= 2  # at least one logout forced a new MFA session


def _all_peers_config(sts_url, cas_url, op, extra_settings=""):
    return f"""
[settings]
sts_endpoint_url = "{sts_url}"
{extra_settings}
[idp.corp]
type = "iam"
profile = "corp-user"

[idp.campus]
type = "cas"
url = "{cas_url}"
username = "alice"
mfa = "none"

[idp.sso]
type = "oidc"
issuer = "{op.issuer}"
client_id = "{op.client_id}"

[role.admin]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"

[role.campus]
idp = "campus"
arn = "{ROLE_A}"

[role.dev]
idp = "sso"
arn = "{ROLE_DEV}"
"""


def test_doctor_against_moto_cas_and_oidc(sandbox, sts, moto_server, op, dead_url):
    users = {"alice": {"password": PASSWORD, "attributes": {"awsroles": [ROLE_A]}, "mfa": None}}
    with CasEmulator(moto_server.url, users, rbac_enabled=True, principal_attribute_name="awsroles") as cas:
        sandbox.write_static_keys()
        sandbox.write_config(_all_peers_config(sts.url, cas.url, op))
        sandbox.add_aws_profile("admin", "admin", sts.url)
        sandbox.add_aws_profile("campus", "campus", sts.url)
        r = sandbox.run("doctor")
        out = r.stdout.decode()
        assert r.returncode == 0, out + r.stderr.decode()
        assert "✗" not in out
        assert f"✓ idp campus: the CAS server {cas.url} is reachable" in out
        assert f"✓ idp sso: the OIDC discovery document {op.issuer}" in out
        assert f"the STS endpoint {sts.url}: STS answers" in out
        assert "✓ profile admin in" in out and "✓ profile campus in" in out
        assert "! no terminal for prompts" in out
        assert STATIC_SECRET not in out and STATIC_KEY_ID not in out
        # no authentication anywhere: STS only gets doctor's probe, a GetCallerIdentity signed with a key that
        # does not exist (issue 20, item 9: a real call whose answer proves it is STS)
        assert cas.post_count == 0 and set(sts.actions) == {"GetCallerIdentity"}
        # an unreachable STS endpoint fails the run and is named
        sandbox.write_config(_all_peers_config(dead_url, cas.url, op))
        r = sandbox.run("doctor")
        assert r.returncode == 12
        failed = [line for line in r.stdout.decode().splitlines() if line.startswith("✗")]
        assert len(failed) == 1 and dead_url in failed[0] and "STS" in failed[0]
        # the warnings: no terminal, and the IAM keys in plain text (issue 10)
        assert re.fullmatch(r"credproc: \d+ checks: 1 failed, 2 warnings, \d+ passed\n", r.stderr.decode())
        assert "! idp corp: keys in plain text in profile" in r.stdout.decode()
