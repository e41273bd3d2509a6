"""IAM Identity Center end to end: the real credproc executable against the sso-oidc/sso emulator
(tests/peers/sso_emulator.py, proved against boto3 in tests/test_sso_emulator.py), which mints
real moto credentials; the test plays the user in the browser."""

import hashlib
import json
import os
import re
import select
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from credproc.core.store import EncryptedFileCache
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


def url_after(p, start, timeout=20):
    """The first URL on the terminal after `start` (the terminal turns "\n" into "\r\n")."""
    p.expect(start, timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(re.escape(start) + r"\s*(\S+)\r?\n", p.screen.decode())
        if m:
            return m.group(1)
        left = deadline - time.monotonic()
        assert left > 0, f"no URL after {start!r}; screen: {p.screen!r}"
        if select.select([p.master], [], [], left)[0]:
            p.screen += os.read(p.master, 1024)


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
    entry = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path).get("sso:corp-sso")
    return json.loads(entry.body) if entry else None


def drop_role_credentials(sandbox, *roles):
    store = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path)
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


def test_browser_flow_pkce_through_the_loopback_listener(sandbox, em, moto_server):
    sandbox.write_config(sso_config(em, flow="browser"))
    p = PtyProcess([credproc_exe(), "--role", "prod-admin"], sandbox.env)
    url = url_after(p, "in a browser on this machine:")
    assert url.startswith(em.oidc_url + "/authorize?") and "code_challenge_method=S256" in url
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url  # 127.0.0.1, not localhost
    with urllib.request.urlopen(url, timeout=10) as r:  # the emulator redirects to the listener
        assert b"Signed in." in r.read()
    code, out, err = p.finish(timeout=60)
    assert code == 0, (err, p.screen)
    assert caller_arn(json.loads(out), moto_server.url).startswith("arn:aws:sts::111111111111:assumed-role/AdministratorAccess/")
    assert em.count("CreateToken:authorization_code") == 1 and em.count("StartDeviceAuthorization") == 0


@pytest.mark.parametrize("flow", ["browser", "device"])
def test_the_browser_from_dollar_browser_is_opened_and_cannot_corrupt_stdout(sandbox, em, moto_server, tmp_path, flow):
    """$BROWSER is honoured; the browser (chatty, as real ones are) does not inherit the credential_process pipe."""
    script = tmp_path / "browser.py"
    script.write_text("import sys, urllib.request\n"
                      f"sys.path.insert(0, {os.getcwd()!r})\n"
                      "from tests.peers.browser import followed\n"
                      f"open({str(tmp_path / 'argv')!r}, 'w').write(' '.join(sys.argv))\n"
                      "print('Opening in existing browser session.'); sys.stderr.write('Gtk-WARNING **: noise\\n')\n"
                      "urllib.request.urlopen(followed(sys.argv[1]), timeout=10).read()\n")
    sandbox.write_config(sso_config(em, flow=flow))
    p = PtyProcess([credproc_exe(), "--role", "prod-admin"], {**sandbox.env, "BROWSER": f"{sys.executable} {script} %s"})
    code, out, err = p.finish(timeout=60)
    assert code == 0, (err, p.screen)
    assert out.startswith(b'{"Version":1') and out.count(b"\n") == 1 and err == b""
    assert caller_arn(json.loads(out), moto_server.url).startswith("arn:aws:sts::111111111111:assumed-role/AdministratorAccess/")
    assert em.count("Authorize" if flow == "browser" else "DeviceVerification") == 1
    assert b"To sign in to" in p.screen and b"To sign in to" not in out  # the URL and code: terminal only
    # the browser got a private page: no state, PKCE challenge or user code on its argv (issue 20, item 2)
    argv = (tmp_path / "argv").read_text()
    assert "file://" in argv and "state=" not in argv and "code_challenge" not in argv and "user_code" not in argv


def test_a_forged_redirect_with_another_state_is_ignored(sandbox, em):
    sandbox.write_config(sso_config(em, flow="browser"))
    p = PtyProcess([credproc_exe(), "--role", "prod-admin"], sandbox.env)
    url = url_after(p, "in a browser on this machine:")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    forged = query["redirect_uri"] + "?code=attacker&state=guessed"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(forged, timeout=5)
    assert e.value.code == 404
    with urllib.request.urlopen(url, timeout=10) as r:
        assert b"Signed in." in r.read()
    code, out, err = p.finish(timeout=60)
    assert code == 0, err


def test_twenty_concurrent_cold_callers_one_sign_in(sandbox, em, moto_server):
    sandbox.write_config(sso_config(em))
    roles = ["prod-admin"] * 10 + ["sandbox-dev"] * 10
    procs = [PtyProcess([credproc_exe(), "--role", r], sandbox.env) for r in roles]
    deadline = time.monotonic() + 40
    shown = None
    while shown is None and time.monotonic() < deadline:  # exactly one of them shows a code
        for p in procs:
            try:
                p.expect("(or open ", timeout=0.05)
            except AssertionError:
                continue
            shown = p
            break
    assert shown is not None, "no process showed a device code"
    approve_device_code(shown)
    results = [p.finish(timeout=90) for p in procs]
    assert [r[0] for r in results] == [0] * 20, [r[2] for r in results]
    docs = [json.loads(r[1]) for r in results]
    assert [d["AccountId"] for d in docs] == ["111111111111"] * 10 + ["222222222222"] * 10
    assert len({d["AccessKeyId"] for d in docs[:10]}) == 1 and len({d["AccessKeyId"] for d in docs[10:]}) == 1
    assert sum(b"enter the code" in p.screen for p in procs) == 1
    assert em.count("RegisterClient") == 1
    assert em.count("StartDeviceAuthorization") == 1
    assert em.count("TokensIssued") == 1  # one CreateToken that signed in (the others were pending polls)
    assert em.count("CreateToken:refresh_token") == 0 and em.count("CreateToken:authorization_code") == 0
    assert em.count("GetRoleCredentials") == 2  # exactly one per role
    assert caller_arn(docs[0], moto_server.url).startswith("arn:aws:sts::111111111111:assumed-role/AdministratorAccess/")
    assert caller_arn(docs[-1], moto_server.url).startswith("arn:aws:sts::222222222222:assumed-role/Developer/")


def test_refresh_after_the_access_token_expires_is_silent(sandbox, em):
    em.access_ttl = 60  # shorter than credproc keeps a token for: every new run must refresh
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    first = session_state(sandbox)["refresh_token"]
    em.reset_counts()
    drop_role_credentials(sandbox, "prod-admin")
    r = sandbox.run("--role", "prod-admin")  # no terminal: must not prompt
    assert r.returncode == 0, r.stderr
    assert em.count("CreateToken:refresh_token") == 1 and em.count("TokensIssued") == 1
    assert em.count("StartDeviceAuthorization") == 0 and em.count("RegisterClient") == 0
    assert em.count("GetRoleCredentials") == 1  # the fresh 60-second token was used, not refused
    rotated = session_state(sandbox)["refresh_token"]
    assert rotated != first  # the rotated refresh token is the one stored
    drop_role_credentials(sandbox, "prod-admin")
    assert sandbox.run("--role", "prod-admin").returncode == 0
    assert em.count("CreateToken:refresh_token") == 2


def test_an_access_token_the_portal_rejects_is_dropped_and_refreshed(sandbox, em):
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    em.reset_counts()
    em.expire_access_tokens()  # credproc still believes in it; the portal answers 401
    drop_role_credentials(sandbox, "prod-admin")
    r = sandbox.run("--role", "prod-admin")
    assert r.returncode == 0, r.stderr
    assert em.count("GetRoleCredentials") == 2 and em.count("CreateToken:refresh_token") == 1


def test_a_revoked_refresh_token_means_exit_4_with_the_login_command(sandbox, em):
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    em.revoke_refresh_tokens()
    em.expire_access_tokens()
    drop_role_credentials(sandbox, "prod-admin")
    r = sandbox.run("--role", "prod-admin")
    assert r.returncode == 4 and r.stdout == b""
    err = r.stderr.decode()
    assert err.startswith("credproc: your IAM Identity Center sign-in at https://my-org.awsapps.com/start has ended (the "
                          "refresh was refused) and there is no terminal to ask on; run in a terminal: ")
    assert err.endswith("credproc login --role prod-admin\n")
    assert err.count("\n") == 1  # one line, no traceback
    # and a new sign-in at a terminal reuses the registration
    em.reset_counts()
    device_login(sandbox)
    assert em.count("RegisterClient") == 0 and em.count("StartDeviceAuthorization") == 1


def test_device_flow_slow_down_then_denied(sandbox, em):
    sandbox.write_config(sso_config(em))
    em.script = ["slow_down", "denied"]
    p = PtyProcess([credproc_exe(), "login", "--role", "prod-admin"], sandbox.env)
    code, out, err = p.finish(timeout=60)
    assert code == 5 and b"denied" in err, (err, p.screen)
    assert em.count("CreateToken:" + DEVICE_GRANT) == 2


def test_a_chained_role_on_top_of_an_identity_center_role(sandbox, em, moto_server):
    sandbox.write_config(sso_config(em, extra='[role.audit]\nsource_role = "prod-admin"\n'
                                              'arn = "arn:aws:iam::222222222222:role/Audit"\n'
                                              f'sts_endpoint_url = "{moto_server.url}"\n'))
    device_login(sandbox, "audit")
    doc = sandbox.credentials("audit")
    assert caller_arn(doc, moto_server.url).startswith("arn:aws:sts::222222222222:assumed-role/Audit/")
    assert doc["AccountId"] == "222222222222"  # every document carries it, the chained one too
    assert sandbox.credentials("prod-admin")["AccountId"] == "111111111111"


def test_the_menu_without_a_terminal_lists_every_account_and_role(sandbox, em):
    sandbox.write_config(sso_config(em, account=None, role_name=None))
    device_login(sandbox, "sandbox-dev")
    r = sandbox.run("--role", "prod-admin")
    assert r.returncode == 3, r.stderr
    err = r.stderr.decode()
    for text in ("111111111111 (Production) AdministratorAccess", "111111111111 (Production) ReadOnly",
                 "222222222222 (Sandbox) Developer", 'account_id = "111111111111" and role_name = "AdministratorAccess"'):
        assert text in err


def test_the_menu_at_a_terminal_is_remembered(sandbox, em, moto_server):
    sandbox.write_config(sso_config(em, account='"111111111111"', role_name=None))
    p = PtyProcess([credproc_exe(), "login", "--role", "prod-admin"], sandbox.env)
    approve_device_code(p)
    p.expect("Choose 1-2: ", timeout=30)
    p.send("2")
    code, out, err = p.finish(timeout=60)
    assert code == 0, err
    assert b'account_id = "111111111111" and role_name = "ReadOnly"' in p.screen
    drop_role_credentials(sandbox, "prod-admin")
    doc = sandbox.credentials("prod-admin")  # no terminal: the remembered choice
    assert caller_arn(doc, moto_server.url).startswith("arn:aws:sts::111111111111:assumed-role/ReadOnly/")


# -- the AWS CLI's token cache ------------------------------------------------------------------
def cli_cache_file(sandbox, name):
    return os.path.join(sandbox.home, ".aws", "sso", "cache", hashlib.sha1(name.encode()).hexdigest() + ".json")


def boto3_sign_in(em):
    """What `aws sso login` leaves: a token obtained with boto3's own sso-oidc client."""
    import boto3
    import botocore
    from botocore.config import Config

    oidc = boto3.client("sso-oidc", region_name="eu-west-1", endpoint_url=em.oidc_url,
                        config=Config(signature_version=botocore.UNSIGNED))
    reg = oidc.register_client(clientName="botocore-client-my-sso", clientType="public", scopes=["sso:account:access"])
    auth = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"], startUrl=START_URL)
    em.approve(auth["userCode"])
    tok = oidc.create_token(grantType=DEVICE_GRANT, clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                            deviceCode=auth["deviceCode"])
    return oidc, reg, tok


def write_cli_token(path, start_url, tok, reg, expires_in=3600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    with open(path, "w") as f:
        json.dump({"startUrl": start_url, "region": "eu-west-1", "accessToken": tok["accessToken"],
                   "expiresAt": iso(time.time() + expires_in), "clientId": reg["clientId"],
                   "clientSecret": reg["clientSecret"], "registrationExpiresAt": iso(reg["clientSecretExpiresAt"]),
                   "refreshToken": tok["refreshToken"]}, f)


def test_read_mode_uses_the_token_aws_sso_login_left(sandbox, em, moto_server):
    sandbox.write_config(sso_config(em))
    with open(sandbox.aws_config, "a") as f:
        f.write(f"[sso-session my-sso]\nsso_start_url = {START_URL}\nsso_region = eu-west-1\n")
    _, reg, tok = boto3_sign_in(em)
    write_cli_token(cli_cache_file(sandbox, "my-sso"), START_URL, tok, reg)
    em.reset_counts()
    doc = sandbox.credentials("prod-admin")  # no terminal, no sign-in of our own
    assert caller_arn(doc, moto_server.url).startswith("arn:aws:sts::111111111111:assumed-role/AdministratorAccess/")
    assert em.count("RegisterClient") == 0 and em.count("CreateToken:refresh_token") == 0
    assert os.listdir(os.path.dirname(cli_cache_file(sandbox, "my-sso"))) == [os.path.basename(cli_cache_file(sandbox, "my-sso"))]


def test_a_cli_token_for_another_start_url_is_never_used(sandbox, em):
    sandbox.write_config(sso_config(em))
    _, reg, tok = boto3_sign_in(em)
    # the legacy file name of OUR start URL, but holding another organisation's token
    write_cli_token(cli_cache_file(sandbox, START_URL), "https://other-org.awsapps.com/start", tok, reg)
    r = sandbox.run("--role", "prod-admin")
    assert r.returncode == 4, r.stderr
    assert em.count("GetRoleCredentials") == 0


def test_off_mode_ignores_the_cli_cache(sandbox, em):
    sandbox.write_config(sso_config(em, cli_cache="off"))
    _, reg, tok = boto3_sign_in(em)
    write_cli_token(cli_cache_file(sandbox, START_URL), START_URL, tok, reg)
    assert sandbox.run("--role", "prod-admin").returncode == 4


def botocore_sso_env(sandbox, em, moto_server):
    with open(sandbox.aws_config, "a") as f:
        f.write("[profile via-botocore]\nsso_session = corp-sso\nsso_account_id = 222222222222\nsso_role_name = Developer\n"
                f"region = us-east-1\nendpoint_url = {moto_server.url}\n"
                f"[sso-session corp-sso]\nsso_start_url = {START_URL}\nsso_region = eu-west-1\n")
    return {**sandbox.env, "AWS_ENDPOINT_URL_SSO": em.portal_url, "AWS_ENDPOINT_URL_SSO_OIDC": em.oidc_url}


def test_share_mode_writes_a_token_file_botocore_sso_provider_accepts(sandbox, em, moto_server):
    from tests.peers.consumers import boto3_caller_arn

    sandbox.write_config(sso_config(em, cli_cache="share"))
    device_login(sandbox)
    path = cli_cache_file(sandbox, "corp-sso")
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(path) as f:
        doc = json.load(f)
    assert set(doc) == {"startUrl", "region", "accessToken", "expiresAt", "clientId", "clientSecret",
                        "registrationExpiresAt", "refreshToken"}
    assert doc["startUrl"] == START_URL and doc["region"] == "eu-west-1" and doc["expiresAt"].endswith("Z")
    env = botocore_sso_env(sandbox, em, moto_server)
    em.reset_counts()
    arn = boto3_caller_arn(env, "via-botocore")  # botocore's own SSO credential provider, sso_session profile
    assert arn.startswith("arn:aws:sts::222222222222:assumed-role/Developer/")
    assert em.count("GetRoleCredentials") == 1 and em.count("CreateToken:refresh_token") == 0


def test_share_mode_a_refused_refresh_token_is_not_adopted_back_from_the_shared_file(sandbox, em):
    sandbox.write_config(sso_config(em, cli_cache="share"))
    device_login(sandbox)
    em.revoke_refresh_tokens()
    em.expire_access_tokens()
    drop_role_credentials(sandbox, "prod-admin")
    em.reset_counts()
    for _ in range(3):
        assert sandbox.run("--role", "prod-admin").returncode == 4
    # one refusal is enough: the dead sign-in was not taken back from the shared file and tried again each time
    assert em.count("CreateToken:refresh_token") == 1
    assert not os.path.exists(cli_cache_file(sandbox, "corp-sso"))


def test_share_mode_the_newer_copy_wins(sandbox, em, moto_server):
    """The CLI or an SDK refreshed (and so rotated) the shared sign-in: credproc adopts it instead
    of spending its own, now revoked, refresh token."""
    sandbox.write_config(sso_config(em, cli_cache="share"))
    device_login(sandbox)
    path = cli_cache_file(sandbox, "corp-sso")
    with open(path) as f:
        shared = json.load(f)
    import boto3
    import botocore
    from botocore.config import Config

    oidc = boto3.client("sso-oidc", region_name="eu-west-1", endpoint_url=em.oidc_url,
                        config=Config(signature_version=botocore.UNSIGNED))
    tok = oidc.create_token(grantType="refresh_token", clientId=shared["clientId"], clientSecret=shared["clientSecret"],
                            refreshToken=shared["refreshToken"])  # rotates: credproc's copy is now spent
    write_cli_token(path, START_URL, tok, {"clientId": shared["clientId"], "clientSecret": shared["clientSecret"],
                                          "clientSecretExpiresAt": int(time.time()) + 86400}, expires_in=7200)
    em.reset_counts()
    drop_role_credentials(sandbox, "prod-admin")
    assert sandbox.run("--role", "prod-admin").returncode == 0
    assert em.count("CreateToken:refresh_token") == 0
    assert session_state(sandbox)["refresh_token"] == tok["refreshToken"]
    em.expire_access_tokens()  # and the adopted refresh token is the one that works
    drop_role_credentials(sandbox, "prod-admin")
    r = sandbox.run("--role", "prod-admin")
    assert r.returncode == 0, r.stderr
    assert em.count("CreateToken:refresh_token") == 1


def test_share_mode_adopts_the_sign_in_botocore_itself_refreshed_and_rotated(sandbox, em, moto_server):
    """Not a file the test writes: botocore's own SSOTokenProvider refreshes the shared token (it does
    so within 15 minutes of its end) and rotates the refresh token; credproc must take that copy."""
    from tests.peers.consumers import boto3_caller_arn

    em.access_ttl = 600  # under botocore's 15-minute refresh window: its first use refreshes
    sandbox.write_config(sso_config(em, cli_cache="share"))
    device_login(sandbox)
    ours = session_state(sandbox)["refresh_token"]
    env = botocore_sso_env(sandbox, em, moto_server)
    em.reset_counts()
    assert boto3_caller_arn(env, "via-botocore").startswith("arn:aws:sts::222222222222:assumed-role/Developer/")
    assert em.count("CreateToken:refresh_token") == 1  # botocore refreshed, and so spent credproc's copy
    with open(cli_cache_file(sandbox, "corp-sso")) as f:
        theirs = json.load(f)["refreshToken"]
    assert theirs != ours
    em.expire_access_tokens()
    drop_role_credentials(sandbox, "prod-admin")
    r = sandbox.run("--role", "prod-admin")
    assert r.returncode == 0, r.stderr
    assert em.count("CreateToken:refresh_token") == 2  # with the refresh token botocore left, not the spent one
    assert session_state(sandbox)["refresh_token"] not in (ours, theirs)


def test_sso_roles_lists_every_account_and_role_with_the_block_to_paste(sandbox, em):
    sandbox.write_config(sso_config(em))
    r = sandbox.run("sso", "roles", "--idp", "corp-sso")
    assert r.returncode == 4 and b"credproc sso roles --idp corp-sso" in r.stderr  # no sign-in, no terminal
    device_login(sandbox)
    r = sandbox.run("sso", "roles", "--idp", "corp-sso")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.count("[role.") == 3
    assert ('# Production (111111111111)\n[role.production-administratoraccess]\nidp = "corp-sso"\n'
            'account_id = "111111111111"\nrole_name = "AdministratorAccess"\n') in out
    assert '[role.sandbox-developer]' in out
    # what it prints is a valid config: paste it and use it
    with open(sandbox.config_path, "a") as f:
        f.write("\n" + out.replace("[role.sandbox-developer]", "[role.pasted]"))
    assert sandbox.run("--role", "pasted").returncode == 0
    assert sandbox.run("sso", "roles", "--idp", "nope").returncode == 2


def test_sso_roles_gives_two_accounts_with_the_same_name_distinct_blocks(sandbox, em):
    em.accounts["333333333333"] = {"name": "Sandbox", "email": "sandbox2@example.com", "roles": ["Developer"]}
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    r = sandbox.run("sso", "roles", "--idp", "corp-sso")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "[role.sandbox-developer]" in out and "[role.sandbox-333333333333-developer]" in out
    with open(sandbox.config_path, "a") as f:  # the whole output pasted is still a valid config
        f.write("\n" + out.replace("[role.sandbox-developer]", "[role.pasted]"))
    assert sandbox.run("--role", "sandbox-333333333333-developer").returncode == 0


def test_sso_roles_never_prints_a_block_a_hostile_portal_could_inject_toml_into(sandbox, em):
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    em.accounts["111111111111"]["roles"].append('ReadOnly"\ncredential_process = "/tmp/evil')
    r = sandbox.run("sso", "roles", "--idp", "corp-sso")
    assert r.returncode == 9 and r.stdout == b"", r.stderr  # nothing to append to the config
    assert b"ListAccountRoles" in r.stderr and len(r.stderr.decode().strip().splitlines()) == 1, r.stderr
    em.accounts["111111111111"]["roles"].pop()
    em.accounts["222222222222"]["name"] = "Sandbox\n[idp.evil]\x1b[2J"
    r = sandbox.run("sso", "roles", "--idp", "corp-sso")
    assert r.returncode == 0 and "# Sandbox[idp.evil][2J (222222222222)\n" in r.stdout.decode(), r.stdout


def test_status_logout_and_doctor(sandbox, em, dead_url, moto_server):
    chained = f'[role.audit]\nsource_role = "prod-admin"\narn = "arn:aws:iam::222222222222:role/Audit"\n' \
              f'sts_endpoint_url = "{moto_server.url}"\n'
    sandbox.write_config(sso_config(em, extra=chained))
    device_login(sandbox)
    report = json.loads(sandbox.run("status", "--json").stdout)
    (session,) = [s for s in report["sessions"] if s["type"] == "sso"]
    assert session["identity"] == "sso:corp-sso" and session["state"] == "valid"
    assert session["access_token_until"].endswith("Z") and session["refreshable_until"].endswith("Z")
    assert session["start_url"] == START_URL
    table = sandbox.run("status").stdout.decode()
    assert "identity center sign-in at https://my-org.awsapps.com/start" in table and "refreshable until 20" in table
    state = session_state(sandbox)
    assert state["access_token"] not in json.dumps(report) + table  # never a secret

    r = sandbox.run("doctor")
    out = r.stdout.decode() + r.stderr.decode()
    assert f"the Identity Center OIDC endpoint {em.oidc_url} is reachable" in out
    assert f"the Identity Center portal {em.portal_url} is reachable" in out
    # GetRoleCredentials is no STS call, but the role chained on top of it does call STS
    assert f"STS for role audit: the STS endpoint {moto_server.url}: STS answers" in out
    assert "STS for role prod-admin" not in out and "sts.us-east-1.amazonaws.com" not in out

    em.reset_counts()
    r = sandbox.run("logout", "--role", "prod-admin")
    assert r.returncode == 0, r.stderr
    assert "ended (portal Logout) and removed the IAM Identity Center sign-in" in r.stdout.decode()
    assert em.count("Logout") == 1 and session_state(sandbox) is None
    assert state["access_token"] not in em.valid_access_tokens()
    drop_role_credentials(sandbox, "sandbox-dev")
    assert sandbox.run("--role", "sandbox-dev").returncode == 4  # signed out: the next call needs a sign-in

    sandbox.write_config(sso_config(em, extra=chained).replace(em.portal_url, dead_url))
    r = sandbox.run("doctor")
    assert r.returncode == 12 and dead_url in r.stdout.decode() + r.stderr.decode()


@pytest.mark.parametrize("over", ["at the service", "in the cache"])
def test_logout_with_an_expired_access_token_still_ends_the_sign_in_at_the_portal(sandbox, em, over):
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    em.expire_access_tokens()  # hours later: only the refresh token still works
    if over == "in the cache":
        store = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path)
        entry = store.get("sso:corp-sso")
        entry.body = json.dumps(dict(session_state(sandbox), expires_at=0)).encode()
        store.put("sso:corp-sso", entry)
    assert not em.valid_access_tokens() and not all(t["revoked"] for t in em.refresh_tokens.values())
    em.reset_counts()
    r = sandbox.run("logout", "--role", "prod-admin")
    assert r.returncode == 0, r.stderr
    assert "ended (portal Logout) and removed" in r.stdout.decode(), r.stdout
    # at the service: the cached access token is tried first and refused (401)
    assert em.count("CreateToken:refresh_token") == 1 and em.count("Logout") == (2 if over == "at the service" else 1)
    assert all(t["revoked"] for t in em.refresh_tokens.values())  # no copy of the refresh token works any more
    assert session_state(sandbox) is None


def test_logout_in_share_mode_removes_the_shared_file(sandbox, em):
    sandbox.write_config(sso_config(em, cli_cache="share"))
    device_login(sandbox)
    assert os.path.exists(cli_cache_file(sandbox, "corp-sso"))
    assert sandbox.run("logout", "--all").returncode == 0
    assert not os.path.exists(cli_cache_file(sandbox, "corp-sso"))


def test_setup_writes_profiles_for_identity_center_roles(sandbox, em, moto_server):
    from tests.peers.consumers import boto3_caller_arn

    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    r = sandbox.run("setup")
    assert r.returncode == 0, r.stderr
    with open(sandbox.aws_config) as f:
        text = f.read()
    assert "[profile prod-admin]" in text and "--role sandbox-dev" in text
    with open(sandbox.aws_config, "a") as f:
        f.write(f"region = us-east-1\nendpoint_url = {moto_server.url}\n")  # the last profile written: sandbox-dev
    assert boto3_caller_arn(sandbox.env, "sandbox-dev").startswith("arn:aws:sts::222222222222:assumed-role/Developer/")


def test_terraform_uses_the_identity_center_role(sandbox, em, moto_server, tmp_path):
    from tests.integration.test_consumers import require
    from tests.peers import consumers

    require(consumers.terraform_available)
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    sandbox.add_aws_profile("admin", "prod-admin", moto_server.url)
    arn = consumers.terraform_caller_arn(sandbox.env, "admin", moto_server.url, str(tmp_path / "tf"),
                                         skip_credentials_validation=True, skip_requesting_account_id=True)
    assert arn.startswith("arn:aws:sts::111111111111:assumed-role/AdministratorAccess/")
    assert em.count("GetRoleCredentials") == 1  # Terraform ran credproc twice; both from the one sign-in and cache


def test_login_force_signs_in_again(sandbox, em):
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    before = session_state(sandbox)["access_token"]
    device_login(sandbox, "prod-admin", "--force")
    assert em.count("StartDeviceAuthorization") == 2
    assert session_state(sandbox)["access_token"] != before


def test_a_refused_refresh_at_a_terminal_becomes_a_new_sign_in_in_the_same_run(sandbox, em):
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    em.revoke_refresh_tokens()
    em.expire_access_tokens()
    drop_role_credentials(sandbox, "prod-admin")
    em.reset_counts()
    p = PtyProcess([credproc_exe(), "--role", "prod-admin"], sandbox.env)
    approve_device_code(p)
    code, out, err = p.finish(timeout=60)
    assert code == 0, (err, p.screen)
    assert json.loads(out)["AccountId"] == "111111111111"
    assert em.count("CreateToken:refresh_token") == 1 and em.count("StartDeviceAuthorization") == 1
    assert em.count("RegisterClient") == 0  # the registration is still good
