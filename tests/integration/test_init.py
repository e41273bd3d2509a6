"""credproc init against moto STS, the installed command in a throwaway HOME: from nothing to the
first credentials with flags only (and through the AWS CLI with the profile it wrote), timed."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.integration.test_sso import em  # noqa: F401 (a fixture)

from tests.sandbox import STATIC_KEY_ID

ARN = "arn:aws:iam::111111111111:role/Admin"


def iam_init_args(sts_url):
    return ["init", "--source", "iam", "--idp", "corp", "--profile", "corp-user", "--role", "admin",
            "--arn", ARN, "--region", "us-east-1", "--sts-endpoint-url", sts_url]


def test_init_iam_from_flags_writes_a_commented_config_and_the_profile_and_gets_credentials(sandbox, sts):
    sandbox.write_static_keys()
    started = time.monotonic()
    r = sandbox.run(*iam_init_args(sts.url))
    took = time.monotonic() - started
    out = r.stdout.decode()
    assert r.returncode in (0, 12), r.stderr.decode()  # 12: a doctor check failed (e.g. no terminal here)
    assert "== credproc doctor" in out and "role admin (account 111111111111): credentials valid until" in out
    text = open(sandbox.config_path).read()
    assert text.startswith("# Written by `credproc init`")
    assert 'profile = "corp-user"  # AWS profile holding' in text and f'arn = "{ARN}"' in text
    assert oct(os.stat(sandbox.config_path).st_mode & 0o777) == "0o600"
    aws = open(sandbox.aws_config).read()
    assert "[profile admin]" in aws and "--role admin --config" in aws and "[services credproc-admin]" in aws
    # the profile works for a consumer (the AWS CLI v1 in the venv reads [services])
    cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), "aws"), "sts", "get-caller-identity",
                          "--profile", "admin", "--output", "json"], env=sandbox.env, capture_output=True, timeout=60)
    assert cli.returncode == 0, cli.stderr.decode()
    assert json.loads(cli.stdout)["Arn"].startswith("arn:aws:sts::111111111111:assumed-role/Admin/")
    print(f"\ninit (iam, flags) to first credentials: {took:.2f} s")
    assert STATIC_KEY_ID not in out  # never prints the keys (the id is not secret, but it is not needed)


def test_init_never_replaces_a_config_and_names_missing_flags_without_a_terminal(sandbox, sts):
    r = sandbox.run("init", "--source", "sso", "--start-url", "https://my-org.awsapps.com/start")
    assert r.returncode == 2 and b"--region is needed" in r.stderr and b"Traceback" not in r.stderr
    assert not os.path.exists(sandbox.config_path)
    sandbox.write_config("# mine\n")
    r = sandbox.run(*iam_init_args(sts.url))
    assert r.returncode == 3 and b"never replaces it" in r.stderr
    assert open(sandbox.config_path).read() == "# mine\n"


def test_init_sso_from_flags_writes_a_valid_config_without_checks(sandbox):
    r = sandbox.run("init", "--source", "sso", "--idp", "corp-sso", "--start-url", "https://my-org.awsapps.com/start",
                    "--region", "eu-west-1", "--account-id", "111111111111", "--role-name", "AdministratorAccess",
                    "--role", "prod", "--no-check")
    assert r.returncode == 0, r.stderr.decode()
    text = open(sandbox.config_path).read()
    assert 'start_url = "https://my-org.awsapps.com/start"' in text and 'role_name = "AdministratorAccess"' in text
    assert "[profile prod]" in open(sandbox.aws_config).read()
    assert sandbox.run("setup", "--print").returncode == 0  # the written config loads


def test_init_walk_through_on_a_terminal_asks_each_question_then_the_mfa_code(sandbox, sts):
    from tests.pty_helper import PtyProcess
    from tests.sandbox import credproc_exe

    sandbox.write_static_keys()
    started = time.monotonic()
    p = PtyProcess([credproc_exe(), "init", "--sts-endpoint-url", sts.url], sandbox.env)
    p.expect("Which identity source gives you AWS access?")
    p.expect("Choose 1-7: ")
    p.send("2")  # cas, iam, login, oidc, process, saml, sso
    p.expect("Name for this identity source in credproc [work]: ")
    p.send("corp")
    p.expect("AWS region (e.g. eu-west-1) (empty: none): ")
    p.send("us-east-1")
    p.expect("(e.g. corp-user): ")
    p.send("corp-user")
    p.expect("MFA device ARN")
    p.send("arn:aws:iam::123456789012:mfa/alice")
    p.expect("Name of the role (and of its AWS profile) [admin]: ")
    p.send("")
    p.expect("ARN of the role to assume")
    p.send("not-an-arn")
    p.expect("an IAM role ARN")  # a bad answer is asked again
    p.send(ARN)
    p.expect("MFA code for arn:aws:iam::123456789012:mfa/alice: ", timeout=60)
    p.send("123456")
    code, out, err = p.finish(timeout=60)
    took = time.monotonic() - started
    assert code == 0, err
    assert b"role admin (account 111111111111): credentials valid until" in out
    assert sts.actions[-2:] == ["GetSessionToken", "AssumeRole"]
    assert 'mfa_serial = "arn:aws:iam::123456789012:mfa/alice"' in open(sandbox.config_path).read()
    print(f"\ninit (iam + MFA, interactive, answers typed at once) to first credentials: {took:.2f} s")


def test_init_cas_from_flags_then_the_password_prompt_of_the_real_call(sandbox, moto_server):
    from tests.integration.test_cas import PASSWORD, ROLE_A
    from tests.peers.cas_emulator import CasEmulator
    from tests.pty_helper import PtyProcess
    from tests.sandbox import credproc_exe

    users = {"alice": {"password": PASSWORD, "attributes": {"awsroles": [ROLE_A]}, "mfa": None}}
    with CasEmulator(moto_server.url, users, rbac_enabled=True, principal_attribute_name="awsroles") as cas:
        started = time.monotonic()
        p = PtyProcess([credproc_exe(), "init", "--source", "cas", "--idp", "campus", "--url", cas.url,
                        "--username", "alice", "--mfa", "none", "--role", "campus", "--arn", ROLE_A, "--yes"],
                       sandbox.env)
        p.expect("assword", timeout=60)
        p.send(PASSWORD)
        code, out, err = p.finish(timeout=60)
        took = time.monotonic() - started
    assert code == 0, (err, p.screen)
    assert b"role campus" in out and b"credentials valid until" in out
    assert b"awsSts endpoint" in out  # doctor ran
    print(f"\ninit (cas, flags + password typed at once) to first credentials: {took:.2f} s")


def test_init_oidc_from_flags_then_the_device_flow_of_the_real_call(sandbox, op, sts):
    from tests.integration.conftest import ROLE_DEV
    from tests.peers.browser import complete_device_flow
    from tests.pty_helper import PtyProcess
    from tests.sandbox import credproc_exe

    started = time.monotonic()
    p = PtyProcess([credproc_exe(), "init", "--source", "oidc", "--idp", "corp", "--issuer", op.issuer,
                    "--client-id", op.client_id, "--flow", "device", "--role", "dev", "--arn", ROLE_DEV,
                    "--sts-endpoint-url", sts.url, "--yes"], {**sandbox.env, "BROWSER": "true"})
    p.expect("(or open ", timeout=60)
    p.expect(")")
    uri = p.screen.decode().split("(or open ", 1)[1].split(")", 1)[0]
    complete_device_flow(uri, login="alice")
    code, out, err = p.finish(timeout=60)
    took = time.monotonic() - started
    assert code == 0, (err, p.screen)
    assert b"role dev" in out and b"credentials valid until" in out
    print(f"\ninit (oidc device flow, browser scripted) to first credentials: {took:.2f} s")


def test_init_saml_from_flags_then_the_password_prompt_of_the_real_call(sandbox, moto_server):
    from tests.integration.test_saml import ADMIN, PASSWORDS, USERS
    from tests.peers import saml_idp
    from tests.peers.saml_idp import SamlIdp
    from tests.peers.saml_sts import SamlStsProxy
    from tests.pty_helper import PtyProcess
    from tests.sandbox import credproc_exe

    reason = saml_idp.missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    sts = SamlStsProxy(moto_server.url)
    try:
        with SamlIdp(USERS) as server:
            started = time.monotonic()
            p = PtyProcess([credproc_exe(), "init", "--source", "saml", "--idp", "campus", "--url", server.ecp_url,
                            "--flow", "ecp", "--username", "bob", "--role", "admin", "--arn", ADMIN,
                            "--sts-endpoint-url", sts.url, "--yes"], sandbox.env)
            p.expect("assword", timeout=60)
            p.send(PASSWORDS["bob"])
            code, out, err = p.finish(timeout=60)
            took = time.monotonic() - started
    finally:
        sts.stop()
    assert code == 0, (err, p.screen)
    assert b"role admin" in out and b"credentials valid until" in out
    print(f"\ninit (saml ecp, flags + password typed at once) to first credentials: {took:.2f} s")


def test_init_sso_all_roles_signs_in_and_writes_every_account_and_role(sandbox, em):  # noqa: F811
    from credproc import config
    from tests.integration.test_sso import START_URL, approve_device_code
    from tests.pty_helper import PtyProcess
    from tests.sandbox import credproc_exe

    started = time.monotonic()
    p = PtyProcess([credproc_exe(), "init", "--source", "sso", "--idp", "corp-sso", "--start-url", START_URL,
                    "--region", "eu-west-1", "--flow", "device", "--set", f"oidc_endpoint_url={em.oidc_url}",
                    "--set", f"portal_endpoint_url={em.portal_url}", "--all-roles", "--yes"], sandbox.env)
    approve_device_code(p)
    code, out, err = p.finish(timeout=60)
    took = time.monotonic() - started
    assert code == 0, (err, p.screen)
    roles = config.load(sandbox.config_path).roles
    assert {"production-administratoraccess", "production-readonly", "sandbox-developer"} <= set(roles)
    assert "[profile sandbox-developer]" in open(sandbox.aws_config).read()
    first = time.monotonic()
    assert sandbox.run("--role", "sandbox-developer").returncode == 0  # the sign-in is cached: no prompt
    print(f"\ninit (sso, all roles, device flow approved at once) to written roles: {took:.2f} s; "
          f"first credentials {time.monotonic() - first:.2f} s later")


def test_init_iam_finds_the_users_mfa_device(sandbox, moto_server):
    import uuid

    import boto3

    iam = boto3.client("iam", endpoint_url=moto_server.url, region_name="us-east-1",
                       aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
    user = f"init-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=user)["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName=user, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sandbox.write_static_keys(key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    r = sandbox.run("init", "--source", "iam", "--idp", "corp", "--profile", "corp-user", "--role", "admin",
                    "--arn", ARN, "--region", "us-east-1", "--sts-endpoint-url", moto_server.url,
                    "--set", f"iam_endpoint_url={moto_server.url}", "--yes", "--no-check")
    assert r.returncode == 0, r.stderr.decode()
    assert f"found mfa_serial = {serial}".encode() in r.stdout
    assert f'mfa_serial = "{serial}"' in open(sandbox.config_path).read()
