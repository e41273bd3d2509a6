"""Issue 10 against real peers: a real Secret Service (gnome-keyring on a private D-Bus session bus,
checked from outside with secret-tool), the Linux kernel keyring (checked with keyctl), and moto
in auth mode (SigV4 and IAM enforced) for import, rotation and the chain, running the real credproc
executable in a Sandbox."""

import json
import os
import subprocess
import sys

import boto3
import botocore.exceptions
import pytest

from tests.peers.moto import CountingProxy, MotoServer
from tests.peers.secret_service import SecretService, missing
from tests.pty_helper import PtyProcess
from tests.sandbox import caller_arn, credproc_exe

ACCOUNT = "123456789012"


@pytest.fixture
def secret_service(tmp_path):
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with SecretService(tmp_path) as ss:
        yield ss


@pytest.fixture
def ks(sandbox, secret_service):
    """The sandbox, talking to the private Secret Service."""
    for var in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"):
        sandbox.env[var] = secret_service.env[var]
    sandbox.ss = secret_service
    return sandbox


@pytest.fixture(scope="module")
def moto_auth():
    server = MotoServer(auth_after=100)
    iam = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDADMIN",
                       aws_secret_access_key="x")
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="admin")["AccessKey"]
    server.admin = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1",
                                aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
    server.set_auth(0)
    server.users = 0
    yield server
    server.stop()


def new_user(moto_auth):
    """A fresh IAM user allowed to manage its own keys and to assume its own role: (key id, secret, role ARN)."""
    moto_auth.users += 1
    name = f"user{moto_auth.users}"
    admin = moto_auth.admin
    admin.create_user(UserName=name)
    admin.put_user_policy(UserName=name, PolicyName="self", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "sts:AssumeRole", "sts:GetCallerIdentity", "iam:ListAccessKeys", "iam:CreateAccessKey",
            "iam:DeleteAccessKey"]}]}))
    k = admin.create_access_key(UserName=name)["AccessKey"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{name}"}}]}
    role = admin.create_role(RoleName=f"Deploy-{name}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return k["AccessKeyId"], k["SecretAccessKey"], role


def config(url, role_arn, keys='profile = "corp-user"', settings=""):
    return f"""
[settings]
sts_endpoint_url = "{url}"
{settings}
[idp.corp]
type = "iam"
{keys}
iam_endpoint_url = "{url}"
[role.deploy]
idp = "corp"
arn = "{role_arn}"
session_name = "ci"
"""


def identity(url, key_id, secret):
    sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key_id,
                       aws_secret_access_key=secret)
    return sts.get_caller_identity()["Arn"]


def files_holding(root, secret):
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    if secret.encode() in f.read():
                        found.append(p)
            except OSError:
                pass
    return found


def keyring_item(ks):
    text = ks.ss.lookup("corp")
    return json.loads(text) if text else None


# -- keys import, and the chain over keys in the keyring ------------------------------------------------
def test_import_moves_the_keys_into_the_secret_service_and_no_file_keeps_the_secret(ks, moto_auth, tmp_path):
    key_id, secret, role = new_user(moto_auth)
    ks.write_static_keys(key_id=key_id, secret=secret)
    with open(ks.aws_credentials, "a") as f:
        f.write("[other]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = other-secret\n")
    ks.write_config(config(moto_auth.url, role))
    r = ks.run("keys", "import", "--idp", "corp", "--from-profile", "corp-user", "--yes")
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert secret not in out + r.stderr.decode()
    assert keyring_item(ks) == {"AccessKeyId": key_id, "SecretAccessKey": secret}  # seen from outside: secret-tool
    creds_file = open(ks.aws_credentials).read()
    assert key_id not in creds_file and "[other]" in creds_file and "other-secret" in creds_file
    assert 'keys = "keyring"' in open(ks.config_path).read()
    # the chain now takes its keys from the Secret Service, through SigV4-checking moto
    doc = ks.credentials("deploy")
    assert caller_arn(doc, moto_auth.url) == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.split('/')[-1]}/ci"
    # nothing credproc wrote holds the secret: config, its backup, the credentials file and its
    # backup, the cache, the key; nor the keyring daemon's own (encrypted) files
    assert files_holding(str(tmp_path), secret) == []
    # and the second call is a cache hit that never touches the keyring: it works with the Secret Service gone
    ks.ss.stop_daemon()
    assert ks.credentials("deploy") == doc


def test_keys_in_a_locked_or_absent_keyring_are_a_clear_error(ks, moto_auth):
    key_id, secret, role = new_user(moto_auth)
    ks.write_config(config(moto_auth.url, role, keys='keys = "keyring"'))
    r = ks.run("--role", "deploy")
    assert r.returncode == 3 and r.stdout == b""
    assert "holds no keys for it" in r.stderr.decode() and "credproc keys add --idp corp" in r.stderr.decode()
    ks.ss.stop_daemon()
    r = ks.run("--role", "deploy")
    err = r.stderr.decode()
    assert r.returncode == 13 and r.stdout == b"" and len(err.splitlines()) == 1, err
    assert err.startswith("credproc: ") and "keyring" in err and "Traceback" not in err


# -- rotation against moto in auth mode ----------------------------------------------------------------
def rejected(url, key_id, secret):
    try:
        identity(url, key_id, secret)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None


def test_rotate_replaces_the_key_and_the_old_one_is_rejected(ks, moto_auth):
    key_id, secret, role = new_user(moto_auth)
    ks.ss.store("corp", json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret}))
    ks.write_config(config(moto_auth.url, role, keys='keys = "keyring"'))
    r = ks.run("keys", "rotate", "--idp", "corp")
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    new = keyring_item(ks)
    assert new["AccessKeyId"] != key_id
    assert identity(moto_auth.url, new["AccessKeyId"], new["SecretAccessKey"]).endswith(":user/" + f"user{moto_auth.users}")
    assert rejected(moto_auth.url, key_id, secret) == "InvalidClientTokenId"
    assert new["SecretAccessKey"] not in r.stdout.decode() + r.stderr.decode()
    assert caller_arn(ks.credentials("deploy"), moto_auth.url).endswith("/ci")
    assert files_holding(ks.root, new["SecretAccessKey"]) == [] and files_holding(ks.root, secret) == []


@pytest.mark.parametrize("step", ["create", "verify", "store", "delete"])
def test_rotate_with_a_failure_at_each_step_leaves_a_working_key(ks, moto_auth, step):
    key_id, secret, role = new_user(moto_auth)
    user = f"user{moto_auth.users}"
    proxy = CountingProxy(moto_auth.url)
    try:
        def fail(action, params, signer):
            if step == "create" and action == "CreateAccessKey":
                return 403, "AccessDenied"
            if step == "verify" and action == "GetCallerIdentity" and signer != key_id:
                return 403, "AccessDenied"
            if step == "store" and action == "CreateAccessKey":
                ks.ss.stop_daemon()  # the keyring goes away between reading the old key and storing the new
            if step == "delete" and action == "DeleteAccessKey" and params.get("AccessKeyId") == [key_id]:
                return 403, "AccessDenied"
            return None

        proxy.fail = fail
        ks.ss.store("corp", json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret}))
        ks.write_config(config(proxy.url, role, keys='keys = "keyring"'))
        r = ks.run("keys", "rotate", "--idp", "corp")
    finally:
        proxy.stop()
    err = r.stderr.decode()
    assert r.returncode != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    # it failed at the step meant, not before
    assert proxy.count("CreateAccessKey") == 1, err
    assert {"create": "CreateAccessKey denied", "verify": "GetCallerIdentity denied", "store": "keyring",
            "delete": "is stored and works"}[step] in err
    if step == "verify":
        assert "rotation undone" in err
    if step == "store":  # the keyring cannot be read back: nothing is deleted at IAM, both keys are named
        assert "rotation NOT undone" in err and key_id in err
    if step == "store":
        ks.ss.start_daemon()  # the same keyring files, unlocked again
    stored = keyring_item(ks)
    assert identity(moto_auth.url, stored["AccessKeyId"], stored["SecretAccessKey"]).endswith(f":user/{user}")
    keys = [k["AccessKeyId"] for k in moto_auth.admin.list_access_keys(UserName=user)["AccessKeyMetadata"]]
    if step == "store":
        assert stored == {"AccessKeyId": key_id, "SecretAccessKey": secret} and len(keys) == 2 and key_id in keys
        return
    if step == "delete":
        assert stored["AccessKeyId"] != key_id and sorted(keys), err
        assert sorted(keys) == sorted([key_id, stored["AccessKeyId"]])
        assert f"--access-key-id {key_id}" in err and "is stored and works" in err
    else:
        assert stored == {"AccessKeyId": key_id, "SecretAccessKey": secret} and keys == [key_id]  # as before


# -- the keyring-wrapped cache key ------------------------------------------------------------------------
def kernel_key(description):
    r = subprocess.run(["keyctl", "search", "@u", "user", description], capture_output=True)
    return r.stdout.decode().strip() if r.returncode == 0 else None


def test_cache_key_wrapped_by_the_keyring_and_kept_in_the_kernel_keyring(ks, moto_auth):
    from credproc.core import keywrap
    from tests.test_keys import need_kernel_keyring

    need_kernel_keyring()

    key_id, secret, role = new_user(moto_auth)
    ks.write_static_keys(key_id=key_id, secret=secret)
    ks.write_config(config(moto_auth.url, role))
    first = ks.credentials("deploy")  # a plain key and a cache first: switching replaces both
    assert len(open(ks.key_path, "rb").read()) == 32
    ks.write_config(config(moto_auth.url, role, settings='cache_key = "keyring"'))
    assert "! cache key " in ks.run("doctor").stdout.decode()  # still the plain one: a warning
    doc = ks.credentials("deploy")
    assert doc != first  # a new cache under the new key
    blob = open(ks.key_path, "rb").read()
    assert keywrap.is_wrapped(blob)  # the file holds only the wrapped key
    assert ks.ss.lookup("@cache-key-wrap")  # the wrapping key is in the Secret Service
    desc = keywrap.kernel_description(blob)
    serial = kernel_key(desc)
    try:
        assert serial, "the unwrapped key is not in the kernel keyring"
        out = ks.run("doctor").stdout.decode()
        assert "✓ cache key wrapped by the OS keyring (" in out and "kept in the kernel keyring between hits" in out
        # a hit needs neither STS nor the Secret Service
        ks.ss.stop_daemon()
        assert ks.credentials("deploy") == doc
        # without the kernel's copy and without the keyring: a copy of the home directory decrypts nothing
        subprocess.run(["keyctl", "unlink", serial, "@u"], check=True, capture_output=True)
        r = ks.run("--role", "deploy")
        err = r.stderr.decode()
        assert r.returncode == 13 and r.stdout == b"" and len(err.splitlines()) == 1, err
        assert "keyring" in err and "Traceback" not in err
        # with the keyring back, the full path unwraps it and puts it back in the kernel keyring
        ks.ss.start_daemon()
        assert ks.credentials("deploy") == doc
        serial = kernel_key(desc)
        assert serial
        timeout = subprocess.run(["keyctl", "timeout", serial, "3600"], capture_output=True)  # it has one
        assert timeout.returncode == 0
    finally:
        if serial:
            subprocess.run(["keyctl", "unlink", serial, "@u"], capture_output=True)


def test_no_keyring_falls_back_only_where_configured(ks, moto_auth):
    key_id, secret, role = new_user(moto_auth)
    ks.write_static_keys(key_id=key_id, secret=secret)
    ks.ss.stop_daemon()
    ks.write_config(config(moto_auth.url, role, settings='cache_key = "keyring"'))
    r = ks.run("--role", "deploy")
    assert r.returncode == 13 and "keyring" in r.stderr.decode()
    ks.write_config(config(moto_auth.url, role, settings='cache_key = "keyring"\ncache_key_fallback = "file"'))
    assert caller_arn(ks.credentials("deploy"), moto_auth.url).endswith("/ci")
    assert not os.path.exists(ks.key_path)
    assert os.path.exists(os.path.join(os.path.dirname(ks.key_path), "cache-fallback.key"))


# -- keys_command, keys add -----------------------------------------------------------------------------
def test_keys_command_runs_only_when_sts_needs_the_keys(sandbox, moto_auth, tmp_path):
    key_id, secret, role = new_user(moto_auth)
    log = tmp_path / "pm-calls"
    pm = tmp_path / "fake-pass"
    pm.write_text(f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
                  f"print(json.dumps({{'AccessKeyId': {key_id!r}, 'SecretAccessKey': {secret!r}}}, indent=2))\n")
    pm.chmod(0o700)
    sandbox.write_config(config(moto_auth.url, role, keys=f'keys_command = "{pm} show aws/corp"'))
    doc = sandbox.credentials("deploy")
    assert caller_arn(doc, moto_auth.url).endswith("/ci")
    assert sandbox.credentials("deploy") == doc  # a cache hit
    assert log.read_text() == "show aws/corp\n"  # the password manager ran once
    assert [p for p in files_holding(sandbox.root, secret) if p != str(pm)] == []


def test_keys_add_asks_on_the_terminal_with_echo_off(ks, moto_auth):
    key_id, secret, role = new_user(moto_auth)
    ks.write_config(config(moto_auth.url, role, keys='keys = "keyring"'))
    term = PtyProcess([credproc_exe(), "keys", "add", "--idp", "corp"], {**ks.env})
    term.expect("AWS access key ID: ")
    term.send(key_id)
    term.expect("AWS secret access key: ")
    term.send(secret)
    code, out, err = term.finish()
    assert code == 0, out + err
    assert secret.encode() not in term.screen + out + err
    assert b"stored the keys of arn:aws:iam::123456789012:user/" in out
    assert keyring_item(ks) == {"AccessKeyId": key_id, "SecretAccessKey": secret}
    assert caller_arn(ks.credentials("deploy"), moto_auth.url).endswith("/ci")
    assert files_holding(ks.root, secret) == []


def test_keys_add_refuses_keys_sts_does_not_accept(ks, moto_auth):
    key_id, secret, role = new_user(moto_auth)
    ks.write_config(config(moto_auth.url, role, keys='keys = "keyring"'))
    term = PtyProcess([credproc_exe(), "keys", "add", "--idp", "corp"], {**ks.env})
    term.expect("AWS access key ID: ")
    term.send(key_id)
    term.expect("AWS secret access key: ")
    term.send(secret[:-4] + "XXXX")
    code, out, err = term.finish()
    assert code == 5 and b"SignatureDoesNotMatch" in err and keyring_item(ks) is None


def test_doctor_says_where_the_keys_live(ks, moto_auth):
    key_id, secret, role = new_user(moto_auth)
    ks.write_static_keys(key_id=key_id, secret=secret)
    ks.write_config(config(moto_auth.url, role))
    out = ks.run("doctor").stdout.decode()
    assert "! idp corp: keys in plain text in profile corp-user" in out
    assert "credproc keys import --idp corp --from-profile corp-user" in out
    r = ks.run("keys", "import", "--idp", "corp", "--from-profile", "corp-user", "--yes")
    assert r.returncode == 0, r.stderr.decode()
    out = ks.run("doctor").stdout.decode()
    assert "✓ idp corp: keys in the OS keyring (" in out and secret not in out


def test_rotate_goes_through_the_mfa_session_when_the_idp_has_mfa_serial(ks, moto_server, sts, mfa_counter):
    # moto in auth mode cannot issue usable GetSessionToken keys (test-peers.md), so this one runs in
    # no-auth mode and checks *who signed* each IAM call at the proxy
    import uuid

    name = f"mfa-{uuid.uuid4().hex[:8]}"
    admin = boto3.client("iam", endpoint_url=moto_server.url, region_name="us-east-1", aws_access_key_id="AKIDADMIN",
                         aws_secret_access_key="x")
    admin.create_user(UserName=name)
    k = admin.create_access_key(UserName=name)["AccessKey"]
    signers = []
    sts.fail = lambda action, params, signer: signers.append((action, signer))
    ks.ss.store("corp", json.dumps({"AccessKeyId": k["AccessKeyId"], "SecretAccessKey": k["SecretAccessKey"]}))
    cmd, count = mfa_counter
    ks.write_config(config(sts.url, "arn:aws:iam::123456789012:role/Deploy", keys='keys = "keyring"').replace(
        'iam_endpoint_url', f'mfa_serial = "arn:aws:iam::123456789012:mfa/{name}"\nmfa_command = "{cmd}"\niam_endpoint_url'))
    r = ks.run("keys", "rotate", "--idp", "corp")
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert count() == 1 and sts.count("GetSessionToken") == 1
    iam_signers = {s for a, s in signers if a in ("ListAccessKeys", "CreateAccessKey", "DeleteAccessKey")}
    assert len(iam_signers) == 1 and iam_signers != {k["AccessKeyId"]}  # the session's key, not the user's
    new = keyring_item(ks)
    keys = [m["AccessKeyId"] for m in admin.list_access_keys(UserName=name)["AccessKeyMetadata"]]
    assert keys == [new["AccessKeyId"]] and new["AccessKeyId"] != k["AccessKeyId"]


def test_keys_remove_asks_first_and_then_deletes_the_item(ks, moto_auth):
    key_id, secret, role = new_user(moto_auth)
    ks.ss.store("corp", json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret}))
    ks.write_config(config(moto_auth.url, role, keys='keys = "keyring"'))
    r = ks.run("keys", "remove", "--idp", "corp")  # no terminal to confirm on, no --yes: nothing happens
    assert r.returncode == 2 and "--yes" in r.stderr.decode() and keyring_item(ks) is not None
    r = ks.run("keys", "remove", "--idp", "corp", "--yes")
    assert r.returncode == 0, r.stderr.decode()
    assert keyring_item(ks) is None
    assert "still has keys = \"keyring\"" in r.stdout.decode()
    r = ks.run("keys", "import", "--idp", "corp", "--from-profile", "nowhere", "--yes")
    assert r.returncode == 3 and "no access keys for that profile" in r.stderr.decode()
    r = ks.run("keys", "rotate", "--idp", "nosuch")
    assert r.returncode == 3 and "no [idp.nosuch] holding IAM user keys (those that do: corp)" in r.stderr.decode()
