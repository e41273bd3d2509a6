"""OpenID Connect end to end: credproc against a real OIDC provider (npm oidc-provider, loopback)
and moto STS; the scripted browser plays the user. Forged tokens come from a Python fake issuer."""

import json
import os
import sys
import time

import pytest

from credproc.core.store import EncryptedFileCache
from tests.fake_issuer import FORGERIES, FakeIssuer
from tests.integration.conftest import ROLE_DEV, ROLE_OPS  # noqa: E402
from tests.peers.browser import complete_code_flow, complete_device_flow
from tests.pty_helper import PtyProcess
from tests.sandbox import caller_arn, credproc_exe


def oidc_config(issuer, client_id, sts_url, flow="device", arn=ROLE_DEV, extra_idp="", extra_role="", open_browser=False):
    arn_line = f'arn = "{arn}"' if arn else ""
    return f"""
[settings]
sts_endpoint_url = "{sts_url}"

[idp.corp]
type = "oidc"
issuer = "{issuer}"
client_id = "{client_id}"
flow = "{flow}"
open_browser = {str(open_browser).lower()}
{extra_idp}
[role.dev]
idp = "corp"
{arn_line}
{extra_role}
"""


def device_login(sandbox, op, *args):
    """credproc login in a pseudo-terminal; the scripted browser completes the device flow."""
    p = PtyProcess([credproc_exe(), "login", "--role", "dev", *args], sandbox.env)
    p.expect("(or open ")
    p.expect(")")
    uri = p.screen.decode().split("(or open ", 1)[1].split(")", 1)[0]
    complete_device_flow(uri, login="alice")
    code, out, err = p.finish(timeout=60)
    assert code == 0, (err, p.screen)
    return out.decode()


def session_state(sandbox):
    store = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path)
    return json.loads(store.get("oidc:corp").body)


def expire_role_credentials(sandbox):
    """Stands for the passage of time: the role's cached credentials are gone."""
    EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path).delete("role:dev")


def test_device_flow_then_the_aws_cli_uses_the_role(sandbox, op, sts):
    from tests.peers.consumers import aws_cli_caller_arn

    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url))
    out = device_login(sandbox, op)
    assert out.startswith("role dev (account 111111111111): credentials valid until")
    sandbox.add_aws_profile("dev", "dev", sts.url)
    assert aws_cli_caller_arn(sandbox.env, "dev") == "arn:aws:sts::111111111111:assumed-role/dev/alice@example.com"
    assert sts.count("AssumeRoleWithWebIdentity") == 1
    assert op.stats()["device_authorization"] == 1


def test_browser_flow_with_pkce_and_a_loopback_listener(sandbox, op, sts):
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url, flow="browser"))
    p = PtyProcess([credproc_exe(), "--role", "dev"], sandbox.env)
    p.expect("open this URL in a browser on this machine:")
    p.expect("code_challenge_method=S256")
    url = p.screen.decode().split("this machine:", 1)[1].split()[0]
    result = complete_code_flow(url, login="bob")
    assert "Signed in." in result.response.text
    code, out, err = p.finish(timeout=30)
    assert code == 0, err
    assert caller_arn(json.loads(out), sts.url) == "arn:aws:sts::111111111111:assumed-role/dev/bob@example.com"


def test_a_chatty_browser_cannot_corrupt_stdout(sandbox, op, sts, tmp_path):
    """The browser is started by credproc; it must not inherit the credential_process pipe."""
    script = tmp_path / "browser.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {os.getcwd()!r})\n"
        "print('Opening in existing browser session.'); sys.stderr.write('Gtk-WARNING **: noise\\n')\n"
        "from tests.peers.browser import complete_code_flow\n"
        "complete_code_flow(sys.argv[1], login='carol')\n")
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url, flow="browser", open_browser=True))
    p = PtyProcess([credproc_exe(), "--role", "dev"], {**sandbox.env, "BROWSER": f"{sys.executable} {script} %s"})
    code, out, err = p.finish(timeout=60)
    assert code == 0, (err, p.screen)
    assert out.startswith(b'{"Version":1') and out.count(b"\n") == 1 and err == b""
    assert caller_arn(json.loads(out), sts.url) == "arn:aws:sts::111111111111:assumed-role/dev/carol@example.com"


def test_refresh_is_silent_and_the_rotated_token_is_stored(sandbox, op, sts):
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url))
    device_login(sandbox, op)
    first_refresh_token = session_state(sandbox)["refresh_token"]
    op.reset_stats()
    expire_role_credentials(sandbox)  # and the ID token (60 s) is too short to reuse
    r = sandbox.run("--role", "dev")  # no terminal: must be silent
    assert r.returncode == 0, r.stderr
    stats = op.stats()
    assert stats["token_by_grant_type"] == {"refresh_token": 1} and stats["device_authorization"] == 0
    rotated = session_state(sandbox)["refresh_token"]
    assert rotated != first_refresh_token
    # the rotated token is the good one: another expiry refreshes again without a login
    expire_role_credentials(sandbox)
    assert sandbox.run("--role", "dev").returncode == 0
    assert op.stats()["token_errors"] == {}


def test_a_revoked_refresh_token_means_login_needed_said_in_one_sentence(sandbox, op, sts):
    import requests

    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url))
    device_login(sandbox, op)
    token = session_state(sandbox)["refresh_token"]
    requests.post(op.revocation_endpoint, data={"token": token, "client_id": op.client_id}, timeout=5).raise_for_status()
    expire_role_credentials(sandbox)
    r = sandbox.run("--role", "dev")
    assert r.returncode == 4 and r.stdout == b""
    err = r.stderr.decode()
    assert err.startswith(f"credproc: your sign-in at {op.issuer} has ended (the refresh token was refused) and "
                          "there is no terminal to sign in again on; run in a terminal: "), err
    assert "login --role dev" in err and len(err.strip().splitlines()) == 1


def test_twenty_cold_callers_one_login_one_token_one_assume_role(sandbox, op, sts):
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url))
    procs = [PtyProcess([credproc_exe(), "--role", "dev"], sandbox.env) for _ in range(20)]
    deadline = time.monotonic() + 20
    uri = None
    while uri is None and time.monotonic() < deadline:  # exactly one of them shows a code
        for p in procs:
            try:
                p.expect("(or open ", timeout=0.05)
                p.expect(")", timeout=2)
                uri = p.screen.decode().split("(or open ", 1)[1].split(")", 1)[0]
                break
            except AssertionError:
                continue
    assert uri, "no process showed a device code"
    complete_device_flow(uri, login="alice")
    results = [p.finish(timeout=60) for p in procs]
    assert [r[0] for r in results] == [0] * 20, [r[2] for r in results]
    assert len({json.loads(r[1])["AccessKeyId"] for r in results}) == 1
    assert sum(b"enter the code" in p.screen for p in procs) == 1
    stats = op.stats()
    assert stats["device_authorization"] == 1
    assert stats["token_by_grant_type"].get("device_code", 0) >= 1
    successful = [t for t in stats["token_requests"] if t.get("status") == 200]
    assert len(successful) == 1
    assert sts.count("AssumeRoleWithWebIdentity") == 1


def test_several_roles_in_the_claim_without_a_terminal(sandbox, op, sts):
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url, arn=None, extra_idp='roles_claim = "aws_roles"'))
    p = PtyProcess([credproc_exe(), "login", "--role", "dev"], sandbox.env)
    p.expect("(or open ")
    p.expect(")")
    complete_device_flow(p.screen.decode().split("(or open ", 1)[1].split(")", 1)[0], login="alice")
    p.expect("Choose 1-2: ", timeout=30)
    p.send("2")
    code, out, err = p.finish()
    assert code == 0, err
    assert f'arn = "{ROLE_OPS}"'.encode() in p.screen
    expire_role_credentials(sandbox)
    doc = sandbox.credentials("dev")  # the choice is remembered: no terminal needed
    assert caller_arn(doc, sts.url).startswith("arn:aws:sts::222222222222:assumed-role/ops/")


# -- forged tokens never reach STS (a Python issuer hands them out; password flow) ---------------

@pytest.fixture
def fake():
    f = FakeIssuer()
    yield f
    f.stop()


def password_config(fake, sts_url, tmp_path):
    pw = tmp_path / "pw.py"
    pw.write_text(f"print({fake.password!r})\n")
    return oidc_config(fake.url, fake.client_id, sts_url, flow="password",
                       extra_idp=f'username = "alice"\npassword_command = {json.dumps(f"{sys.executable} {pw}")}')


def test_password_flow(sandbox, fake, sts, tmp_path):
    sandbox.write_config(password_config(fake, sts.url, tmp_path))
    doc = sandbox.credentials("dev")
    assert caller_arn(doc, sts.url) == "arn:aws:sts::111111111111:assumed-role/dev/alice@example.com"
    assert fake.token_requests == ["password"]


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_tokens_are_rejected_before_any_sts_call(sandbox, fake, sts, tmp_path, forgery):
    fake.forge = FORGERIES[forgery]
    sandbox.write_config(password_config(fake, sts.url, tmp_path))
    r = sandbox.run("--role", "dev")
    assert r.returncode == 5, r.stderr
    assert r.stdout == b"" and b"Traceback" not in r.stderr
    assert sts.actions == []


@pytest.mark.parametrize("nonce_override", [None, "a-nonce-from-another-login"])
def test_the_browser_flow_rejects_a_token_with_the_wrong_nonce(sandbox, fake, sts, tmp_path, nonce_override):
    fake.nonce_override = nonce_override
    script = tmp_path / "browser.py"
    script.write_text(f"import sys, urllib.request\nsys.path.insert(0, {os.getcwd()!r})\n"
                      "from tests.peers.browser import followed\n"
                      "urllib.request.urlopen(followed(sys.argv[1]), timeout=10).read()\n")
    sandbox.write_config(oidc_config(fake.url, fake.client_id, sts.url, flow="browser", open_browser=True))
    p = PtyProcess([credproc_exe(), "--role", "dev"], {**sandbox.env, "BROWSER": f"{sys.executable} {script} %s"})
    code, out, err = p.finish(timeout=60)
    assert fake.pkce_ok == [True]
    if nonce_override is None:
        assert code == 0, err
        assert caller_arn(json.loads(out), sts.url) == "arn:aws:sts::111111111111:assumed-role/dev/alice@example.com"
    else:
        assert code == 5 and out == b""
        assert b"does not carry the nonce of this login" in err
        assert sts.actions == []
