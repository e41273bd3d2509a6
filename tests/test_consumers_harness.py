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
    for fn in (consumers.node_available, consumers.terraform_available, consumers.aws_cli_v2_available,
               _go("v1"), _go("v2"), consumers.ruby_sdk_available, consumers.js_sdk_v2_available):
        ok, reason = fn()
        assert isinstance(ok, bool) and isinstance(reason, str) and reason


def test_aws_cli_v2_unavailable_when_absent_or_v1(monkeypatch, tmp_path):
    monkeypatch.setattr(consumers, "AWS_CLI_V2", str(tmp_path / "aws"))
    ok, reason = consumers.aws_cli_v2_available()
    assert not ok and "install-consumers.sh" in reason
    # the venv's PyPI AWS CLI v1 must not pass for v2
    monkeypatch.setattr(consumers, "AWS_CLI_V2", consumers.aws_cli_path())
    ok, reason = consumers.aws_cli_v2_available()
    assert not ok and "is not the AWS CLI v2" in reason and "aws-cli/1." in reason


def test_go_sdk_unavailable_without_debians_tree(monkeypatch, tmp_path):
    monkeypatch.setattr(consumers, "DEBIAN_GOPATH", str(tmp_path))
    monkeypatch.setattr(consumers, "_go_exe", lambda: "/usr/bin/go")
    for version, package in (("v1", "golang-github-aws-aws-sdk-go-dev"), ("v2", "golang-github-aws-aws-sdk-go-v2-dev")):
        ok, reason = consumers.go_sdk_available(version)
        assert not ok and package in reason


def test_go_sdk_versions_are_v1_and_v2_only():
    with pytest.raises(ValueError):
        consumers.go_sdk_available("v3")


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


# --------------------------------------------------------------------------------------------
# The consumers from Debian and the JS SDK v2: ONE client, `calls` GetCallerIdentity calls, the
# endpoint given explicitly. Run counts of the fake helper pin what each SDK does by itself.


def _require(available):
    ok, reason = available()
    if not ok:
        if os.environ.get("CI"):  # on CI the consumer must be there: a skip would hide a gap
            pytest.fail(reason)
        pytest.skip(reason)


def _go(version):
    return lambda: consumers.go_sdk_available(version)


# name -> (availability check, fn(env, profile, sts_url, calls) -> arns, runs for 1 call, runs for 3 calls)
MORE = {
    "go_v1": (_go("v1"), lambda *a, **kw: consumers.go_sdk_caller_arns("v1", *a, **kw), 1, 1),
    "go_v2": (_go("v2"), lambda *a, **kw: consumers.go_sdk_caller_arns("v2", *a, **kw), 1, 1),
    "ruby": (consumers.ruby_sdk_available, consumers.ruby_sdk_caller_arns, 2, 2),
    "js_v2": (consumers.js_sdk_v2_available, consumers.js_sdk_v2_caller_arns, 1, 1),
}


@pytest.mark.parametrize("calls", [1, 3])
@pytest.mark.parametrize("name", sorted(MORE))
def test_more_consumers_one_client_many_calls(tmp_path, moto_server, sts, name, calls):
    """Each call reaches the explicit endpoint (not the profile's endpoint_url, which points at
    the bare moto server here); the helper runs as often as the SDK itself decides."""
    available, fn, runs_for_1, runs_for_3 = MORE[name]
    _require(available)
    setup = FakeSetup(tmp_path, moto_server.url)
    arns = fn(setup.env, setup.profile, sts.url, calls=calls)
    assert len(arns) == calls
    for arn in arns:
        _assert_arn(arn)
    assert sts.count("GetCallerIdentity") == calls, sts.actions
    assert setup.calls() == (runs_for_1 if calls == 1 else runs_for_3), setup.log.read_text()


def test_aws_cli_v2(tmp_path, moto_server, sts):
    _require(consumers.aws_cli_v2_available)
    setup = FakeSetup(tmp_path, moto_server.url)
    _assert_arn(consumers.aws_cli_v2_caller_arn(setup.env, setup.profile, sts.url))
    # --endpoint-url, not the profile's endpoint_url (which 2.9 does not read)
    assert sts.count("GetCallerIdentity") == 1
    assert setup.calls() == 1


def test_aws_cli_v2_is_the_debian_v2_not_the_venvs_v1():
    _require(consumers.aws_cli_v2_available)
    ok, version = consumers.aws_cli_v2_available()
    assert version.startswith("aws-cli/2."), version
    assert consumers.AWS_CLI_V2 != consumers.aws_cli_path()


def test_more_consumers_report_the_helpers_failure(tmp_path, moto_server):
    """What each consumer makes of a failing credential_process, as the harness reports it."""
    setup = FakeSetup(tmp_path, moto_server.url)
    bad = tmp_path / "bad_helper.py"
    bad.write_text("import sys\nsys.stderr.write('fake helper refuses: NO-CREDS-4711\\n')\nsys.exit(3)\n")
    setup.config.write_text(f"[profile p]\ncredential_process = {sys.executable} {bad}\nregion = us-east-1\n")
    checked = 0
    if consumers.aws_cli_v2_available()[0]:
        with pytest.raises(AssertionError) as info:
            consumers.aws_cli_v2_caller_arn(setup.env, "p", moto_server.url)
        assert "NO-CREDS-4711" in str(info.value) and "exited with 255" in str(info.value)
        checked += 1
    for version in ("v1", "v2"):
        if consumers.go_sdk_available(version)[0]:
            with pytest.raises(AssertionError) as info:
                consumers.go_sdk_caller_arns(version, setup.env, "p", moto_server.url)
            # the helper's stderr is passed through, and the SDK names its exit status
            assert "NO-CREDS-4711" in str(info.value) and "exit status 3" in str(info.value)
            checked += 1
    if consumers.ruby_sdk_available()[0]:
        with pytest.raises(AssertionError) as info:
            consumers.ruby_sdk_caller_arns(setup.env, "p", moto_server.url)
        assert "NO-CREDS-4711" in str(info.value) and "non zero exit status" in str(info.value)
        checked += 1
    if consumers.js_sdk_v2_available()[0]:
        with pytest.raises(AssertionError) as info:
            consumers.js_sdk_v2_caller_arns(setup.env, "p", moto_server.url)
        # v2 drops the helper's stderr and its exit status: the user sees only this
        assert "Missing credentials in config" in str(info.value)
        assert "NO-CREDS-4711" not in str(info.value)
        checked += 1
    if not checked:
        _require(lambda: (False, "none of the AWS CLI v2, Go, Ruby or JS v2 consumers is installed"))


def test_counting_wrapper_logs_each_run_and_execs_the_target(tmp_path):
    log = tmp_path / "runs.log"
    wrapper = consumers.write_counting_wrapper(tmp_path / "w", log, [sys.executable, "-c"])
    assert consumers.count_runs(log) == 0
    code = "import os, sys; print(os.getpid(), sys.argv[1:]); sys.exit(7)"
    import subprocess

    for n in (1, 2):
        r = subprocess.run([wrapper, code, "--role", "a b"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 7 and r.stderr == ""
        pid, args = r.stdout.split(" ", 1)
        assert args.strip() == "['--role', 'a b']"
        assert consumers.count_runs(log) == n
        assert log.read_text().splitlines()[-1] == pid  # exec: the target has the wrapper's pid


@pytest.mark.parametrize("bad", ["with space", "a#b", "a;b", "a'b"])
def test_counting_wrapper_refuses_paths_a_consumer_would_split(tmp_path, bad):
    with pytest.raises(ValueError):
        consumers.write_counting_wrapper(tmp_path / bad, tmp_path / "log", ["/bin/true"])
