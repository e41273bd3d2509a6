"""The AWS console sign-in (`aws login`) end to end: the real credproc executable against the AWS
Sign-In emulator (tests/peers/login_emulator.py, proved against botocore in
tests/test_login_emulator.py), which mints real moto credentials; a $BROWSER stand-in plays the
user, and botocore's own LoginProvider refreshes the shared CLI file in share mode."""

import base64
import hashlib
import json
import os
import stat
import sys
import time
import urllib.request

import pytest

from credproc.core.store import EncryptedFileCache
from tests.peers.login_emulator import LOGIN_SESSION, SAME_DEVICE, LoginEmulator
from tests.pty_helper import PtyProcess
from tests.sandbox import caller_arn, credproc_exe

CLI_FILE = hashlib.sha256(LOGIN_SESSION.encode()).hexdigest() + ".json"


@pytest.fixture
def em(moto_server):
    with LoginEmulator(moto_server.url) as emulator:
        yield emulator


def login_config(em, flow="browser", cli_cache="read", extra="", sts=None):
    return f"""
[idp.console]
type = "login"
region = "eu-west-1"
flow = "{flow}"
aws_cli_cache = "{cli_cache}"
signin_endpoint_url = "{em.url}"

[role.me]
idp = "console"

[role.deploy]
idp = "console"
arn = "arn:aws:iam::111111111111:role/Deploy"
{f'sts_endpoint_url = "{sts}"' if sts else ""}
{extra}
"""


def browser_env(sandbox, tmp_path):
    """A $BROWSER that records its argv and follows the link (start link -> authorize -> callback)."""
    script = tmp_path / "browser.py"
    argv_log = tmp_path / "browser-argv"
    script.write_text("import sys, urllib.request\n"
                      f"sys.path.insert(0, {os.getcwd()!r})\n"
                      "from tests.peers.browser import followed\n"
                      f"open({str(argv_log)!r}, 'a').write(' '.join(sys.argv[1:]) + ' -> ' + followed(sys.argv[1]) + '\\n')\n"
                      "print('Opening in existing browser session.')\n"
                      "urllib.request.urlopen(followed(sys.argv[1]), timeout=10).read()\n")
    return {**sandbox.env, "BROWSER": f"{sys.executable} {script} %s"}, argv_log


def sign_in(sandbox, tmp_path, *args, role="me"):
    env, argv_log = browser_env(sandbox, tmp_path)
    p = PtyProcess([credproc_exe(), *args, "--role", role], env)
    code, out, err = p.finish(timeout=60)
    assert code == 0, (err, p.screen)
    return out, err, p, argv_log


def store(sandbox):
    return EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path)


def session_state(sandbox):
    entry = store(sandbox).get("login:console")
    return json.loads(entry.body) if entry else None


def age(sandbox, seconds_left, roles=("me", "deploy")):
    """As if time passed: the stored sign-in's credentials have `seconds_left`, the roles' are gone."""
    s = store(sandbox)
    entry = s.get("login:console")
    state = json.loads(entry.body)
    state["expires_at"] = int(time.time()) + seconds_left
    entry.body = json.dumps(state).encode()
    s.put("login:console", entry)
    for role in roles:
        s.delete(f"role:{role}")
    shared = os.path.join(sandbox.home, ".aws", "login", "cache", CLI_FILE)
    if os.path.exists(shared):  # share mode: the same time passed for the CLI's copy
        with open(shared) as f:
            doc = json.load(f)
        if doc["refreshToken"] == state.get("refresh_token"):
            doc["accessToken"]["expiresAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state["expires_at"]))
            with open(shared, "w") as f:
                json.dump(doc, f)


def secrets_of(state):
    return [state["refresh_token"], state["dpop_key"], state["id_token"], state["dpop_key"].splitlines()[1]]


def test_first_sign_in_through_the_browser_then_cache_hits(sandbox, em, moto_server, tmp_path):
    sandbox.write_config(login_config(em))
    out, err, p, argv_log = sign_in(sandbox, tmp_path)
    doc = json.loads(out)
    assert out.count(b"\n") == 1 and err == b""
    assert ":assumed-role/ConsoleUser/" in caller_arn(doc, moto_server.url)
    assert doc["AccountId"] == "111111111111"
    left = time.mktime(time.strptime(doc["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())
    assert 600 < left <= 900
    # the browser got a one-shot local link: no state, no code challenge on its command line
    # the browser's argv is a private page (core/browser.py), which leads to the one-shot start link
    argv, target = argv_log.read_text().strip().split(" -> ")
    assert argv.startswith("file://") and "state" not in argv and "challenge" not in argv
    assert target.startswith("http://127.0.0.1:") and "/start/" in target and "state" not in target
    assert b"To sign in to AWS" in p.screen
    assert em.count("Authorize") == 1 and em.count("CreateOAuth2Token:authorization_code") == 1 and em.refreshes() == 0
    state = session_state(sandbox)
    assert state["login_session"] == LOGIN_SESSION and state["client_id"] == SAME_DEVICE
    for secret in secrets_of(state):
        assert secret.encode() not in out + err + p.screen
    # later calls: cache hits, no terminal needed, also with --debug (and no secret there either)
    again = sandbox.run("--debug", "--role", "me")
    assert again.returncode == 0 and json.loads(again.stdout) == doc
    for secret in secrets_of(state) + [doc["SecretAccessKey"], doc["SessionToken"]]:
        assert secret.encode() not in again.stderr
    assert em.count("CreateOAuth2Token") == 1
    assert not os.path.exists(os.path.join(sandbox.home, ".aws", "login", "cache", CLI_FILE))  # read mode: never written


def test_remote_flow_pasted_code_with_its_state_checked(sandbox, em, moto_server):
    sandbox.write_config(login_config(em, flow="remote"))
    p = PtyProcess([credproc_exe(), "--role", "me"], sandbox.env)
    p.expect("on any device:")
    p.expect("Enter the authorization code")
    url = p.screen.decode().split("on any device:", 1)[1].split()[0]
    assert "client_id=arn%3Aaws%3Asignin%3A%3A%3Adevtools%2Fcross-device" in url and "code_challenge_method=SHA-256" in url
    with urllib.request.urlopen(url, timeout=10) as r:  # authorize -> the confirmation page with the code
        pasted = r.read().decode()
    p.send(pasted)
    code, out, err = p.finish(timeout=60)
    assert code == 0, (err, p.screen)
    assert ":assumed-role/ConsoleUser/" in caller_arn(json.loads(out), moto_server.url)
    assert pasted.encode() not in p.screen.split(b"Enter the authorization code", 1)[1]  # read without echo
    assert em.count("CreateOAuth2Token:authorization_code") == 1


def test_remote_flow_a_code_of_another_sign_in_is_refused(sandbox, em):
    sandbox.write_config(login_config(em, flow="remote"))
    p = PtyProcess([credproc_exe(), "--role", "me"], sandbox.env)
    p.expect("Enter the authorization code")
    p.send(base64.b64encode(b"code=code-forged&state=not-this-one").decode())
    code, out, err = p.finish(timeout=60)
    assert code == 5 and out == b"" and b"state differs" in err
    assert em.count("CreateOAuth2Token") == 0


def test_without_a_terminal_and_without_a_sign_in_exit_4(sandbox, em):
    sandbox.write_config(login_config(em))
    r = sandbox.run("--role", "me")
    assert r.returncode == 4 and r.stdout == b"" and b"credproc login --role me" in r.stderr
    assert b"Traceback" not in r.stderr and em.count("Authorize") == 0


def test_refresh_after_expiry_rotates_and_needs_no_terminal(sandbox, em, moto_server, tmp_path):
    sandbox.write_config(login_config(em))
    first = json.loads(sign_in(sandbox, tmp_path)[0])
    before = session_state(sandbox)["refresh_token"]
    age(sandbox, 300)
    r = sandbox.run("--debug", "--role", "me")  # the refresh, logged: no secret in the log
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for secret in secrets_of(session_state(sandbox)) + [before, doc["SecretAccessKey"], doc["SessionToken"]]:
        assert secret.encode() not in r.stderr
    assert b"refreshing" in r.stderr
    assert doc["AccessKeyId"] != first["AccessKeyId"]
    assert ":assumed-role/ConsoleUser/" in caller_arn(doc, moto_server.url)
    assert em.refreshes() == 1 and em.count("Reuse") == 0
    assert session_state(sandbox)["refresh_token"] not in (before, None)
    assert em.log[-1] == ("refresh_token", before)


@pytest.mark.parametrize("cli_cache", ["read", "share"])
def test_twenty_concurrent_callers_one_refresh(sandbox, em, tmp_path, cli_cache):
    sandbox.write_config(login_config(em, cli_cache=cli_cache))
    sign_in(sandbox, tmp_path)
    age(sandbox, 300)
    procs = [sandbox.popen("--role", "me") for _ in range(20)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert all(code == 0 for code, _, _ in results), [e for c, _, e in results if c]
    assert len({json.loads(out)["AccessKeyId"] for _, out, _ in results}) == 1
    assert em.refreshes() == 1 and em.count("Reuse") == 0
    if cli_cache == "share":  # the CLI's file holds the one refresh
        with open(os.path.join(sandbox.home, ".aws", "login", "cache", CLI_FILE)) as f:
            assert json.load(f)["refreshToken"] == session_state(sandbox)["refresh_token"]


@pytest.mark.parametrize("why", ["TOKEN_EXPIRED", "USER_CREDENTIALS_CHANGED"])
def test_a_revoked_session_exit_4_and_a_terminal_signs_in_again(sandbox, em, tmp_path, why):
    sandbox.write_config(login_config(em))
    sign_in(sandbox, tmp_path)
    age(sandbox, 300)
    em.revoke(why)
    r = sandbox.run("--role", "me")
    assert r.returncode == 4 and r.stdout == b"" and why.encode() in r.stderr and b"credproc login --role me" in r.stderr
    assert em.refreshes() == 1
    assert "refresh_token" not in session_state(sandbox)  # the refused token is never presented again
    r = sandbox.run("--role", "me")
    assert r.returncode == 4 and em.refreshes() == 1
    sign_in(sandbox, tmp_path)  # a terminal: a new sign-in in place
    assert em.count("CreateOAuth2Token:authorization_code") == 2


def test_insufficient_permissions_exit_6_names_the_policy(sandbox, em, tmp_path):
    sandbox.write_config(login_config(em))
    sign_in(sandbox, tmp_path)
    age(sandbox, 300)
    em.deny_permissions = True
    r = sandbox.run("--role", "me")
    assert r.returncode == 6 and b"SignInLocalDevelopmentAccess" in r.stderr and b"Traceback" not in r.stderr


def test_an_authorization_code_that_expired_exit_5(sandbox, em, tmp_path):
    sandbox.write_config(login_config(em))
    em.expire_codes = True
    env, _ = browser_env(sandbox, tmp_path)
    p = PtyProcess([credproc_exe(), "--role", "me"], env)
    code, out, err = p.finish(timeout=60)
    assert code == 5 and out == b"" and b"expired" in err


def test_a_role_assumed_from_the_console_identity(sandbox, em, moto_server, tmp_path):
    sandbox.write_config(login_config(em, sts=moto_server.url))
    sign_in(sandbox, tmp_path)
    doc = sandbox.credentials("deploy")
    assert ":assumed-role/Deploy/" in caller_arn(doc, moto_server.url)
    left = time.mktime(time.strptime(doc["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())
    assert left > 3000  # the role's own hour, with the usual 15-minute rule
    assert em.count("CreateOAuth2Token") == 1


def _cli_file_from_the_cli(sandbox, em, expires_at):
    """What `aws login` leaves: a sign-in made as the CLI makes it (tests/test_login_emulator.py)."""
    from botocore.utils import JSONFileCache

    from tests.test_login_emulator import cli_key, cli_sign_in, pem

    key = cli_key()
    out, _ = cli_sign_in(em, key)
    token = {"accessToken": {**out["accessToken"], "accountId": "111111111111", "expiresAt": expires_at},
             "tokenType": out["tokenType"], "clientId": SAME_DEVICE, "refreshToken": out["refreshToken"],
             "idToken": out["idToken"], "dpopKey": pem(key)}
    cache_dir = os.path.join(sandbox.home, ".aws", "login", "cache")
    JSONFileCache(cache_dir)[CLI_FILE[:-5]] = token
    return os.path.join(cache_dir, CLI_FILE), token


def test_read_mode_uses_a_cli_made_file_without_signing_in_and_never_spends_its_refresh_token(sandbox, em, moto_server):
    sandbox.write_config(login_config(em))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 890))
    path, token = _cli_file_from_the_cli(sandbox, em, later)
    with open(path, "rb") as f:
        before = f.read()
    doc = sandbox.credentials("me")
    assert doc["AccessKeyId"] == token["accessToken"]["accessKeyId"]
    assert ":assumed-role/ConsoleUser/" in caller_arn(doc, moto_server.url)
    assert em.count("Authorize") == 1 and em.count("CreateOAuth2Token") == 1  # only the CLI's own sign-in
    with open(path, "rb") as f:
        assert f.read() == before
    # expired there and nothing of ours: no refresh with the CLI's token, a sign-in is needed
    expired = dict(token, accessToken=dict(token["accessToken"], expiresAt="2020-01-01T00:00:00Z"))
    with open(path, "w") as f:
        json.dump(expired, f)
    store(sandbox).delete("role:me")
    r = sandbox.run("--role", "me")
    assert r.returncode == 4 and em.refreshes() == 0


def botocore_refresh(sandbox, em, expire_first=True):
    """botocore's own LoginProvider (the SDKs' side) refreshing the shared file."""
    import botocore.session
    from botocore.credentials import LoginProvider
    from botocore.utils import JSONFileCache

    path = os.path.join(sandbox.home, ".aws", "login", "cache", CLI_FILE)
    if expire_first:  # time passed for botocore: its copy is due
        with open(path) as f:
            doc = json.load(f)
        doc["accessToken"]["expiresAt"] = "2020-01-01T00:00:00Z"
        with open(path, "w") as f:
            json.dump(doc, f)
    session = botocore.session.get_session()
    def creator(name, **kw):  # botocore passes region_name itself when the file has signInRegion
        return session.create_client(name, **{"endpoint_url": em.url, "region_name": "us-east-1", **kw})

    provider = LoginProvider(load_config=lambda: {"profiles": {"p": {"login_session": LOGIN_SESSION}}},
                             client_creator=creator, profile_name="p", token_cache=JSONFileCache(os.path.dirname(path)))
    return provider.load().get_frozen_credentials()


def test_share_mode_with_botocore_refreshing_the_same_file_in_between(sandbox, em, moto_server, tmp_path):
    pytest.importorskip("awscrt")
    sandbox.write_config(login_config(em, cli_cache="share"))
    sign_in(sandbox, tmp_path)
    path = os.path.join(sandbox.home, ".aws", "login", "cache", CLI_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        shared = json.load(f)
    assert set(shared) == {"accessToken", "tokenType", "clientId", "refreshToken", "idToken", "dpopKey", "signInRegion"}
    assert shared["signInRegion"] == "eu-west-1"
    assert set(shared["accessToken"]) == {"accessKeyId", "secretAccessKey", "sessionToken", "accountId", "expiresAt"}
    assert shared["dpopKey"].startswith("-----BEGIN EC PRIVATE KEY-----\n")
    # botocore refreshes the file (rotating the refresh token); credproc takes the newer copy
    sdk = botocore_refresh(sandbox, em)
    assert em.refreshes() == 1
    age(sandbox, 300)
    doc = sandbox.credentials("me")
    assert doc["AccessKeyId"] == sdk.access_key and em.refreshes() == 1
    # credproc refreshes next, with botocore's (newest) refresh token, and writes the file for it
    age(sandbox, 300)
    with open(path) as f:
        doc2 = json.load(f)
    doc2["accessToken"]["expiresAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 200))
    with open(path, "w") as f:
        json.dump(doc2, f)
    doc = sandbox.credentials("me")
    assert em.refreshes() == 2 and em.count("Reuse") == 0
    with open(path) as f:
        assert json.load(f)["accessToken"]["accessKeyId"] == doc["AccessKeyId"]
    # and botocore goes on from credproc's refresh: nobody ever presented a spent token
    botocore_refresh(sandbox, em)
    assert em.refreshes() == 3 and em.count("Reuse") == 0 and em.count("Error:TOKEN_EXPIRED") == 0
    # logout removes credproc's copy and, in share mode, the CLI's file (as aws logout)
    r = sandbox.run("logout", "--role", "me")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(path) and session_state(sandbox) is None


def test_status_logout_doctor_and_setup(sandbox, em, moto_server, tmp_path, dead_url):
    sandbox.write_config(login_config(em, sts=moto_server.url))
    sign_in(sandbox, tmp_path)
    path, _ = _cli_file_from_the_cli(sandbox, em, "2030-01-01T00:00:00Z")  # the CLI's own sign-in beside ours
    r = sandbox.run("status", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    (session,) = [s for s in report["sessions"] if s["type"] == "login"]
    assert session["state"] == "valid" and session["login_session"] == LOGIN_SESSION
    assert 600 < session["credentials_seconds_left"] <= 900 and session["session_seconds_left"] > 11 * 3600
    (me,) = [x for x in report["roles"] if x["role"] == "me"]
    assert me["state"] == "valid", me  # 15-minute credentials are valid for this source
    table = sandbox.run("status").stdout
    assert b"aws console sign-in as " + LOGIN_SESSION.encode() in table and b"credentials: " in table
    for secret in secrets_of(session_state(sandbox)):
        assert secret not in r.stdout.decode() + table.decode()
    r = sandbox.run("doctor")
    out = r.stdout.decode() + r.stderr.decode()
    assert f"the AWS Sign-In endpoint {em.token_url} is reachable" in out, out
    r = sandbox.run("setup")
    assert r.returncode == 0, r.stderr
    with open(sandbox.aws_config) as f:
        aws_config = f.read()
    assert "[profile me]" in aws_config and "--role me" in aws_config and "[profile deploy]" in aws_config
    # read mode: logout removes credproc's copy only, never the CLI's file
    r = sandbox.run("logout", "--role", "me")
    assert r.returncode == 0 and b"removed the AWS console sign-in" in r.stdout, r.stdout + r.stderr
    assert session_state(sandbox) is None and os.path.exists(path)
    sandbox.write_config(login_config(em, sts=moto_server.url).replace(em.url, dead_url))
    r = sandbox.run("doctor")
    assert r.returncode == 12 and dead_url in r.stdout.decode() + r.stderr.decode()


def test_the_aws_cli_and_boto3_consume_the_credential_process_profile(sandbox, em, moto_server, tmp_path):
    from tests.peers.consumers import aws_cli_caller_arn, aws_cli_v2_available, aws_cli_v2_caller_arn, boto3_caller_arn

    sandbox.write_config(login_config(em, sts=moto_server.url))
    sign_in(sandbox, tmp_path)
    sandbox.add_aws_profile("me", "me", moto_server.url)
    sandbox.add_aws_profile("deploy", "deploy", moto_server.url)
    assert ":assumed-role/ConsoleUser/" in aws_cli_caller_arn(sandbox.env, "me")
    assert ":assumed-role/ConsoleUser/" in boto3_caller_arn(sandbox.env, "me")
    assert ":assumed-role/Deploy/" in boto3_caller_arn(sandbox.env, "deploy")
    ok, reason = aws_cli_v2_available()
    if ok:  # the AWS CLI v2 (Debian's 2.9) takes the 15-minute credentials too
        assert ":assumed-role/ConsoleUser/" in aws_cli_v2_caller_arn(sandbox.env, "me", moto_server.url)
    elif os.environ.get("CI"):
        pytest.fail(reason)
    assert em.count("CreateOAuth2Token") == 1
