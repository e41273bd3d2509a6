"""SAML 2.0 end to end: credproc -> a real SimpleSAMLphp IdP on loopback (ECP and the IdP-initiated
login form) -> moto's AssumeRoleWithSAML (through tests/peers/saml_sts.py, which records what
credproc sent) -> real consumers. See ../shared/reference/saml-peers.md.

moto checks nothing of the assertion and SimpleSAMLphp issues whatever it is asked for, so the
tests that matter here are the refusals: credproc must not send what it is responsible for
checking (status, audience, expiry, role)."""

import base64
import json
import os
import shutil
import sys
import time

import pytest

from tests.peers import saml_idp
from tests.peers.saml_idp import OTHER_SP, SamlIdp
from tests.peers.saml_sts import SamlStsProxy
from tests.pty_helper import PtyProcess
from tests.sandbox import caller_arn, credproc_exe

ACCOUNT = "123456789012"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
READ = f"arn:aws:iam::{ACCOUNT}:role/ReadOnly"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/Other"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/SSP"
PASSWORDS = {"alice": "alice pw 4 real", "bob": "bob's secret pw", "carol": "carol-pw-2026"}
USERS = {
    # one role, role ARN first; SessionDuration below the role's duration: it caps it
    "bob": {"password": PASSWORDS["bob"], "roles": [f"{ADMIN},{PROVIDER}"], "session_name": "bob@example.com",
            "session_duration": 1800},
    # one role, provider ARN first; no SessionDuration
    "carol": {"password": PASSWORDS["carol"], "roles": [f"{PROVIDER},{READ}"], "session_name": "carol@example.com"},
    # several roles, one in each order
    "alice": {"password": PASSWORDS["alice"], "roles": [f"{ADMIN},{PROVIDER}", f"{PROVIDER},{READ}"],
              "session_name": "alice@example.com", "session_duration": 3600},
}


@pytest.fixture
def idp():
    reason = saml_idp.missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with SamlIdp(USERS) as server:
        yield server


def signatures_hold(idp, response, tmp_path):
    """Both signatures of what credproc sent, checked by xmlsec1 against the IdP's certificate."""
    if not shutil.which("xmlsec1"):
        reason = "xmlsec1 is not installed (tests/peers/install-saml-idp.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return [idp.verify(response, element, str(tmp_path / "sent.xml")) for element in ("Response", "Assertion")]


@pytest.fixture
def sts(moto_server):
    proxy = SamlStsProxy(moto_server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def password_command(tmp_path):
    """(command for a user, count of runs): prints that user's password and counts its runs."""
    log = tmp_path / "pw-calls"

    def command(user):
        script = tmp_path / f"pw-{user}.py"
        script.write_text(f"open({str(log)!r}, 'a').write('x\\n')\nprint({PASSWORDS[user]!r})\n")
        return f"{sys.executable} {script}"

    return command, lambda: len(log.read_text().splitlines()) if log.exists() else 0


def config(sts_url, url, flow="ecp", username="bob", password_command=None, roles=None):
    """roles: {role name: arn or None}."""
    lines = [f'[settings]\nsts_endpoint_url = "{sts_url}"\n', f'[idp.campus]\ntype = "saml"\nflow = "{flow}"\nurl = "{url}"']
    if username:
        lines.append(f'username = "{username}"')
    if password_command:
        lines.append(f"password_command = {json.dumps(password_command)}")
    for name, arn in (roles or {"admin": ADMIN}).items():
        lines.append(f'\n[role.{name}]\nidp = "campus"\nduration = 3600')
        if arn:
            lines.append(f'arn = "{arn}"')
    return "\n".join(lines) + "\n"


def url_for(idp, flow):
    return idp.ecp_url if flow == "ecp" else idp.initiated_url()


def test_ecp_to_a_role_for_the_aws_cli(sandbox, idp, sts, moto_server, password_command, tmp_path):
    from tests.peers.consumers import aws_cli_caller_arn

    command, runs = password_command
    sandbox.write_config(config(sts.url, idp.ecp_url, password_command=command("bob")))
    sandbox.add_aws_profile("admin", "admin", moto_server.url)
    assert aws_cli_caller_arn(sandbox.env, "admin") == f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/bob@example.com"
    [call] = sts.saml_calls()
    assert call["RoleArn"] == ADMIN and call["PrincipalArn"] == PROVIDER and call["_signed"] is False
    assert call["DurationSeconds"] == "1800"  # the assertion's SessionDuration caps the role's 3600
    sent = base64.b64decode(call["SAMLAssertion"])
    assert sent.startswith(b"<samlp:Response ") and sent.endswith(b"</samlp:Response>")  # cut out of the SOAP body
    assert b"urn:oasis:names:tc:SAML:2.0:status:Success" in sent
    assert signatures_hold(idp, sent, tmp_path) == [True, True]  # the cut-out is the signed bytes
    tampered = sent.replace(b"role/Admin,", b"role/Root,")
    assert signatures_hold(idp, tampered, tmp_path) == [False, False]  # the check can fail
    assert idp.sign_ons() == 1 and runs() == 1


def test_form_flow_with_the_provider_arn_first_and_no_arn_configured(sandbox, idp, sts, moto_server, password_command,
                                                                     tmp_path):
    command, _ = password_command
    sandbox.write_config(config(sts.url, idp.initiated_url(), flow="form", username="carol",
                                password_command=command("carol"), roles={"read": None}))
    doc = sandbox.credentials("read")
    assert caller_arn(doc, moto_server.url) == f"arn:aws:sts::{ACCOUNT}:assumed-role/ReadOnly/carol@example.com"
    [call] = sts.saml_calls()
    assert (call["RoleArn"], call["PrincipalArn"], call["DurationSeconds"]) == (READ, PROVIDER, "3600")
    assert signatures_hold(idp, base64.b64decode(call["SAMLAssertion"]), tmp_path) == [True, True]
    assert idp.sign_ons() == 1


@pytest.mark.parametrize("flow", ["ecp", "form"])
def test_several_roles_in_both_orders_two_roles_one_sign_on(sandbox, idp, sts, moto_server, password_command, flow):
    command, runs = password_command
    sandbox.write_config(config(sts.url, url_for(idp, flow), flow=flow, username="alice",
                                password_command=command("alice"), roles={"admin": ADMIN, "read": READ}))
    admin, read = sandbox.credentials("admin"), sandbox.credentials("read")
    assert caller_arn(admin, moto_server.url) == f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice@example.com"
    assert caller_arn(read, moto_server.url) == f"arn:aws:sts::{ACCOUNT}:assumed-role/ReadOnly/alice@example.com"
    assert [(c["RoleArn"], c["PrincipalArn"]) for c in sts.saml_calls()] == [(ADMIN, PROVIDER), (READ, PROVIDER)]
    # the second role was exchanged from the first one's assertion, kept (encrypted) until its NotOnOrAfter
    assert idp.sign_ons() == 1 and runs() == 1
    assert sts.saml_calls()[0]["SAMLAssertion"] == sts.saml_calls()[1]["SAMLAssertion"]


def test_a_role_the_assertion_does_not_offer_is_refused_before_sts(sandbox, idp, sts, password_command):
    command, _ = password_command
    sandbox.write_config(config(sts.url, idp.ecp_url, username="alice", password_command=command("alice"),
                                roles={"other": OTHER}))
    r = sandbox.run("--role", "other")
    assert r.returncode == 6, r.stderr
    assert f"does not offer {OTHER}; it offers: {ADMIN}, {READ}" in r.stderr.decode()
    assert sts.calls == []


def test_several_roles_without_a_terminal_lists_them_and_how_to_pin(sandbox, idp, sts, password_command):
    command, _ = password_command
    sandbox.write_config(config(sts.url, idp.ecp_url, username="alice", password_command=command("alice"),
                                roles={"any": None}))
    r = sandbox.run("--role", "any")
    err = r.stderr.decode()
    assert r.returncode == 3, err
    assert f"several roles and [role.any] names none: {ADMIN}, {READ}" in err
    assert f'arn = "{ADMIN}"' in err
    assert sts.calls == []


@pytest.mark.parametrize("flow, fragment", [
    ("ecp", "did not sign you in (SAML status Responder: SimpleSAML\\Error\\Error: WRONGUSERPASS); check the username"),
    ("form", "showed the login form again after credproc sent the password of bob: wrong username or password"),
])
def test_a_wrong_password(sandbox, idp, sts, tmp_path, flow, fragment):
    script = tmp_path / "wrong.py"
    script.write_text("print('not the password')\n")
    sandbox.write_config(config(sts.url, url_for(idp, flow), flow=flow, password_command=f"{sys.executable} {script}"))
    r = sandbox.run("--role", "admin", "--debug")
    err = r.stderr.decode()
    assert r.returncode == 5, err
    assert fragment in err
    assert "not the password" not in err and "Traceback" not in err
    assert sts.calls == [] and idp.sign_ons() == 0


@pytest.mark.parametrize("flow, where, fragment", [
    ("form", "/", "showed a page titled 'SimpleSAMLphp installation page' at "),
    ("ecp", "/saml2/idp/SSOService.php?spentityid=urn%3Aamazon%3Awebservices",
     "answered the ECP request with a web page, not a SOAP message"),
])
def test_a_page_credproc_does_not_understand(sandbox, idp, sts, password_command, flow, where, fragment):
    command, _ = password_command
    sandbox.write_config(config(sts.url, idp.url + where, flow=flow, password_command=command("bob")))
    r = sandbox.run("--role", "admin")
    err = r.stderr.decode()
    assert r.returncode == 9, err  # not 5: nothing says the password is wrong
    assert fragment in err
    assert sts.calls == []


def test_an_assertion_for_another_audience_is_not_sent(sandbox, idp, sts, password_command):
    command, _ = password_command
    sandbox.write_config(config(sts.url, idp.initiated_url(OTHER_SP), flow="form", password_command=command("bob")))
    r = sandbox.run("--role", "admin")
    err = r.stderr.decode()
    assert r.returncode == 5, err
    assert f"is for {OTHER_SP}, not for urn:amazon:webservices" in err
    assert idp.sign_ons() == 1 and sts.calls == []  # the IdP did sign on; credproc kept the assertion to itself


@pytest.mark.parametrize("flow", ["ecp", "form"])
def test_an_expired_assertion_is_not_sent(sandbox, idp, sts, password_command, flow):
    idp.set_lifetime(-30)  # NotOnOrAfter 30 s before the IssueInstant
    command, _ = password_command
    sandbox.write_config(config(sts.url, url_for(idp, flow), flow=flow, password_command=command("bob")))
    r = sandbox.run("--role", "admin")
    err = r.stderr.decode()
    assert r.returncode == 5, err
    assert "the SAML assertion from " + idp.entity_id + " expired " in err
    assert idp.sign_ons() == 1 and sts.calls == []


def test_twenty_cold_callers_make_one_sign_on_and_one_sts_call(sandbox, idp, sts, password_command):
    command, runs = password_command
    sandbox.write_config(config(sts.url, idp.ecp_url, password_command=command("bob")))
    procs = [sandbox.popen("--role", "admin") for _ in range(20)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [o[1] for o in outs]
    assert len({json.loads(o[0])["AccessKeyId"] for o in outs}) == 1
    assert idp.sso_requests() == 1 and idp.sign_ons() == 1  # counted in the IdP's own log
    assert len(sts.saml_calls()) == 1 and runs() == 1


def test_twenty_callers_over_two_roles_share_one_sign_on(sandbox, idp, sts, password_command):
    command, runs = password_command
    sandbox.write_config(config(sts.url, idp.ecp_url, username="alice", password_command=command("alice"),
                                roles={"admin": ADMIN, "read": READ}))
    procs = [sandbox.popen("--role", "admin" if i % 2 else "read") for i in range(20)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [o[1] for o in outs]
    assert len({json.loads(o[0])["AccessKeyId"] for o in outs}) == 2
    assert idp.sso_requests() == 1 and runs() == 1
    assert sorted(c["RoleArn"] for c in sts.saml_calls()) == [ADMIN, READ]


@pytest.mark.parametrize("username", ["bob", None])
def test_no_terminal_and_no_password_command_is_exit_4_at_once(sandbox, idp, sts, username):
    sandbox.write_config(config(sts.url, idp.ecp_url, username=username))
    start = time.monotonic()
    r = sandbox.run("--role", "admin")
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "no terminal to ask on" in err and "credproc login --role admin" in err
    assert time.monotonic() - start < 10
    assert idp.sso_requests() == 0 and sts.calls == []


def test_username_password_and_role_menu_at_a_terminal(sandbox, idp, sts, moto_server):
    sandbox.write_config(config(sts.url, idp.initiated_url(), flow="form", username=None, roles={"any": None}))
    p = PtyProcess([credproc_exe(), "--role", "any"], sandbox.env)
    p.expect("Username for the SAML IdP at ")
    p.send("alice")
    p.expect("Password for alice at the SAML IdP at ")
    p.send(PASSWORDS["alice"])
    p.expect("several AWS roles:")
    p.expect("Choose 1-2: ")
    p.send("2")
    code, out, err = p.finish()
    assert code == 0, err
    assert caller_arn(json.loads(out), moto_server.url) == f"arn:aws:sts::{ACCOUNT}:assumed-role/ReadOnly/alice@example.com"
    assert f'arn = "{READ}"' in p.screen.decode()  # the pin hint
    assert PASSWORDS["alice"].encode() not in p.screen  # not echoed
    assert [c["RoleArn"] for c in sts.saml_calls()] == [READ]


def test_the_password_and_the_assertion_never_leak(sandbox, idp, sts, password_command):
    command, _ = password_command
    sandbox.write_config(config(sts.url, idp.ecp_url, password_command=command("bob")))
    r = sandbox.run("--role", "admin", "--debug")
    assert r.returncode == 0, r.stderr
    [call] = sts.saml_calls()
    assertion = call["SAMLAssertion"].encode()
    secrets = [PASSWORDS["bob"].encode(), assertion, assertion[:40], base64.b64decode(assertion)[:200]]
    assert not any(s in r.stderr or s in r.stdout for s in secrets)
    for root, _, files in os.walk(sandbox.root):
        for name in files:
            if not name.startswith("pw-"):
                data = open(os.path.join(root, name), "rb").read()
                assert not any(s in data for s in secrets), name


def test_status_logout_and_doctor(sandbox, idp, sts, password_command):
    command, _ = password_command
    sandbox.write_config(config(sts.url, idp.ecp_url, password_command=command("bob")))
    assert sandbox.run("--role", "admin").returncode == 0
    status = json.loads(sandbox.run("status", "--json").stdout)
    [session] = [s for s in status["sessions"] if s["identity"] == "saml:campus"]
    assert session["state"] == "valid" and 200 < session["seconds_left"] <= 300  # the IdP's 300 s lifetime
    assert session["type"] == "saml" and session["flow"] == "ecp"
    assert "credential_process = " in sandbox.run("setup", "--role", "admin", "--print").stdout.decode()
    table = sandbox.run("status").stdout.decode()
    assert f"SAML assertion (ecp) from {idp.ecp_url}" in table
    r = sandbox.run("logout", "--role", "admin")
    assert r.returncode == 0, r.stderr
    assert f"removed the SAML assertion from {idp.ecp_url}" in r.stdout.decode()
    status = json.loads(sandbox.run("status", "--json").stdout)
    assert [s["state"] for s in status["sessions"] if s["identity"] == "saml:campus"] == ["none"]

    out = sandbox.run("doctor").stdout.decode()
    assert f"idp campus: the SAML IdP at {idp.ecp_url} (ecp) answers ECP requests with SOAP" in out
    sandbox.write_config(config(sts.url, idp.url + "/", flow="form", password_command=command("bob")))
    r = sandbox.run("doctor")
    assert r.returncode == 12
    assert f"idp campus: the SAML IdP at {idp.url}/ (form): answered HTTP 200 without a login form" in r.stdout.decode()
    sandbox.write_config(config(sts.url, idp.initiated_url(), flow="form", password_command=command("bob")))
    assert "(form) shows a login form" in sandbox.run("doctor").stdout.decode()
    assert idp.sign_ons() == 1  # doctor sends no credentials


@pytest.mark.parametrize("mfa", ["passcode", "push"])
def test_duo_for_ecp_at_a_terminal(sandbox, idp, sts, moto_server, password_command, mfa):
    from tests.peers.saml_idp import HeaderRecorder

    command, _ = password_command
    recorder = HeaderRecorder(idp.url)
    try:
        sandbox.write_config(config(sts.url, recorder.url + "/saml2/idp/SSOService.php", password_command=command("bob"))
                             .replace('flow = "ecp"', f'flow = "ecp"\nmfa = "{mfa}"'))
        p = PtyProcess([credproc_exe(), "--role", "admin"], sandbox.env)
        if mfa == "passcode":
            p.expect("Duo passcode: ")
            p.send("246810")
        else:
            p.expect("Approve the Duo push on your phone...")
        code, out, err = p.finish()
        assert code == 0, err
        [(method, _, sent)] = recorder.requests
        headers = {k.lower(): v for k, v in sent.items()}
        assert headers["x-shibboleth-duo-factor"] == mfa
        assert headers.get("x-shibboleth-duo-passcode") == ("246810" if mfa == "passcode" else None)
        assert headers["content-type"].startswith("text/xml") and headers["authorization"].startswith("Basic ")
        assert "urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp" in headers["paos"]
        # without a terminal: exit 4 at once, nothing sent (even with password_command)
        assert sandbox.run("logout", "--all").returncode == 0
        r = sandbox.run("--role", "admin")
        assert r.returncode == 4, r.stderr
        assert ("approval of a Duo push" if mfa == "push" else "a Duo passcode") in r.stderr.decode()
        assert len(recorder.requests) == 1
    finally:
        recorder.stop()


def test_callers_without_a_terminal_wait_for_the_one_password_prompt_and_share_its_sign_on(sandbox, idp, sts):
    sandbox.write_config(config(sts.url, idp.ecp_url, username="alice", roles={"admin": ADMIN, "read": READ}))
    p = PtyProcess([credproc_exe(), "--role", "admin"], sandbox.env)
    p.expect("Password for alice at the SAML IdP at ")  # it now holds the sign-on's lock
    same_role = sandbox.popen("--role", "admin")  # waits for the role's lock
    other_role = sandbox.popen("--role", "read")  # waits for the sign-on's lock: no prompt of its own
    time.sleep(1.5)
    assert same_role.poll() is None and other_role.poll() is None
    p.send(PASSWORDS["alice"])
    code, out, err = p.finish()
    assert code == 0, err
    for proc in (same_role, other_role):
        out2, err2 = proc.communicate(timeout=60)
        assert proc.returncode == 0, err2
    assert idp.sso_requests() == 1
    assert sorted(c["RoleArn"] for c in sts.saml_calls()) == [ADMIN, READ]
