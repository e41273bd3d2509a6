"""Real consumers run credproc as their credential_process and prove, with GetCallerIdentity, that
they used the assumed role: the AWS CLI v1 and v2, boto3, Terraform, the AWS SDKs for JavaScript
v3 and v2, for Go v1 and v2, and for Ruby v3.

The AWS CLI v2, the Go SDKs and the Ruby SDK come from Debian (tests/peers/install-consumers.sh),
the JS SDKs from npm (tests/node). Each of those tests counts, with a wrapper around the real
credproc as the profile's credential_process, how many times the consumer runs credproc for two
GetCallerIdentity calls on one client (credproc hands out credentials with an hour left):

    AWS CLI v2 2.9    1 run per command; one command makes one call, so 2 runs for 2 commands
                      (it keeps no process credentials between commands)
    Go SDK v1 1.44    1 run for 2 calls (credentials.Credentials caches until expiry)
    Go SDK v2 1.17    1 run for 2 calls (aws.CredentialsCache, from config.LoadDefaultConfig)
    Ruby SDK 3.168    2 runs for 2 calls, both when the client is made: Aws::ProcessCredentials
                      runs the process in its constructor and RefreshingCredentials#initialize
                      runs it again; then nothing until 5 minutes before expiry
    JS SDK v2         1 run for 2 calls (AWS.ProcessCredentials loads in its constructor and is
                      refreshed only 15 s before expiry)

The first run of a test is a cache miss (GetSessionToken, AssumeRole admin, AssumeRole audit);
every further run is a cache hit that makes no STS call.
"""

import os

import pytest

from tests.integration.test_iam_moto import iam_config
from tests.peers import consumers
from tests.sandbox import credproc_exe

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


# --------------------------------------------------------------------------------------------
# More consumers, each counting its credproc runs through a wrapper


@pytest.fixture
def counted_audit(audit_profile, sts, tmp_path):
    """Profile 'counted': the real credproc --role audit through a wrapper that logs each run.
    Returns a function giving the number of runs so far."""
    log = tmp_path / "credproc-runs.log"
    wrapper = consumers.write_counting_wrapper(tmp_path / "counted-credproc", log, [credproc_exe()])
    with open(audit_profile.aws_config, "a") as f:
        f.write(f"[profile counted]\ncredential_process = {wrapper} --role audit\n"
                f"region = us-east-1\nendpoint_url = {sts.url}\n")
    return lambda: consumers.count_runs(log)


def assert_two_calls_as_audit(arns, sts):
    assert len(arns) == 2 and all(a.startswith(ROLE_ARN_PREFIX) for a in arns), arns
    assert sts.count("GetCallerIdentity") == 2  # both calls reached the endpoint given to the consumer
    # one cold chain; every later credproc run was a cache hit
    assert sts.count("GetSessionToken") == 1 and sts.count("AssumeRole") == 2


def test_aws_cli_v2(audit_profile, sts, counted_audit):
    require(consumers.aws_cli_v2_available)
    arns = [consumers.aws_cli_v2_caller_arn(audit_profile.env, "counted", sts.url) for _ in range(2)]
    assert_two_calls_as_audit(arns, sts)
    assert counted_audit() == 2  # one run per command: the CLI keeps no process credentials


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_go_sdk(audit_profile, sts, counted_audit, version):
    require(lambda: consumers.go_sdk_available(version))
    arns = consumers.go_sdk_caller_arns(version, audit_profile.env, "counted", sts.url, calls=2)
    assert_two_calls_as_audit(arns, sts)
    assert counted_audit() == 1  # cached on the client until expiry


def test_ruby_sdk(audit_profile, sts, counted_audit):
    require(consumers.ruby_sdk_available)
    arns = consumers.ruby_sdk_caller_arns(audit_profile.env, "counted", sts.url, calls=2)
    assert_two_calls_as_audit(arns, sts)
    assert counted_audit() == 2  # an SDK quirk: ProcessCredentials runs the process twice when made


def test_js_sdk_v2(audit_profile, sts, counted_audit):
    require(consumers.js_sdk_v2_available)
    arns = consumers.js_sdk_v2_caller_arns(audit_profile.env, "counted", sts.url, calls=2)
    assert_two_calls_as_audit(arns, sts)
    assert counted_audit() == 1  # cached on the credentials object until 15 s before expiry
