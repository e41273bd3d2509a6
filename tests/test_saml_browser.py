"""flow = "browser", fast: config checks, the request matching, and the DevTools conversation with a
scripted stand-in browser (a small Python program on the pipe's fds 3 and 4, launched exactly as a
real browser is). The real Chromium runs in tests/integration/test_saml_browser.py."""

import json
import os
import sys
import time

import pytest

from credproc import config
from credproc.core import devtools
from credproc.core.errors import AuthenticationFailed, ConfigError, LoginRequired, ServiceError
from credproc.sources.saml import browser as saml_browser

BASE = '[idp.c]\ntype = "saml"\nurl = "https://idp.example.edu/sso"\n'

# The stand-in: answers each command it reads on fd 3 per SCENARIO, logging what it got to LOG.
FAKE = r'''#!PYTHON
import json, os, sys, time
scenario, log = os.environ["FAKE_SCENARIO"], os.environ["FAKE_LOG"]
r, w = os.fdopen(3, "rb", buffering=0), 4
buf = b""
def out(msg):
    os.write(w, json.dumps(msg).encode() + b"\0")
def note(msg):
    with open(log, "a") as f:
        f.write(json.dumps(msg) + "\n")
if scenario == "exit":
    sys.exit(0)
while True:
    chunk = r.read(65536)
    if not chunk:
        break
    buf += chunk
    while b"\0" in buf:
        raw, buf = buf.split(b"\0", 1)
        msg = json.loads(raw)
        note(msg)
        if scenario == "silent":
            continue
        method, sid = msg["method"], msg.get("sessionId")
        reply = {"id": msg["id"], "result": {}}
        if sid:
            reply["sessionId"] = sid
        out(reply)
        if method == "Target.setAutoAttach":
            out({"method": "Target.attachedToTarget", "params": {"sessionId": "S1", "waitingForDebugger": False,
                 "targetInfo": {"targetId": "T1", "type": "page", "url": "about:blank"}}})
        if method == "Page.navigate":
            if scenario == "close":
                out({"method": "Target.targetDestroyed", "params": {"targetId": "T1"}})
                continue
            # a popup the IdP opens: attached, paused until credproc lets it run
            out({"method": "Target.attachedToTarget", "params": {"sessionId": "S2", "waitingForDebugger": True,
                 "targetInfo": {"targetId": "T2", "type": "page", "url": ""}}})
            # a GET to AWS's sign-in (no assertion): must be failed, never continued
            out({"method": "Fetch.requestPaused", "sessionId": "S1", "params": {"requestId": "R1",
                 "request": {"url": "https://signin.aws.amazon.com/saml?x=1", "method": "GET", "headers": {}}}})
            if scenario == "signin":
                out({"method": "Fetch.requestPaused", "sessionId": "S2", "params": {"requestId": "R2",
                     "request": {"url": "https://signin.aws.amazon.com/saml", "method": "POST", "headers": {},
                                 "hasPostData": True, "postData": "RelayState=x&SAMLResponse=PHNhbWw%2BPC9zYW1sPg%3D%3D"}}})
        if method == "Browser.close":
            sys.exit(0)
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    exe = tmp_path / "fake-browser"
    exe.write_text(FAKE.replace("PYTHON", sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "got.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))

    def run(scenario, timeout=20):
        monkeypatch.setenv("FAKE_SCENARIO", scenario)
        sign_on = saml_browser.SignOn([str(exe)], str(tmp_path / "profile"), "https://idp.example.edu/start",
                                      "https://signin.aws.amazon.com/saml", timeout, "the SAML IdP at idp.example.edu")
        return sign_on.run()

    def got():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return run, got


def test_the_assertion_is_taken_and_the_post_is_never_sent(fake):
    run, got = fake
    assert run("signin") == "PHNhbWw+PC9zYW1sPg=="
    sent = got()
    by_method = {}
    for m in sent:
        by_method.setdefault(m["method"], []).append(m)
    # every page gets the interception before anything runs in it; the first is navigated only after
    assert [m["sessionId"] for m in by_method["Fetch.enable"]] == ["S1", "S2"]
    order = [m["method"] for m in sent if m.get("sessionId") == "S1"]
    assert order.index("Fetch.enable") < order.index("Page.navigate")
    assert by_method["Page.navigate"][0]["params"] == {"url": "https://idp.example.edu/start"}
    assert [m["sessionId"] for m in by_method["Runtime.runIfWaitingForDebugger"]] == ["S2"]
    patterns = by_method["Fetch.enable"][0]["params"]["patterns"]
    assert {"urlPattern": "https://signin.aws.amazon.com/saml*", "requestStage": "Request"} in patterns
    assert {"urlPattern": "https://*.signin.amazonaws-us-gov.com/saml*", "requestStage": "Request"} in patterns
    # the GET was failed, the POST answered by credproc itself: nothing was continued to AWS
    assert [m["params"]["requestId"] for m in by_method["Fetch.failRequest"]] == ["R1"]
    [done] = by_method["Fetch.fulfillRequest"]
    assert done["params"]["requestId"] == "R2" and done["params"]["responseCode"] == 200
    assert "Fetch.continueRequest" not in by_method
    assert "Browser.close" in by_method


def test_a_window_closed_before_signing_in_is_an_authentication_failure(fake):
    run, _ = fake
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed, match="was closed before the sign-in finished"):
        run("close")
    assert time.monotonic() - started < 10


def test_a_browser_that_exits_at_once(fake):
    run, _ = fake
    with pytest.raises(AuthenticationFailed, match="was closed before the sign-in finished"):
        run("exit")


def test_a_browser_that_never_answers_on_the_pipe_is_exit_9(fake, monkeypatch):
    run, got = fake
    monkeypatch.setattr(devtools, "ANSWER_WAIT", 2.0)
    started = time.monotonic()
    with pytest.raises(ServiceError, match="did not answer on its DevTools pipe") as e:
        run("silent")
    assert e.value.exit_code == 9 and time.monotonic() - started < 10
    assert got()[0]["method"] == "Target.setAutoAttach"


def test_no_sign_in_within_the_limit(fake, monkeypatch):
    """The stand-in attaches and navigates, then nothing: LoginRequired after the idp's limit."""
    run, _ = fake
    started = time.monotonic()
    with pytest.raises(LoginRequired, match="no sign-in at the SAML IdP at idp.example.edu within 2 s"):
        run("attach-only", timeout=2)
    assert time.monotonic() - started < 8


@pytest.mark.parametrize("url, yes", [
    ("https://signin.aws.amazon.com/saml", True), ("https://us-east-1.signin.aws.amazon.com/saml", True),
    ("https://signin.amazonaws-us-gov.com/saml", True), ("https://signin.amazonaws.cn/saml", True),
    ("https://signin.aws.amazon.com.evil.example/saml", False), ("https://evilsignin.aws.amazon.com/saml", False),
    ("https://idp.example.edu/saml", False)])
def test_what_counts_as_aws_sign_in(url, yes):
    assert saml_browser._is_signin(url) is yes


def test_post_data_in_either_form():
    assert saml_browser._post_data({"postData": "a=1"}) == "a=1"
    assert saml_browser._post_data({"postDataEntries": [{"bytes": "YT0x"}, {"bytes": "JmI9Mg=="}]}) == "a=1&b=2"
    assert saml_browser._post_data({}) is None
    assert saml_browser._form_value("SAMLResponse=a%2Bb&x=1", "SAMLResponse") == "a+b"


def _problems(text, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        config.load(str(path))
    return e.value.message


def test_keys_that_do_not_apply_to_the_browser_flow_are_config_errors(tmp_path):
    msg = _problems(BASE + 'flow = "browser"\nusername = "bob"\npassword_command = "pass x"\nmfa = "push"\n', tmp_path)
    assert "idp.c.username: has no effect with flow = \"browser\"" in msg
    assert "idp.c.password_command: has no effect with flow = \"browser\"" in msg
    assert "idp.c.mfa: works only with flow = \"ecp\"" in msg
    msg = _problems(BASE + 'flow = "form"\nbrowser = "chromium"\nsignin_timeout = 60\n', tmp_path)
    assert "idp.c.browser: works only with flow = \"browser\"" in msg
    assert "idp.c.signin_timeout: works only with flow = \"browser\"" in msg


def test_the_browser_setting_and_key_parse(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[settings]\nbrowser = "google-chrome"\n' + BASE + 'flow = "browser"\nbrowser = "/opt/b"\n'
                    'signin_timeout = 120\n[role.r]\nidp = "c"\n')
    cfg = config.load(str(path))
    assert cfg.settings["browser"] == "google-chrome"
    assert (cfg.idps["c"]["browser"], cfg.idps["c"]["signin_timeout"]) == ("/opt/b", 120)


def test_finding_the_browser(tmp_path, monkeypatch):
    exe = tmp_path / "my-chrome"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert devtools.find(str(exe)) == [str(exe)]
    monkeypatch.setenv("PATH", str(tmp_path))
    assert devtools.find("my-chrome --incognito") == [str(exe), "--incognito"]  # as credproc console reads it
    with pytest.raises(ConfigError, match="^idp.c.browser: browser 'nothing-here': nothing-here is not found"):
        devtools.find("nothing-here", "idp.c.browser")
    (tmp_path / "firefox").write_text("#!/bin/sh\n")
    (tmp_path / "firefox").chmod(0o755)
    with pytest.raises(ConfigError, match="'firefox' is not a Chromium-family browser"):
        devtools.find("firefox", "[settings] browser")
    with pytest.raises(ConfigError, match="no Chromium-family browser .* tried: google-chrome, "):
        devtools.find(None)
    (tmp_path / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "chromium").chmod(0o755)
    assert devtools.find(None) == [str(tmp_path / "chromium")]
    assert devtools.find("chromium") == [str(tmp_path / "chromium")]  # a known name


def test_a_desktop_is_a_display_on_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert devtools.desktop_available() is False
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert devtools.desktop_available() is True
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("WAYLAND_DISPLAY")
    assert devtools.desktop_available() is True


def test_the_profile_directory_is_per_idp_under_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert saml_browser.profile_dir("corp") == os.path.join(str(tmp_path), "credproc", "browser", "saml-corp")
