"""moto in auth mode: SigV4 and IAM trust policies enforced, so bad keys and denied roles are real."""

import json

import boto3
import pytest

from tests.peers.moto import MotoServer


@pytest.fixture(scope="module")
def authed():
    """Users alice (allowed) and bob (not trusted by the role); then auth switched on."""
    server = MotoServer(auth_after=1000)
    iam = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="AKIDADMIN", aws_secret_access_key="x")
    keys = {}
    for user in ("alice", "bob", "carol"):
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="assume", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:GetCallerIdentity"],
                                                    "Resource": "*"}]}))
        k = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = (k["AccessKeyId"], k["SecretAccessKey"])
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"}}]}
    iam.create_role(RoleName="Deploy", AssumeRolePolicyDocument=json.dumps(trust))
    iam.delete_access_key(UserName="carol", AccessKeyId=keys["carol"][0])
    server.set_auth(0)
    yield server, keys
    server.stop()


def config(url):
    return f"""
[settings]
sts_endpoint_url = "{url}"
[idp.corp]
type = "iam"
profile = "corp-user"
[role.deploy]
idp = "corp"
arn = "arn:aws:iam::123456789012:role/Deploy"
session_name = "ci"
"""


def run(sandbox, authed, key_id, secret):
    server, _ = authed
    sandbox.write_static_keys(key_id=key_id, secret=secret)
    sandbox.write_config(config(server.url))
    return sandbox.run("--role", "deploy")


def test_a_trusted_user_gets_the_role(sandbox, authed):
    r = run(sandbox, authed, *authed[1]["alice"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    sts = boto3.client("sts", endpoint_url=authed[0].url, region_name="us-east-1", aws_access_key_id=doc["AccessKeyId"],
                       aws_secret_access_key=doc["SecretAccessKey"], aws_session_token=doc["SessionToken"])
    assert sts.get_caller_identity()["Arn"] == "arn:aws:sts::123456789012:assumed-role/Deploy/ci"


def test_a_wrong_secret_is_reported_as_such(sandbox, authed):
    key_id, secret = authed[1]["alice"]
    r = run(sandbox, authed, key_id, secret[:-4] + "XXXX")
    assert r.returncode == 5 and r.stdout == b""
    err = r.stderr.decode()
    assert err.startswith("credproc: the secret access key of profile corp-user (AKIA") and "wrong" in err
    assert secret[:-4] not in err


def test_a_deleted_key_is_reported_as_such(sandbox, authed):
    r = run(sandbox, authed, *authed[1]["carol"])
    assert r.returncode == 5
    assert "does not recognise the credentials of profile corp-user" in r.stderr.decode()
    assert "deleted" in r.stderr.decode()


def test_assume_role_denied_by_the_trust_policy_names_role_and_caller(sandbox, authed):
    r = run(sandbox, authed, *authed[1]["bob"])
    assert r.returncode == 6 and r.stdout == b""
    err = r.stderr.decode().strip()
    assert err.startswith("credproc: arn:aws:iam::123456789012:user/bob (from profile corp-user (AKIA")
    assert "is not allowed to assume arn:aws:iam::123456789012:role/Deploy" in err
    assert len(err.splitlines()) == 1
