"""Tests of the CAS awsSts emulator (tests/peers/cas_emulator.py) against a real moto STS server.

Every status and body string is quoted from ../shared/reference/cas-awssts.md (itself quoted from
AmazonSecurityTokenServiceEndpoint.java).
"""

import os
import subprocess
import sys
import threading
import time

import boto3
import pytest
import requests

from tests.peers.cas_emulator import CasEmulator, PendingPush, parse_duration

pytestmark = pytest.mark.integration

ROLE_A = "arn:aws:iam::111111111111:role/alpha"
ROLE_B = "arn:aws:iam::222222222222:role/beta"
ROLE_C = "arn:aws:iam::333333333333:role/gamma"
STRINGS = ("Authentication failed", "Authorization failure", "Found multiple roles", "Specified role is not allowed")


@pytest.fixture
def cas(moto_server):
    """Factory: cas(**kwargs) -> a running CasEmulator backed by the session moto server."""
    started = []

    def make(users=None, **kwargs):
        emu = CasEmulator(moto_server.url, users if users is not None else USERS, **kwargs)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


USERS = {
    "alice": {"password": "alice-pw", "attributes": {"awsroles": [ROLE_A]}},
    "bob": {"password": "bob-pw", "attributes": {"awsroles": [ROLE_A, ROLE_B]}},
    "carol": {"password": "carol-pw", "attributes": {"memberOf": ["staff"]}},
    "dave": {"password": "dave-pw", "attributes": {"awsroles": [ROLE_C]}, "mfa": "duo"},
}


def post(emu, timeout=10, **fields):
    return requests.post(emu.endpoint, data=fields, timeout=timeout)


def parse_body(text):
    lines = text.splitlines()
    assert lines[0] == "[default]"
    pairs = [line.split("=", 1) for line in lines[1:]]
    assert [k for k, _ in pairs] == ["aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region"]
    return dict(pairs)


def caller_arn(moto_server, creds):
    client = boto3.client(
        "sts", endpoint_url=moto_server.url, region_name="us-east-1",
        aws_access_key_id=creds["aws_access_key_id"], aws_secret_access_key=creds["aws_secret_access_key"],
        aws_session_token=creds["aws_session_token"],
    )
    return client.get_caller_identity()["Arn"]


def assert_framework_error(resp, status=500):
    assert resp.status_code == status
    assert not any(s in resp.text for s in STRINGS)


# ---- success bodies ------------------------------------------------------------------------------

def test_get_session_token_mode(cas):
    emu = cas(rbac_enabled=False)
    resp = post(emu, username="alice", password="alice-pw", duration="3600", roleArn=ROLE_B)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    creds = parse_body(resp.text)
    assert creds["region"] == "us-east-1"
    assert creds["aws_access_key_id"] and creds["aws_secret_access_key"] and creds["aws_session_token"]
    assert resp.text == ("[default]\n" + "".join(
        f"{k}={creds[k]}\n" for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region")))
    # roleArn is ignored without RBAC
    assert emu.sts_calls == [{"action": "GetSessionToken", "duration": 3600, "serial_number": None, "token_code": None}]


def test_region_aws_global_when_unset(cas):
    emu = cas(region=None)
    resp = post(emu, username="alice", password="alice-pw", duration="900")
    assert parse_body(resp.text)["region"] == "aws-global"


def test_crlf_server_mixes_line_endings(cas):
    # new StringBuilder("[default]\n") then String.format("%s=%s%n", ...) per key
    emu = cas(line_ending="\r\n", region="eu-west-1")
    resp = post(emu, username="alice", password="alice-pw", duration="900")
    assert resp.status_code == 200
    assert resp.text.startswith("[default]\naws_access_key_id=")
    assert resp.text.endswith("region=eu-west-1\r\n")
    assert resp.text.count("\r\n") == 4
    parse_body(resp.text)


def test_token_and_serial_are_passed_to_sts(cas):
    emu = cas()
    serial = "arn:aws:iam::123456789012:mfa/alice"
    resp = post(emu, username="alice", password="alice-pw", duration="900", token="123456", serialNumber=serial)
    assert resp.status_code == 200
    assert emu.sts_calls[0]["token_code"] == "123456" and emu.sts_calls[0]["serial_number"] == serial


# ---- RBAC --------------------------------------------------------------------------------------

def test_rbac_single_role_used_without_roleArn(cas, moto_server):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    resp = post(emu, username="alice", password="alice-pw", duration="900")
    assert resp.status_code == 200, resp.text
    call = emu.sts_calls[-1]
    assert call["action"] == "AssumeRole" and call["role_arn"] == ROLE_A and call["duration"] == 900
    assert caller_arn(moto_server, parse_body(resp.text)) == \
        f"arn:aws:sts::111111111111:assumed-role/alpha/{call['session_name']}"


def test_rbac_single_role_roleArn_is_not_checked(cas, moto_server):
    # StringUtils.defaultIfBlank(roleArn, first role): with one role, a given roleArn goes to STS unchecked.
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    resp = post(emu, username="alice", password="alice-pw", duration="900", roleArn=ROLE_B)
    assert resp.status_code == 200
    assert emu.sts_calls[-1]["role_arn"] == ROLE_B
    assert "assumed-role/beta/" in caller_arn(moto_server, parse_body(resp.text))


def test_rbac_several_roles_without_roleArn(cas):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    for extra in ({}, {"roleArn": ""}, {"roleArn": "  "}):
        resp = post(emu, username="bob", password="bob-pw", duration="900", **extra)
        assert resp.status_code == 401
        assert resp.text == f"Found multiple roles and none is specified. Current roles: [{ROLE_A}, {ROLE_B}]"
    assert emu.sts_calls == []


def test_rbac_several_roles_matching_roleArn(cas, moto_server):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    resp = post(emu, username="bob", password="bob-pw", duration="1800", roleArn=ROLE_B)
    assert resp.status_code == 200, resp.text
    call = emu.sts_calls[-1]
    assert call["role_arn"] == ROLE_B and call["duration"] == 1800
    arn = caller_arn(moto_server, parse_body(resp.text))
    assert arn == f"arn:aws:sts::222222222222:assumed-role/beta/{call['session_name']}"


def test_rbac_roleArn_is_a_regex_and_sent_raw(cas, moto_server):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    pattern = "arn:aws:iam::222222222222:role/.*"
    resp = post(emu, username="bob", password="bob-pw", duration="900", roleArn=pattern)
    assert resp.status_code == 200
    assert emu.sts_calls[-1]["role_arn"] == pattern  # the raw pattern, not the matched role
    # A short pattern that matches passes the check but real STS rejects it (RoleArn min length 20).
    resp = post(emu, username="bob", password="bob-pw", duration="900", roleArn="beta")
    assert_framework_error(resp)
    assert emu.sts_calls[-1]["role_arn"] == "beta"


def test_rbac_several_roles_non_matching_roleArn(cas):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    for role in (ROLE_C, "[invalid regex"):
        resp = post(emu, username="bob", password="bob-pw", duration="900", roleArn=role)
        assert resp.status_code == 401
        assert resp.text == f"Specified role is not allowed. Current roles:[{ROLE_A}, {ROLE_B}]"
    assert emu.sts_calls == []


# ---- authentication and authorization ------------------------------------------------------------

def test_authorization_attribute(cas):
    emu = cas(principal_attribute_name="awsroles", principal_attribute_value="^arn:aws:iam::111")
    assert post(emu, username="alice", password="alice-pw", duration="900").status_code == 200
    assert post(emu, username="bob", password="bob-pw", duration="900").status_code == 200  # one value matches
    resp = post(emu, username="carol", password="carol-pw", duration="900")  # attribute missing
    assert (resp.status_code, resp.text) == (401, "Authorization failure")
    emu2 = cas(principal_attribute_name="awsroles", principal_attribute_value="role/gamma$")
    resp = post(emu2, username="alice", password="alice-pw", duration="900")  # no value matches
    assert (resp.status_code, resp.text) == (401, "Authorization failure")
    emu3 = cas(principal_attribute_name="awsroles")  # name only: presence is enough
    assert post(emu3, username="alice", password="alice-pw", duration="900").status_code == 200
    assert post(emu3, username="carol", password="carol-pw", duration="900").text == "Authorization failure"


@pytest.mark.parametrize("fields", [
    {"username": "alice", "password": "wrong"},
    {"username": "nobody", "password": "alice-pw"},
    {"username": "alice"},
    {},
])
def test_bad_credentials(cas, fields):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    resp = post(emu, duration="900", **fields)
    assert (resp.status_code, resp.text) == (401, "Authentication failed")
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert emu.sts_calls == []


# ---- Duo -----------------------------------------------------------------------------------------

def test_duo_passcode(cas):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles", valid_passcodes={"123456"})
    resp = post(emu, username="dave", password="dave-pw", passcode="123456", duration="900")
    assert resp.status_code == 200
    assert emu.sts_calls[-1]["role_arn"] == ROLE_C
    resp = post(emu, username="dave", password="dave-pw", passcode="654321", duration="900")
    assert (resp.status_code, resp.text) == (401, "Authentication failed")
    resp = post(emu, username="dave", password="wrong", passcode="123456", duration="900")
    assert (resp.status_code, resp.text) == (401, "Authentication failed")
    assert emu.push_requests.empty()


def _post_in_thread(emu, **fields):
    result = {}

    def run():
        result["resp"] = post(emu, timeout=20, **fields)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def test_duo_push_approved_by_test(cas):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    t, result = _post_in_thread(emu, username="dave", password="dave-pw", duration="900")
    push = emu.push_requests.get(timeout=5)
    assert isinstance(push, PendingPush) and push.username == "dave"
    time.sleep(0.2)
    assert t.is_alive()  # the HTTP request blocks until the push is answered
    assert emu.sts_calls == []
    assert emu.approve_push() is push
    t.join(10)
    assert result["resp"].status_code == 200
    assert emu.sts_calls[-1]["role_arn"] == ROLE_C


def test_duo_push_denied_by_test(cas):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    t, result = _post_in_thread(emu, username="dave", password="dave-pw", duration="900")
    assert emu.push_requests.get(timeout=5).username == "dave"
    emu.deny_push()
    t.join(10)
    assert (result["resp"].status_code, result["resp"].text) == (401, "Authentication failed")
    assert emu.sts_calls == []


def test_duo_push_timeout(cas):
    emu = cas(push_timeout=0.3)
    start = time.monotonic()
    resp = post(emu, username="dave", password="dave-pw", duration="900")
    assert (resp.status_code, resp.text) == (401, "Authentication failed")
    assert 0.3 <= time.monotonic() - start < 5
    push = emu.push_requests.get_nowait()
    push.approve()  # too late: no effect
    assert push.approved is False
    with pytest.raises(TimeoutError):
        emu.approve_push(timeout=0.1)


def test_duo_push_auto_modes(cas):
    emu = cas(push_response="approve", push_delay=0.2)
    start = time.monotonic()
    assert post(emu, username="dave", password="dave-pw", duration="900").status_code == 200
    assert time.monotonic() - start >= 0.2
    emu = cas(push_response="deny")
    assert post(emu, username="dave", password="dave-pw", duration="900").text == "Authentication failed"


def test_no_push_after_bad_password(cas):
    emu = cas(push_timeout=0.3)
    resp = post(emu, username="dave", password="wrong", duration="900")
    assert resp.text == "Authentication failed"
    assert emu.push_requests.empty()


# ---- duration --------------------------------------------------------------------------------------

def test_duration_default_trap_version_7(cas):
    emu = cas(version="7")
    resp = post(emu, username="alice", password="alice-pw")  # PT15S -> real STS rejects (< 900 s)
    assert_framework_error(resp)
    assert emu.sts_calls[-1]["duration"] == 15


def test_duration_default_version_6(cas):
    emu = cas(version="6")
    resp = post(emu, username="alice", password="alice-pw")
    assert resp.status_code == 200
    assert emu.sts_calls[-1]["duration"] == 3600
    assert post(emu, username="alice", password="alice-pw", duration="").status_code == 200


@pytest.mark.parametrize("duration,status,seconds", [
    ("900", 200, 900), ("PT15M", 200, 900), ("PT1H", 200, 3600), ("P0DT12H", 200, 43200),
    ("899", 500, 899), ("PT15S", 500, 15), ("43201", 500, 43201), ("-900", 500, -900),
    ("bogus", 500, None), ("1.5", 500, None), ("P1Y", 500, None),
])
def test_duration_parsing_and_sts_limits(cas, duration, status, seconds):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    resp = post(emu, username="alice", password="alice-pw", duration=duration)
    if status == 200:
        assert resp.status_code == 200, resp.text
    else:
        assert_framework_error(resp)
    assert (emu.sts_calls[-1]["duration"] if emu.sts_calls else None) == seconds


def test_get_session_token_allows_36_hours(cas):
    emu = cas()
    assert post(emu, username="alice", password="alice-pw", duration="PT36H").status_code == 200
    assert_framework_error(post(emu, username="alice", password="alice-pw", duration="129601"))


def test_duration_is_parsed_after_role_checks(cas):
    emu = cas(rbac_enabled=True, principal_attribute_name="awsroles")
    resp = post(emu, username="bob", password="bob-pw", duration="bogus")
    assert resp.status_code == 401 and resp.text.startswith("Found multiple roles and none is specified.")


def test_parse_duration_unit():
    assert [parse_duration(s) for s in ("900", "PT1H", "PT15M", "PT15S", "P1DT1H30M5S", "pt2h", "PT1.9S")] == \
        [900, 3600, 900, 15, 91805, 7200, 1]
    assert parse_duration("4294968196") == 900  # Long.intValue() wraps


# ---- endpoint modes and HTTP surface ---------------------------------------------------------------

def test_endpoint_disabled(cas):
    emu = cas(endpoint_mode="disabled")
    assert_framework_error(post(emu, username="alice", password="alice-pw", duration="900"), 404)


def test_endpoint_unauthorized(cas):
    emu = cas(endpoint_mode="unauthorized")
    resp = post(emu, username="alice", password="alice-pw", duration="900")
    assert_framework_error(resp, 401)
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="Realm"'
    assert resp.text != "Authentication failed"


def test_endpoint_forbidden(cas):
    emu = cas(endpoint_mode="forbidden")
    assert_framework_error(post(emu, username="alice", password="alice-pw", duration="900"), 403)
    assert emu.sts_calls == []


def test_http_surface(cas):
    emu = cas()
    assert emu.url.startswith("http://127.0.0.1:") and emu.url.endswith("/cas")
    assert emu.endpoint == emu.url + "/actuator/awsSts"
    assert requests.get(emu.endpoint, timeout=5).status_code == 405
    resp = requests.post(emu.endpoint, json={"username": "alice", "password": "alice-pw"}, timeout=5)
    assert resp.status_code == 415  # JSON is not supported
    assert requests.post(emu.url + "/actuator/other", data={"x": "1"}, timeout=5).status_code == 404
    assert emu.post_count == 1  # only POSTs to the endpoint count (the GET and the other path do not)


def test_requests_recorded_and_counted(cas, capfd):
    emu = cas()
    threads = [threading.Thread(target=post, kwargs=dict(emu=emu, username="alice", password="alice-pw",
                                                         duration="900", service="https://app.example"))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    post(emu, username="alice", password="wrong")
    assert emu.post_count == 9
    assert emu.requests[0] == {"username": "alice", "password": "alice-pw", "duration": "900",
                               "service": "https://app.example"}
    assert [s for s, _ in emu.responses].count(200) == 8
    out, err = capfd.readouterr()
    assert "alice-pw" not in out + err and "wrong" not in out + err
    emu.clear()
    assert emu.post_count == 0 and emu.requests == []


def test_context_manager(moto_server):
    with CasEmulator(moto_server.url, USERS) as emu:
        assert post(emu, username="alice", password="alice-pw", duration="900").status_code == 200
    with pytest.raises(requests.ConnectionError):
        post(emu, timeout=2, username="alice", password="alice-pw", duration="900")


def test_standalone_main(moto_server):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.cas_emulator", "--sts-url", moto_server.url,
         "--user", "alice:s3cret-pw:" + ROLE_A, "--rbac"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/cas")
        resp = requests.post(url + "/actuator/awsSts",
                             data={"username": "alice", "password": "s3cret-pw", "duration": "900"}, timeout=10)
        assert resp.status_code == 200
        assert "region=us-east-1" in resp.text
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "s3cret-pw" not in out + err
