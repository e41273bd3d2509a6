"""credproc console (sign-in links through a fake federation endpoint) and the opt-in GUI prompts
(a fake zenity on PATH)."""

import http.server
import json
import os
import shutil
import sys
import threading
import time
import types
import urllib.parse
import urllib.request

import pytest

from credproc import app, cli
from credproc.commands import console
from credproc.config import parse
from credproc.context import Context
from credproc.core import browser, gui
from credproc.core.credentials import Credentials
from credproc.core.errors import AuthenticationFailed, ConfigError, LoginRequired, NetworkError, ServiceError
from credproc.core.prompt import Terminal
from tests.fakes import ScriptedTerminal

TOKEN = "FAKE-SIGNIN-TOKEN-0123456789"
CREDS = Credentials("ASIAFAKEKEY000000001", "fake/secret+key=1", "fake-session-token/+=", int(time.time()) + 3600,
                    "111111111111")


class FakeFederation:
    """A federation endpoint on 127.0.0.1 that records each getSigninToken query."""

    def __init__(self, status=200, body=None):
        self.status = status
        self.body = json.dumps({"SigninToken": TOKEN}).encode() if body is None else body
        self.queries = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urllib.parse.urlsplit(self.path)
                fake.queries.append((parts.path, dict(urllib.parse.parse_qsl(parts.query))))
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/federation"

    def sessions(self):
        return [json.loads(q["Session"]) for _, q in self.queries]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def write_fake_zenity(bin_dir, log_path, answer="123456", exit_code=0, sleep=0):
    """A `zenity` that records its argv (one JSON list a line) and prints `answer`, or exits
    with `exit_code` (1: the user cancelled, 5: zenity's own timeout)."""
    os.makedirs(bin_dir, exist_ok=True)
    path = os.path.join(bin_dir, "zenity")
    with open(path, "w") as f:
        f.write(f"#!{sys.executable}\nimport json, sys, time\n"
                f"with open({str(log_path)!r}, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
                f"time.sleep({sleep})\nif {exit_code}:\n    sys.exit({exit_code})\nprint({answer!r})\n")
    os.chmod(path, 0o755)
    return path


def zenity_calls(log_path):
    if not os.path.exists(log_path):
        return []
    return [json.loads(line) for line in open(log_path).read().splitlines()]


@pytest.fixture
def federation():
    fake = FakeFederation()
    yield fake
    fake.stop()


@pytest.fixture
def desktop(tmp_path, monkeypatch):
    """No terminal, DISPLAY set and a fake zenity first on PATH; returns a function that (re)writes it."""
    bin_dir, log_path = tmp_path / "bin", tmp_path / "zenity.log"
    monkeypatch.setenv("CREDPROC_NO_PROMPT", "1")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_CURRENT_DESKTOP", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")

    def install(**kw):
        write_fake_zenity(str(bin_dir), str(log_path), **kw)
        return lambda: zenity_calls(str(log_path))

    return install


# -- console: endpoints and links ------------------------------------------------------------------

@pytest.mark.parametrize("region, federation, destination", [
    ("us-east-1", "https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/"),
    ("eu-west-3", "https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/"),
    ("us-gov-west-1", "https://signin.amazonaws-us-gov.com/federation", "https://console.amazonaws-us-gov.com/"),
    ("cn-northwest-1", "https://signin.amazonaws.cn/federation", "https://console.amazonaws.cn/"),
])
def test_endpoints_follow_the_partition_of_the_region(region, federation, destination):
    assert console.endpoints(region) == (federation, destination)


def test_federation_url_and_destination_override_the_partition_defaults():
    assert console.endpoints("cn-north-1", "http://127.0.0.1:9/f", None) == ("http://127.0.0.1:9/f", "https://console.amazonaws.cn/")
    assert console.endpoints("us-east-1", None, "https://console.aws.amazon.com/s3/")[1] == "https://console.aws.amazon.com/s3/"
    with pytest.raises(ConfigError, match="partition aws-iso"):
        console.endpoints("us-iso-east-1")
    assert console.endpoints("us-iso-east-1", "https://f.example/federation", "https://c.example/")[0] == "https://f.example/federation"


def test_the_login_link_carries_issuer_destination_and_token():
    url = console.login_url("https://signin.amazonaws-us-gov.com/federation", "https://console.amazonaws-us-gov.com/", "t o+k")
    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://signin.amazonaws-us-gov.com/federation"
    assert urllib.parse.parse_qsl(parts.query) == [("Action", "login"), ("Issuer", "credproc"),
                                                   ("Destination", "https://console.amazonaws-us-gov.com/"),
                                                   ("SigninToken", "t o+k")]


def test_get_signin_token_sends_exactly_the_session_keys(federation):
    assert console.signin_token(CREDS, federation.url, "admin") == TOKEN
    (path, query), = federation.queries
    assert path == "/federation" and query["Action"] == "getSigninToken" and set(query) == {"Action", "Session"}
    assert json.loads(query["Session"]) == {"sessionId": CREDS.access_key_id, "sessionKey": CREDS.secret_access_key,
                                            "sessionToken": CREDS.session_token}


@pytest.mark.parametrize("status, body, match", [
    (400, b"Bad Request", "refused the credentials of role 'admin' .HTTP 400.; the console accepts only temporary"),
    (403, b"", "refused the credentials"),
    (503, b"", "answered HTTP 503; try again later"),
    (200, b"<html>captive portal</html>", "answered without a sign-in token"),
    (200, b'{"SigninToken": ""}', "answered without a sign-in token"),
])
def test_federation_errors_are_service_errors_with_the_likely_fix(federation, status, body, match):
    federation.status, federation.body = status, body
    with pytest.raises(ServiceError, match=match) as e:
        console.signin_token(CREDS, federation.url, "admin")
    assert CREDS.secret_access_key not in str(e.value) and CREDS.session_token not in str(e.value)


def test_an_unreachable_federation_endpoint_names_it_without_the_credentials(federation):
    url = federation.url
    federation.stop()
    with pytest.raises(NetworkError) as e:
        console.signin_token(CREDS, url, "admin")
    text = str(e.value)
    assert url in text and "Session" not in text
    for secret in (CREDS.secret_access_key, CREDS.session_token):
        assert secret not in text and urllib.parse.quote_plus(secret) not in text


# -- console: the command ----------------------------------------------------------------------------

CONSOLE_CONFIG = """
[settings]
region = "{region}"
federation_url = "{federation}"

[idp.corp]
type = "iam"
profile = "corp-user"

[role.admin]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"

[role.session]
idp = "corp"
"""


@pytest.fixture
def console_run(tmp_path, monkeypatch, federation, capfd):
    """cli.main(["console", ...]) with the credentials faked at app.credentials; returns (code, out, err, calls)."""
    calls = []

    def run(*argv, creds=CREDS, region="us-east-1"):
        path = tmp_path / "credproc.toml"
        path.write_text(CONSOLE_CONFIG.format(region=region, federation=federation.url))
        monkeypatch.setattr(app, "context", lambda args, cfg=None, **kw: Context(cfg, None, ScriptedTerminal()))
        monkeypatch.setattr(app, "credentials", lambda ctx, role: calls.append(role) or creds)
        code = cli.main(["console", "--config", str(path), *argv])
        out, err = capfd.readouterr()
        return code, out, err, calls

    return run


def test_console_print_writes_only_the_link_and_never_logs_it(console_run, federation):
    code, out, err, calls = console_run("--role", "admin", "--print", "--debug")
    assert code == 0 and calls == ["admin"]
    assert out.count("\n") == 1 and out.startswith(federation.url + "?Action=login&Issuer=credproc&")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(out.strip()).query))
    assert query["SigninToken"] == TOKEN and query["Destination"] == "https://console.aws.amazon.com/"
    assert "getSigninToken at " + federation.url in err  # --debug is on ...
    for secret in (TOKEN, CREDS.secret_access_key, CREDS.session_token, "Session="):
        assert secret not in err  # ... and carries no secret


def test_console_destination_is_passed_through_and_must_be_https(console_run):
    code, out, _, _ = console_run("--role", "admin", "--print", "--destination", "https://console.aws.amazon.com/s3/")
    assert code == 0 and dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(out.strip()).query))["Destination"] == \
        "https://console.aws.amazon.com/s3/"
    code, out, err, calls = console_run("--role", "admin", "--destination", "http://evil.example/")
    assert code == 2 and "must be an https:// URL" in err and out == ""


def test_console_opens_the_browser_with_stdout_and_stderr_detached(console_run, monkeypatch):
    opened = []

    def fake_open(url):
        devnull = os.stat(os.devnull)
        page = open(urllib.request.url2pathname(urllib.parse.urlsplit(url).path), encoding="utf-8").read()
        opened.append((url, page, os.path.samestat(os.fstat(1), devnull), os.path.samestat(os.fstat(2), devnull)))
        return True

    monkeypatch.setitem(sys.modules, "webbrowser", types.SimpleNamespace(open=fake_open))
    monkeypatch.setenv("BROWSER", "true")
    monkeypatch.setattr(browser, "_remove_later", lambda directory: shutil.rmtree(directory))
    code, out, err, _ = console_run("--role", "admin")
    assert code == 0 and out == "" and "opened the AWS console as role admin" in err
    (url, page, out_detached, err_detached), = opened
    # the browser is given a private page that redirects to the link, never the link itself
    assert out_detached and err_detached and url.startswith("file://") and TOKEN not in url and TOKEN not in err
    assert f"SigninToken={TOKEN}" in page
    assert not os.path.exists(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))


@pytest.mark.skipif(os.name == "nt" or sys.platform == "darwin", reason="a browser is always assumed there")
def test_console_without_a_browser_prints_the_link_with_a_note(console_run, monkeypatch):
    for var in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    code, out, err, _ = console_run("--role", "admin")
    assert code == 0 and f"SigninToken={TOKEN}" in out
    assert "no browser could be opened" in err and TOKEN not in err


def test_console_refuses_a_get_session_token_role_before_any_prompt(console_run, federation):
    code, out, err, calls = console_run("--role", "session", "--print")
    assert code == 3 and out == "" and calls == [] and federation.queries == []
    assert "role 'session' has no arn" in err and "cannot sign in to the console" in err


def test_console_refuses_long_lived_keys(console_run, federation):
    code, out, err, _ = console_run("--role", "admin", "--print", creds=Credentials("AKIAFAKE0000000001", "s"))
    assert code == 3 and out == "" and "long-lived keys" in err and federation.queries == []


def test_console_maps_a_refusal_to_exit_9(console_run, federation):
    federation.status, federation.body = 400, b""
    code, out, err, _ = console_run("--role", "admin", "--print")
    assert code == 9 and out == "" and "refused the credentials of role 'admin'" in err


# -- settings -------------------------------------------------------------------------------------------

def test_prompt_and_federation_url_settings_are_validated():
    cfg = parse("c.toml", b"")
    assert cfg.settings["prompt"] == "terminal" and cfg.settings["federation_url"] is None
    cfg = parse("c.toml", b'[settings]\nprompt = "gui"\nfederation_url = "https://signin.example/federation"\n')
    assert cfg.settings["prompt"] == "gui" and cfg.settings["federation_url"] == "https://signin.example/federation"
    with pytest.raises(ConfigError) as e:
        parse("c.toml", b'[settings]\nprompt = "dialog"\nfederation_url = "http://signin.example/federation"\n')
    assert "settings.prompt: must be one of 'terminal', 'gui', not 'dialog'" in str(e.value)
    assert "settings.federation_url: 'http://signin.example/federation' must be an https:// URL" in str(e.value)


# -- GUI prompts --------------------------------------------------------------------------------------------

def test_detect_needs_a_display_and_a_dialog_tool(desktop, monkeypatch):
    desktop()
    found = gui.detect("credproc login --role admin", platform="linux")
    assert isinstance(found.driver, gui.Zenity) and found.driver.exe.endswith(os.sep + "zenity")
    monkeypatch.delenv("DISPLAY")
    assert gui.detect("x", platform="linux") is None
    assert gui.detect("x", env={"WAYLAND_DISPLAY": "wayland-0"}, platform="linux", which=lambda n: None) is None


def test_detect_picks_the_tool_of_each_platform():
    which = {"zenity": "/usr/bin/zenity", "kdialog": "/usr/bin/kdialog", "osascript": "/usr/bin/osascript",
             "powershell": "C:\\powershell.exe"}.get
    kde = gui.detect("x", env={"DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "KDE"}, platform="linux", which=which)
    assert isinstance(kde.driver, gui.KDialog)
    assert isinstance(gui.detect("x", env={}, platform="darwin", which=which).driver, gui.OsaScript)
    assert gui.detect("x", env={"SSH_CONNECTION": "1 2 3 4"}, platform="darwin", which=which) is None
    assert isinstance(gui.detect("x", env={}, platform="win32", which=which).driver, gui.PowerShell)


def test_the_question_goes_in_argv_or_env_and_never_into_a_script():
    question = 'Password for "bob"; do shell script "x": '
    argv, env = gui.OsaScript("/usr/bin/osascript").ask(question, True, 120)
    assert argv[-1] == question and all(question not in a for a in argv[:-1]) and "with hidden answer" in " ".join(argv)
    argv, env = gui.PowerShell("powershell").ask(question, True, 120)
    assert env == {gui.TEXT_VAR: question} and all(question not in a for a in argv) and "Get-Credential" in argv[-1]
    assert gui.OsaScript("o").outcome(1, "execution error: User canceled. (-128)") == "cancel"
    assert gui.OsaScript("o").outcome(1, "execution error: no answer (1712)") == "timeout"
    assert gui.OsaScript("o").outcome(1, "execution error: No user interaction allowed. (-1713)") == "error"


def test_without_a_terminal_the_question_is_a_dialog_and_the_answer_never_in_argv(desktop):
    calls = desktop(answer="hunter2 with spaces ")
    t = Terminal("credproc login --role admin", gui=gui.detect("credproc login --role admin"))
    assert t.available()
    t.require("a password")  # no LoginRequired
    assert t.ask("CAS password for alice: ", what="a CAS password", secret=True) == "hunter2 with spaces "
    (argv,) = calls()
    assert argv[0] == "--entry" and "--text=CAS password for alice:" in argv and "--hide-text" in argv
    assert "--timeout=120" in argv and not any("hunter2" in a for a in argv)


def test_a_cancelled_dialog_is_authentication_failed(desktop):
    desktop(exit_code=1)
    t = Terminal("credproc login --role admin", gui=gui.detect("credproc login --role admin"))
    with pytest.raises(AuthenticationFailed, match="cancelled"):
        t.ask("MFA code for arn:aws:iam::123456789012:mfa/alice: ", what="an MFA code")


def test_an_unanswered_dialog_is_login_required(desktop, monkeypatch):
    desktop(exit_code=5)  # zenity's own --timeout fired
    prompter = gui.detect("credproc login --role admin")
    with pytest.raises(LoginRequired, match="no answer within 120 s; run in a terminal: credproc login --role admin"):
        prompter.ask("MFA code: ", "an MFA code")
    desktop(sleep=30)  # a tool that ignores its timeout is killed
    monkeypatch.setattr(gui, "GRACE", 0)
    prompter.timeout = 1
    t = time.monotonic()
    with pytest.raises(LoginRequired, match="no answer within 1 s"):
        prompter.ask("MFA code: ", "an MFA code")
    assert time.monotonic() - t < 10


def test_choose_is_a_list_dialog(desktop):
    calls = desktop(answer="2")
    t = Terminal("x", gui=gui.detect("x"))
    roles = ["arn:aws:iam::1:role/A", "arn:aws:iam::1:role/B"]
    assert t.choose("CAS offers alice several AWS roles:", roles, what="a role choice") == 1
    (argv,) = calls()
    assert argv[0] == "--list" and argv[-4:] == ["1", roles[0], "2", roles[1]]
    desktop(answer="")
    with pytest.raises(AuthenticationFailed, match="no valid choice"):
        t.choose("pick", roles, what="a role choice")


def test_say_is_a_non_blocking_dialog(desktop):
    calls = desktop(sleep=5)
    t = Terminal("x", gui=gui.detect("x"))
    start = time.monotonic()
    t.say("Approve the Duo push on your phone...")
    assert time.monotonic() - start < 2
    deadline = time.monotonic() + 10
    while not calls() and time.monotonic() < deadline:
        time.sleep(0.05)
    (argv,) = calls()
    assert argv[0] == "--info" and "--text=Approve the Duo push on your phone..." in argv


def test_a_terminal_that_is_not_interactive_never_opens_a_dialog(desktop):
    calls = desktop()
    t = Terminal("credproc login --role admin", interactive=False, gui=gui.detect("x"))
    assert not t.available()
    with pytest.raises(LoginRequired):
        t.ask("MFA code: ", what="an MFA code")
    assert calls() == []


def _context_terminal(tmp_path, monkeypatch, settings):
    path = tmp_path / "credproc.toml"
    path.write_text(f"[settings]\n{settings}\n")
    for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var))
    monkeypatch.delenv("CREDPROC_ACTIVE", raising=False)  # app.context sets it (the recursion guard)
    ctx = app.context(types.SimpleNamespace(config=str(path), role="admin"))
    monkeypatch.delenv("CREDPROC_ACTIVE", raising=False)
    return ctx.terminal


def test_with_prompt_terminal_nothing_gui_happens(desktop, tmp_path, monkeypatch):
    calls = desktop()
    terminal = _context_terminal(tmp_path, monkeypatch, "")
    assert terminal.gui is None and not terminal.available()
    with pytest.raises(LoginRequired) as e:
        terminal.ask("MFA code: ", what="an MFA code")
    assert str(e.value).startswith(("an MFA code is needed and there is no terminal to ask on; run in a terminal: ",
                                    "an MFA code is needed and prompts are turned off by CREDPROC_NO_PROMPT; "))
    terminal.say("nothing to see")
    time.sleep(0.3)
    assert calls() == []


def test_with_prompt_gui_the_context_terminal_asks_in_a_dialog(desktop, tmp_path, monkeypatch):
    desktop(answer="654321")
    terminal = _context_terminal(tmp_path, monkeypatch, 'prompt = "gui"')
    assert isinstance(terminal.gui, gui.GuiPrompter) and "login --role admin" in terminal.gui.login_command
    assert terminal.ask("MFA code: ", what="an MFA code") == "654321"
