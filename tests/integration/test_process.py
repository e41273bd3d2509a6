"""`type = "process"` end to end: the installed credproc runs a real helper process (the stand-in
tests/peers/cred_helper.py, counting its runs), caches what it prints, shares one run between
concurrent callers, assumes roles from it at a real moto STS, and fails cleanly on a bad helper."""

import json
import os
import sys
import time

import pytest

from tests.peers import cred_helper
from tests.sandbox import caller_arn

HELPER = os.path.join(os.path.dirname(cred_helper.__file__), "cred_helper.py")


class Helper:
    def __init__(self, tmp_path):
        self.log = str(tmp_path / "helper-runs")

    def command(self, mode, seconds=None):
        return f"{sys.executable} {HELPER} {self.log} {mode}" + (f" {seconds}" if seconds is not None else "")

    def lines(self):
        if not os.path.exists(self.log):
            return []
        return [line for line in open(self.log).read().splitlines() if not line.startswith("child ")]

    def runs(self):
        return len(self.lines())


@pytest.fixture
def helper(tmp_path):
    return Helper(tmp_path)


def process_config(command, sts_url=None, extra_idp="", extra=""):
    settings = f'[settings]\nregion = "us-east-1"\nsts_endpoint_url = "{sts_url}"\n\n' if sts_url else ""
    return f"""{settings}[idp.helper]
type = "process"
command = {json.dumps(command)}
{extra_idp}
[role.plain]
idp = "helper"

[role.admin]
idp = "helper"
arn = "arn:aws:iam::111111111111:role/Admin"
session_name = "alice"
{extra}"""


def test_the_helpers_credentials_are_served_and_cached(sandbox, helper):
    sandbox.write_config(process_config(helper.command("ok")))
    r = sandbox.run("--role", "plain")
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    doc = json.loads(r.stdout)
    assert doc["Version"] == 1 and doc["AccessKeyId"] == cred_helper.KEY_ID and doc["SecretAccessKey"] == cred_helper.SECRET
    assert doc["SessionToken"].startswith("helper-session-token-run-1-") and doc["Expiration"].endswith("Z")
    assert sandbox.credentials("plain") == doc  # the cache hit (the fast path)
    assert helper.runs() == 1
    assert "stdin=devnull" in helper.lines()[0]  # interactive = false: stdin closed
    for name in sandbox.cache_files():  # encrypted: no secret of the helper's in our files
        data = open(os.path.join(sandbox.cache_dir, name), "rb").read()
        assert cred_helper.SECRET.encode() not in data and b"helper-session-token" not in data


def test_twenty_concurrent_callers_run_the_helper_once(sandbox, helper):
    sandbox.write_config(process_config(helper.command("slow", 1.0)))
    procs = [sandbox.popen("--role", "plain") for _ in range(20)]
    outs = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [o[1] for o in outs]
    assert len({json.loads(o[0])["SessionToken"] for o in outs}) == 1
    assert helper.runs() == 1


def test_roles_with_arn_assume_from_the_helpers_credentials_and_share_its_run(sandbox, sts, helper):
    sandbox.write_config(process_config(helper.command("ok"), sts.url))
    doc = sandbox.credentials("admin")
    assert caller_arn(doc, sts.url) == "arn:aws:sts::111111111111:assumed-role/Admin/alice"
    assert doc["AccessKeyId"] != cred_helper.KEY_ID and doc["AccountId"] == "111111111111"
    plain = sandbox.credentials("plain")
    assert plain["AccessKeyId"] == cred_helper.KEY_ID
    assert helper.runs() == 1 and sts.count("AssumeRole") == 1


def test_an_expiring_helper_is_run_again_once_after_its_refresh_time(sandbox, helper):
    # 16 min 8 s: refreshed (one minute past the 15 the SDKs need) about 8 s after it was fetched
    sandbox.write_config(process_config(helper.command("ok", 16 * 60 + 8)))
    first = sandbox.credentials("plain")
    assert sandbox.credentials("plain") == first and helper.runs() == 1
    time.sleep(9)
    procs = [sandbox.popen("--role", "plain") for _ in range(5)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [o[1] for o in outs]
    tokens = {json.loads(o[0])["SessionToken"] for o in outs}
    # one of them ran the helper; the others got the new credentials after it, or the still-valid
    # old ones without waiting for it
    assert helper.runs() == 2 and len(tokens - {first["SessionToken"]}) == 1
    assert sandbox.credentials("plain")["SessionToken"] in tokens - {first["SessionToken"]}
    assert helper.runs() == 2


def test_without_expiration_the_helper_runs_every_time_and_status_says_so(sandbox, helper):
    sandbox.write_config(process_config(helper.command("noexp")))
    for n in (1, 2, 3):
        doc = sandbox.credentials("plain")
        assert "Expiration" not in doc and helper.runs() == n
    assert sandbox.cache_files() == [] or all("role" not in n for n in sandbox.cache_files())
    r = sandbox.run("status")
    assert r.returncode == 0
    assert "no Expiration from the helper: not cached, it runs on every call" in r.stdout.decode()
    report = json.loads(sandbox.run("status", "--json").stdout)
    (session,) = report["sessions"]
    assert session["refresh"] == "every call" and session["type"] == "process"


def test_without_expiration_concurrent_callers_do_not_queue_behind_each_other(sandbox, helper):
    sandbox.write_config(process_config(helper.command("slownoexp", 2)))
    sandbox.credentials("plain")  # learns that the helper's credentials do not expire
    procs = [sandbox.popen("--role", "plain") for _ in range(10)]
    outs = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, [o[1] for o in outs]
    assert helper.runs() == 11
    # not queued under the lock: some of the ten runs overlapped in time (one after the other, none would;
    # a wall-clock bound would depend on how loaded the machine is)
    spans = sorted(tuple(map(float, line.split())) for line in open(helper.log + ".spans").read().splitlines())[1:]
    overlapping = sum(1 for (_, end), (start, _) in zip(spans, spans[1:]) if start < end)
    assert len(spans) == 10 and overlapping >= 1, spans


@pytest.mark.parametrize("mode, code, message", [
    ("garbage", 9, "printed no valid credential_process document on stdout: not a JSON document"),
    ("badversion", 9, "printed no valid credential_process document on stdout: no Version 1 (the JSON integer 1)"),
    ("control", 9, "printed no valid credential_process document on stdout: SecretAccessKey holds characters"),
    ("huge", 9, "printed more than 64 KiB on stdout and was stopped"),
    ("fail", 5, "failed with exit code 3: error: \\x1b[31mthe YubiKey\\x1b]0;owned\\x07 is not inserted"),
])
def test_a_bad_helper_fails_with_one_clean_line_and_a_documented_exit_code(sandbox, helper, mode, code, message):
    sandbox.write_config(process_config(helper.command(mode)))
    r = sandbox.run("--role", "plain")
    err = r.stderr.decode()
    assert r.returncode == code and r.stdout == b"", err
    assert err.count("\n") == 1 and err.startswith("credproc: ") and message in err, err
    assert "Traceback" not in err and "\x1b" not in err and "\x07" not in err
    assert "pwned" not in err and cred_helper.SECRET not in err and "helper-session-token" not in err


def test_a_helper_past_its_timeout_is_killed_with_its_children(sandbox, helper):
    sandbox.write_config(process_config(helper.command("hang"), extra_idp="timeout = 2\n"))
    t = time.monotonic()
    r = sandbox.run("--role", "plain")
    assert time.monotonic() - t < 15
    err = r.stderr.decode()
    assert r.returncode == 9 and r.stdout == b"" and "did not finish within 2 s and was stopped" in err, err
    assert "set interactive = true" in err
    child = int(next(line for line in open(helper.log).read().splitlines() if line.startswith("child ")).split()[1])
    assert not alive(child)  # the helper's own child went with it (its process group)


def test_a_helper_leaving_a_child_that_holds_its_pipes_does_not_hold_us_up(sandbox, helper):
    sandbox.write_config(process_config(helper.command("daemon")))
    t = time.monotonic()
    r = sandbox.run("--role", "plain", timeout=30)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t < 30 and json.loads(r.stdout)["AccessKeyId"] == cred_helper.KEY_ID  # not its 60 s timeout
    child = int(next(line for line in open(helper.log).read().splitlines() if line.startswith("child ")).split()[1])
    assert not alive(child)  # it held our pipes past the grace time: stopped with the helper's group


def alive(pid, wait=3.0):
    """pid runs (a zombie waiting for its reaper does not count), after up to `wait` s."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                running = f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            running = False
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.1)


def test_a_missing_helper_is_a_configuration_error(sandbox):
    sandbox.write_config(process_config("/nonexistent/helper --flag"))
    r = sandbox.run("--role", "plain")
    assert r.returncode == 3 and r.stdout == b""
    assert b"idp.helper.command: command not found: /nonexistent/helper" in r.stderr


def test_interactive_without_a_terminal_fails_with_the_login_hint(sandbox, helper):
    sandbox.write_config(process_config(helper.command("fail"), extra_idp="interactive = true\n"))
    r = sandbox.run("--role", "plain")
    assert r.returncode == 4 and b"run in a terminal: " in r.stderr and b"login --role plain" in r.stderr


def test_interactive_the_helper_prompts_on_the_terminal_and_stdout_stays_the_document(sandbox, helper):
    from tests.pty_helper import PtyProcess
    from tests.sandbox import credproc_exe

    sandbox.write_config(process_config(helper.command("prompt"), extra_idp="interactive = true\n"))
    term = PtyProcess([credproc_exe(), "--role", "plain"], sandbox.env)
    term.expect("Helper PIN: ")
    term.send("1234")
    code, out, err = term.finish()
    assert code == 0, err
    assert json.loads(out)["AccessKeyId"] == cred_helper.KEY_ID and err == b""
    assert "stdin=tty" in helper.lines()[0]
    assert sandbox.credentials("plain")["AccessKeyId"] == cred_helper.KEY_ID and helper.runs() == 1


def test_env_reaches_the_helper_but_never_our_output_or_argv(sandbox, helper):
    sandbox.write_config(process_config(helper.command("env"), extra_idp='env = { HELPER_SECRET = "s3cr3t-pin" }\n'))
    r = sandbox.run("--role", "plain", "--debug")
    assert r.returncode == 0
    assert helper.lines()[0].endswith("secret=s3cr3t-pin")
    err = r.stderr.decode()
    assert "running the command of idp helper" in err  # --debug logs the run ...
    for secret in ("s3cr3t-pin", cred_helper.SECRET, "helper-session-token", HELPER):
        assert secret not in err  # ... never the environment, the arguments or the output


def test_a_helper_that_runs_credproc_again_is_refused(sandbox):
    sandbox.write_config(process_config(f"{sys.executable} -m credproc --role plain"))
    r = sandbox.run("--role", "plain")
    assert r.returncode == 10 and b"runs credproc again" in r.stderr


def test_logout_and_doctor(sandbox, helper):
    sandbox.write_config(process_config(helper.command("ok")))
    sandbox.credentials("plain")
    r = sandbox.run("doctor")
    assert "the command of idp helper" in r.stdout.decode() + r.stderr.decode()
    r = sandbox.run("logout", "--role", "plain")
    assert r.returncode == 0 and b"removed the helper credentials of idp helper" in r.stdout
    sandbox.credentials("plain")
    assert helper.runs() == 2


# -- the real AWS CLI v2 as the helper ---------------------------------------------------------------------

AWS_V2 = "/usr/bin/aws"


def aws_v2_export_credentials():
    """The reason to skip, or None when AWS CLI v2 with `configure export-credentials` is there."""
    import subprocess

    if not os.path.exists(AWS_V2):
        return f"no AWS CLI v2 at {AWS_V2}"
    r = subprocess.run([AWS_V2, "configure", "export-credentials", "help"], capture_output=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "AWS_PAGER": "", "MANPAGER": "cat",
                            "PAGER": "cat"})
    return None if r.returncode == 0 else "this AWS CLI has no `configure export-credentials`"


@pytest.fixture
def counting_aws(tmp_path):
    reason = aws_v2_export_credentials()
    if reason:
        pytest.skip(reason)
    log = tmp_path / "aws-runs"
    wrapper = tmp_path / "counting-aws"
    wrapper.write_text(f"#!{sys.executable}\nimport os, sys\nopen({str(log)!r}, 'a').write('run\\n')\n"
                       f"os.execv({AWS_V2!r}, [{AWS_V2!r}] + sys.argv[1:])\n")
    wrapper.chmod(0o755)
    return str(wrapper), lambda: len(log.read_text().splitlines()) if log.exists() else 0


def test_the_aws_clis_export_credentials_as_the_helper_twenty_callers_one_run(sandbox, sts, counting_aws):
    wrapper, runs = counting_aws
    sandbox.write_static_keys(profile="helper-keys")
    command = f"{wrapper} configure export-credentials --profile helper-keys --format process"
    sandbox.write_config(process_config(command, sts.url))
    env = {"AWS_PAGER": ""}
    sts.delay = 0.3  # widen the race window
    procs = [sandbox.popen("--role", "admin", env=env) for _ in range(20)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [o[1] for o in outs]
    docs = [json.loads(o[0]) for o in outs]
    assert len({d["SessionToken"] for d in docs}) == 1 and docs[0]["AccountId"] == "111111111111"
    assert runs() == 1 and sts.count("AssumeRole") == 1
    # without arn: the CLI's static keys have no Expiration, so the helper runs on every call
    for n in (2, 3):
        doc = sandbox.credentials("plain", env=env)
        assert doc["AccessKeyId"] == "AKIAIOSFODNN7EXAMPLE" and "Expiration" not in doc and runs() == n
