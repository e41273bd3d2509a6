"""Real consumers run credproc as their credential_process and prove, with GetCallerIdentity, that
they used the assumed role: the AWS CLI, boto3, Terraform and the AWS SDK for JavaScript v3."""

import os

import pytest

from tests.integration.test_iam_moto import iam_config
from tests.peers import consumers

ROLE_ARN_PREFIX = "arn:aws:sts::222222222222:assumed-role/Audit/"


def require(available):
    ok, reason = available()
    if not ok:
        if os.environ.get("CI"):  # on CI machines the consumer must be there: a skip would hide a gap
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def audit_profile(sandbox, sts, tmp_path):
    """Profile 'audit': credproc --role audit (MFA session -> admin -> chained audit)."""
    script = tmp_path / "mfa.py"
    script.write_text("print('123456')\n")
    import sys

    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=f"{sys.executable} {script}"))
    sandbox.add_aws_profile("audit", "audit", sts.url)
    return sandbox


def test_aws_cli(audit_profile, sts):
    assert consumers.aws_cli_caller_arn(audit_profile.env, "audit").startswith(ROLE_ARN_PREFIX)
    assert sts.count("GetSessionToken") == 1


def test_boto3(audit_profile, sts):
    assert consumers.boto3_caller_arn(audit_profile.env, "audit").startswith(ROLE_ARN_PREFIX)
    # a second client process is served from the cache
    assert consumers.boto3_caller_arn(audit_profile.env, "audit").startswith(ROLE_ARN_PREFIX)
    assert sts.count("AssumeRole") == 2


def test_js_sdk(audit_profile, sts):
    require(consumers.node_available)
    assert consumers.js_sdk_caller_arn(audit_profile.env, "audit").startswith(ROLE_ARN_PREFIX)


def test_terraform(audit_profile, sts, tmp_path):
    require(consumers.terraform_available)
    arn = consumers.terraform_caller_arn(audit_profile.env, "audit", sts.url, str(tmp_path / "tf"),
                                         skip_credentials_validation=True, skip_requesting_account_id=True)
    assert arn.startswith(ROLE_ARN_PREFIX)
    assert sts.count("AssumeRole") == 2  # Terraform ran credproc twice (plan, apply); the second was a hit
