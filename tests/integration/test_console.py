"""credproc console and GUI prompts end to end: the real executable, moto STS, a local fake federation
endpoint, and a fake zenity on PATH (no terminal: the sandbox starts a new session)."""

import json
import os
import sys
import time
import urllib.parse

import pytest

from tests.integration.test_iam_moto import iam_config
from tests.test_console_gui import TOKEN, FakeFederation, write_fake_zenity, zenity_calls

SERIAL = "arn:aws:iam::123456789012:mfa/alice"
MFA_COMMAND = f"{sys.executable} -c \"print('123456')\""


@pytest.fixture
def federation():
    fake = FakeFederation()
    yield fake
    fake.stop()


def with_settings(config, *lines):
    return config.replace("[settings]\n", "[settings]\n" + "".join(line + "\n" for line in lines), 1)


def test_console_print_signs_in_with_the_assumed_role(sandbox, sts, federation):
    sandbox.write_static_keys()
    sandbox.write_config(with_settings(iam_config(sts.url, mfa_command=MFA_COMMAND),
                                       f'federation_url = "{federation.url}"'))
    r = sandbox.run("console", "--role", "admin", "--print", "--debug")
    assert r.returncode == 0, r.stderr.decode()
    url = r.stdout.decode()
    assert url.count("\n") == 1
    parts = urllib.parse.urlsplit(url.strip())
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == federation.url
    assert urllib.parse.parse_qsl(parts.query) == [("Action", "login"), ("Issuer", "credproc"),
                                                   ("Destination", "https://console.aws.amazon.com/"),
                                                   ("SigninToken", TOKEN)]
    doc = sandbox.credentials("admin")  # the same, from the cache
    assert federation.sessions() == [{"sessionId": doc["AccessKeyId"], "sessionKey": doc["SecretAccessKey"],
                                      "sessionToken": doc["SessionToken"]}]
    assert sts.actions == ["GetSessionToken", "AssumeRole"]
    err = r.stderr.decode()
    assert "getSigninToken at" in err  # --debug was on
    for secret in (TOKEN, doc["SecretAccessKey"], doc["SessionToken"], "SigninToken=", "Session="):
        assert secret not in err


def test_console_refused_by_the_federation_endpoint_exits_9_with_the_fix(sandbox, sts, federation):
    sandbox.write_static_keys()
    sandbox.write_config(with_settings(iam_config(sts.url, mfa_command=MFA_COMMAND),
                                       f'federation_url = "{federation.url}"'))
    federation.status, federation.body = 400, b"Bad Request"
    r = sandbox.run("console", "--role", "admin", "--print")
    assert r.returncode == 9 and r.stdout == b""
    assert b"refused the credentials of role 'admin' (HTTP 400); the console accepts only temporary" in r.stderr


@pytest.fixture
def zenity(tmp_path):
    bin_dir, log_path = str(tmp_path / "bin"), str(tmp_path / "zenity.log")
    write_fake_zenity(bin_dir, log_path, answer="987654")
    env = {"DISPLAY": ":99", "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")}
    return env, lambda: zenity_calls(log_path)


def test_gui_prompt_answers_the_mfa_code_without_a_terminal(sandbox, sts, zenity):
    env, calls = zenity
    sandbox.write_static_keys()
    sandbox.write_config(with_settings(iam_config(sts.url), 'prompt = "gui"'))  # MFA, no mfa_command
    r = sandbox.run("--role", "admin", env=env)
    assert r.returncode == 0, r.stderr.decode()
    doc = json.loads(r.stdout)
    assert doc["AccountId"] == "111111111111" and doc["SessionToken"]
    assert sts.actions == ["GetSessionToken", "AssumeRole"]
    (argv,) = calls()
    assert argv[0] == "--entry" and f"--text=MFA code for {SERIAL}:" in argv
    assert not any("987654" in a for a in argv)


@pytest.mark.parametrize("settings, env_change", [("", {}), ('prompt = "gui"', {"DISPLAY": ""})],
                         ids=["prompt-terminal", "gui-without-display"])
def test_without_gui_or_a_display_the_fast_failure_stays(sandbox, sts, zenity, settings, env_change):
    env, calls = zenity
    sandbox.write_static_keys()
    sandbox.write_config(with_settings(iam_config(sts.url), settings))
    t = time.monotonic()
    r = sandbox.run("--role", "admin", env={**env, **env_change})
    assert time.monotonic() - t < 8
    assert r.returncode == 4 and r.stdout == b""
    assert f"an MFA code for {SERIAL} is needed and there is no terminal to ask on" in r.stderr.decode()
    assert calls() == [] and sts.actions == []
