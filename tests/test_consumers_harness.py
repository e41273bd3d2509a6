"""Tests of the consumer harness (tests/peers/consumers.py) itself, with a fake credential_process.

Against moto in no-auth mode GetCallerIdentity with arbitrary keys returns moto's default
identity: enough to show that each consumer ran the profile's credential_process and reached
STS at the configured endpoint.
"""

import os
import sys
import time

import pytest

from tests.peers import consumers

FAKE_HELPER = r'''
import datetime, json, os, sys
with open(os.environ.get("FAKE_HELPER_LOG") or sys.argv[1], "a") as f:
    f.write("%d %s\n" % (os.getpid(), " ".join(sys.argv[1:])))
exp = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(hours=1)
json.dump({
    "Version": 1,
    "AccessKeyId": "AKIAEXAMPLEFAKE00001",
    "SecretAccessKey": "fakeSecretKeyForTheConsumerHarness000000",
    "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
}, sys.stdout)
'''


class FakeSetup:
    def __init__(self, tmp_path, sts_url, profile="p"):
        self.profile = profile
        self.home = tmp_path / "home"
        aws_dir = self.home / ".aws"
        aws_dir.mkdir(parents=True)
        for d in ("config", "cache", "data", "state"):
            (self.home / ("xdg-" + d)).mkdir()
        self.log = tmp_path / "helper-calls.log"
        self.log.write_text("")
        helper = tmp_path / "fake_helper.py"
        helper.write_text(FAKE_HELPER)
        for p in (sys.executable, str(helper), str(self.log)):
            assert " " not in p and "#" not in p and ";" not in p, p
        self.config = aws_dir / "config"
        self.config.write_text(
            f"[profile {profile}]\n"
            f"credential_process = {sys.executable} {helper} {self.log}\n"
            f"region = us-east-1\n"
            f"endpoint_url = {sts_url}\n"
        )
        self.credentials = aws_dir / "credentials"
        self.credentials.write_text("")
        self.env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", os.defpath),
            "AWS_CONFIG_FILE": str(self.config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials),
            "XDG_CONFIG_HOME": str(self.home / "xdg-config"),
            "XDG_CACHE_HOME": str(self.home / "xdg-cache"),
            "XDG_DATA_HOME": str(self.home / "xdg-data"),
            "XDG_STATE_HOME": str(self.home / "xdg-state"),
            "LANG": "C.UTF-8",
        }

    def calls(self):
        return len(self.log.read_text().splitlines())


@pytest.fixture
def setup(tmp_path, moto_server):
    return FakeSetup(tmp_path, moto_server.url)


def _assert_arn(arn):
    assert isinstance(arn, str) and arn.startswith("arn:aws:"), arn


def test_aws_cli(setup):
    arn = consumers.aws_cli_caller_arn(setup.env, setup.profile)
    _assert_arn(arn)
    assert setup.calls() == 1


def test_boto3(setup):
    arn = consumers.boto3_caller_arn(setup.env, setup.profile)
    _assert_arn(arn)
    assert setup.calls() == 1


def test_js_sdk(setup):
    ok, reason = consumers.node_available()
    if not ok:
        pytest.skip(reason)
    arn = consumers.js_sdk_caller_arn(setup.env, setup.profile)
    _assert_arn(arn)
    assert setup.calls() == 1


def test_js_sdk_explicit_endpoint(tmp_path, moto_server, sts):
    """The CREDPROC_TEST_STS_URL override wins over the profile's endpoint_url."""
    ok, reason = consumers.node_available()
    if not ok:
        pytest.skip(reason)
    setup = FakeSetup(tmp_path, moto_server.url)
    arn = consumers.js_sdk_caller_arn(setup.env, setup.profile, sts_url=sts.url)
    _assert_arn(arn)
    assert sts.count("GetCallerIdentity") == 1
    assert setup.calls() == 1


@pytest.mark.parametrize("consumer", ["aws_cli", "boto3", "js_sdk"])
def test_consumers_reach_the_profiles_endpoint(tmp_path, sts, consumer):
    """endpoint_url in the profile is what each SDK consumer calls (counted at a proxy)."""
    if consumer == "js_sdk":
        ok, reason = consumers.node_available()
        if not ok:
            pytest.skip(reason)
    setup = FakeSetup(tmp_path, sts.url)
    fn = getattr(consumers, consumer + "_caller_arn")
    _assert_arn(fn(setup.env, setup.profile))
    assert sts.count("GetCallerIdentity") == 1
    assert setup.calls() == 1


def test_terraform(tmp_path, sts):
    ok, reason = consumers.terraform_available()
    if not ok:
        pytest.skip(reason)
    setup = FakeSetup(tmp_path, sts.url)
    t0 = time.monotonic()
    arn = consumers.terraform_caller_arn(setup.env, setup.profile, sts.url, tmp_path / "tf")
    elapsed = time.monotonic() - t0
    _assert_arn(arn)
    # The provider is configured in the plan and in the apply phase: one process run each.
    assert setup.calls() == 2, setup.log.read_text()
    # Each provider configuration validates the credentials and looks up the account id with one
    # GetCallerIdentity; the data source is read once, in the plan phase.
    assert sts.count("GetCallerIdentity") == 3, sts.actions
    assert elapsed < 120, elapsed


def test_failure_reports_consumer_output(tmp_path, moto_server):
    """A failing credential_process: AssertionError with the consumer's stderr in it."""
    setup = FakeSetup(tmp_path, moto_server.url)
    bad = tmp_path / "bad_helper.py"
    bad.write_text("import sys\nsys.stderr.write('fake helper refuses: NO-CREDS-4711\\n')\nsys.exit(3)\n")
    setup.config.write_text(
        f"[profile p]\ncredential_process = {sys.executable} {bad}\n"
        f"region = us-east-1\nendpoint_url = {moto_server.url}\n"
    )
    with pytest.raises(AssertionError) as info:
        consumers.aws_cli_caller_arn(setup.env, "p")
    assert "NO-CREDS-4711" in str(info.value)
    with pytest.raises(AssertionError) as info:
        consumers.boto3_caller_arn(setup.env, "p")
    assert "NO-CREDS-4711" in str(info.value)
    if consumers.node_available()[0]:
        with pytest.raises(AssertionError) as info:
            consumers.js_sdk_caller_arn(setup.env, "p")
        # fromProcess (not the default chain) reports the process's stderr
        assert "NO-CREDS-4711" in str(info.value)


def test_timeout_kills_consumer(tmp_path, moto_server):
    """A credential_process that hangs: the harness gives up after its timeout."""
    setup = FakeSetup(tmp_path, moto_server.url)
    slow = tmp_path / "slow_helper.py"
    slow.write_text("import time\ntime.sleep(60)\n")
    setup.config.write_text(
        f"[profile p]\ncredential_process = {sys.executable} {slow}\n"
        f"region = us-east-1\nendpoint_url = {moto_server.url}\n"
    )
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="timed out"):
        consumers.boto3_caller_arn(setup.env, "p", timeout=3)
    assert time.monotonic() - t0 < 15


def test_availability_reasons():
    for fn in (consumers.node_available, consumers.terraform_available):
        ok, reason = fn()
        assert isinstance(ok, bool) and isinstance(reason, str) and reason


def test_terraform_unavailable_without_mirror(monkeypatch, tmp_path):
    monkeypatch.setenv("CREDPROC_TF_MIRROR", str(tmp_path / "nowhere"))
    ok, reason = consumers.terraform_available()
    if consumers._terraform_exe() is None:
        assert not ok and "terraform" in reason
    else:
        assert not ok and "CREDPROC_TF_MIRROR" in reason


def test_terraform_cli_config_points_at_mirror(monkeypatch, tmp_path):
    root = tmp_path / "mirror"
    (root / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    monkeypatch.setenv("CREDPROC_TF_MIRROR", str(root))
    assert consumers.find_tf_mirror() == str(root)
    text = consumers._tf_cli_config(consumers.find_tf_mirror())
    assert f'path    = "{root}"' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text


def test_terraform_failure_reports_consumer_output(tmp_path, moto_server):
    """Terraform hides the process's stderr (logged only with TF_LOG) but names the exit status."""
    ok, reason = consumers.terraform_available()
    if not ok:
        pytest.skip(reason)
    setup = FakeSetup(tmp_path, moto_server.url)
    bad = tmp_path / "bad_helper.py"
    bad.write_text("import sys\nsys.stderr.write('fake helper refuses: NO-CREDS-4711\\n')\nsys.exit(3)\n")
    setup.config.write_text(f"[profile p]\ncredential_process = {sys.executable} {bad}\nregion = us-east-1\n")
    with pytest.raises(AssertionError) as info:
        consumers.terraform_caller_arn(setup.env, "p", moto_server.url, tmp_path / "tf")
    assert "terraform apply exited with 1" in str(info.value)
    assert "credential_process: exit status 3" in str(info.value)
