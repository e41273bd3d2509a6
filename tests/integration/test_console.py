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
    # STS is seen to answer before the MFA code is asked for (issue 20, item 17)
    assert sts.actions == ["GetCallerIdentity", "GetSessionToken", "AssumeRole"]
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


# -- browser and browser_profile: the link in the chosen browser and profile, never on an argv ------------

def wait_for_records(log_path, n, timeout=15):
    from tests.peers.fake_browser import records

    deadline = time.monotonic() + timeout
    while len(records(log_path)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return records(log_path)


def assert_opened_privately(record):
    """The browser got a private page redirecting to the link, and no argument of it holds the token."""
    assert not any(TOKEN in a or "SigninToken" in a for a in record["argv"]), record["argv"]
    assert record["argv"][-1].startswith("file://")
    assert record["page_mode"] == 0o600 and record["dir_mode"] == 0o700
    assert f"SigninToken={TOKEN}" in record["page"] and 'http-equiv="refresh"' in record["page"]


def browser_config(sts, federation, bin_dir):
    return with_settings(iam_config(sts.url, mfa_command=MFA_COMMAND, extra=f"""
[role.work]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"
browser = "{bin_dir}/chrome-stand-in"
browser_profile = "Profile 2"

[role.personal]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/ReadOnly"
browser = "{bin_dir}/firefox"
browser_profile = "personal"
"""), f'federation_url = "{federation.url}"', f'browser = "{bin_dir}/chrome-stand-in"',
        'browser_profile = "Default"')


def test_each_role_opens_in_its_browser_and_profile_without_the_link_on_any_argv(sandbox, sts, federation, tmp_path):
    from tests.peers.fake_browser import install

    bin_dir, log_path = str(tmp_path / "bin"), str(tmp_path / "browser.log")
    install(bin_dir, "chrome-stand-in")
    install(bin_dir, "firefox")
    sandbox.write_static_keys()
    sandbox.write_config(browser_config(sts, federation, bin_dir))
    env = {"FAKE_BROWSER_LOG": log_path}
    for n, role in enumerate(("work", "personal", "admin"), 1):
        r = sandbox.run("console", "--role", role, "--debug", env=env)
        assert r.returncode == 0 and r.stdout == b"", r.stderr.decode()
        err = r.stderr.decode()
        assert f"opened the AWS console as role {role} in " in err and TOKEN not in err
        records = wait_for_records(log_path, n)
        assert len(records) == n
    work, personal, admin = records
    assert work["argv"][1:-1] == ["--profile-directory=Profile 2"]
    assert personal["argv"][1:-1] == ["-P", "personal", "-new-tab"]  # Firefox: its own flag
    assert admin["argv"][1:-1] == ["--profile-directory=Default"]  # [settings] browser and browser_profile
    for record in records:
        assert_opened_privately(record)


def test_the_default_browser_gets_the_private_page_too(sandbox, sts, federation, tmp_path):
    from tests.peers.fake_browser import install

    bin_dir, log_path = str(tmp_path / "bin"), str(tmp_path / "browser.log")
    stand_in = install(bin_dir, "default-browser")
    sandbox.write_static_keys()
    sandbox.write_config(with_settings(iam_config(sts.url, mfa_command=MFA_COMMAND), f'federation_url = "{federation.url}"'))
    r = sandbox.run("console", "--role", "admin", env={"BROWSER": stand_in, "FAKE_BROWSER_LOG": log_path})
    assert r.returncode == 0 and r.stdout == b"", r.stderr.decode()
    (record,) = wait_for_records(log_path, 1)
    assert_opened_privately(record)


def test_the_page_is_removed_shortly_after(sandbox, sts, federation, tmp_path):
    from tests.peers.fake_browser import install

    bin_dir, log_path = str(tmp_path / "bin"), str(tmp_path / "browser.log")
    stand_in = install(bin_dir, "default-browser")
    sandbox.write_static_keys()
    sandbox.write_config(with_settings(iam_config(sts.url, mfa_command=MFA_COMMAND), f'federation_url = "{federation.url}"'))
    r = sandbox.run("console", "--role", "admin",
                    env={"BROWSER": stand_in, "FAKE_BROWSER_LOG": log_path, "CREDPROC_LINK_PAGE_LIFETIME": "1"})
    assert r.returncode == 0
    (record,) = wait_for_records(log_path, 1)
    deadline = time.monotonic() + 15
    while os.path.exists(record["path"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not os.path.exists(record["path"]) and not os.path.exists(os.path.dirname(record["path"]))


def test_a_configured_browser_that_is_not_installed_fails_before_any_prompt(sandbox, sts, federation):
    sandbox.write_static_keys()
    sandbox.write_config(with_settings(iam_config(sts.url), f'federation_url = "{federation.url}"',
                                       'browser = "/nonexistent/chrome"'))
    r = sandbox.run("console", "--role", "admin")
    assert r.returncode == 3 and r.stdout == b""
    assert b"browser '/nonexistent/chrome': /nonexistent/chrome is not found or not executable" in r.stderr
    assert sts.actions == [] and federation.queries == []
