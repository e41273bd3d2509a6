"""flow = "browser" end to end: credproc -> a real Chromium (Debian's, headless through a wrapper
script set as `browser`) driven over its DevTools pipe -> a real SimpleSAMLphp IdP on loopback (its
StaticSource signs the user in without a form, as an IdP does for a browser that has a session), or
a sign-on page with no HTML form at all (its script fetches the response and builds the form) ->
moto's AssumeRoleWithSAML -> real consumers."""

import base64
import os
import threading
import time

import pytest

from tests.peers import chromium, saml_idp
from tests.peers.saml_idp import SamlIdp, ScriptedSignOn
from tests.peers.saml_sts import SamlStsProxy
from tests.sandbox import caller_arn

ACCOUNT = "123456789012"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
READ = f"arn:aws:iam::{ACCOUNT}:role/ReadOnly"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/SSP"
USERS = {"bob": {"password": "bob's secret pw", "roles": [f"{ADMIN},{PROVIDER}"], "session_name": "bob@example.com",
                 "session_duration": 1800}}
DESKTOP = {"DISPLAY": ":0"}  # what credproc looks for; the headless browser needs no real display
pytestmark = pytest.mark.integration


def _require(reason):
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def idp():
    _require(saml_idp.missing())
    with SamlIdp(USERS, static_user="bob") as server:
        yield server


@pytest.fixture
def browser(tmp_path):
    _require(chromium.missing())
    return chromium.Wrapper(tmp_path)


@pytest.fixture
def sts(moto_server):
    proxy = SamlStsProxy(moto_server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def scripted(idp):
    page = ScriptedSignOn(idp)
    yield page
    page.stop()


def config(sts_url, url, browser, roles=None, extra=""):
    lines = [f'[settings]\nsts_endpoint_url = "{sts_url}"\nbrowser = "{browser}"\n',
             f'[idp.corp]\ntype = "saml"\nflow = "browser"\nurl = "{url}"\n{extra}']
    for name, arn in (roles or {"admin": ADMIN}).items():
        lines.append(f'[role.{name}]\nidp = "corp"\nduration = 3600\narn = "{arn}"\n')
    return "\n".join(lines)


def test_a_browser_sign_in_gives_the_role_to_the_aws_cli(sandbox, idp, sts, browser, moto_server, tmp_path):
    from tests.peers.consumers import aws_cli_caller_arn

    sandbox.write_config(config(sts.url, idp.initiated_url(), browser.path))
    sandbox.add_aws_profile("admin", "admin", moto_server.url)
    sandbox.env.update(DESKTOP)
    started = time.monotonic()
    assert aws_cli_caller_arn(sandbox.env, "admin") == f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/bob@example.com"
    print(f"launch to credentials (the AWS CLI's whole run): {time.monotonic() - started:.1f} s")
    [call] = sts.saml_calls()
    assert (call["RoleArn"], call["PrincipalArn"], call["DurationSeconds"]) == (ADMIN, PROVIDER, "1800")
    sent = base64.b64decode(call["SAMLAssertion"])
    assert b"urn:oasis:names:tc:SAML:2.0:status:Success" in sent
    assert [idp.verify(sent, e, str(tmp_path / "sent.xml")) for e in ("Response", "Assertion")] == [True, True]
    [(pid, argv)] = browser.launches()
    # credproc's own flags, then about:blank (it navigates there itself); never a TCP debugging port,
    # never headless or sandbox flags of its own (those are the wrapper's)
    assert "--remote-debugging-pipe" in argv and "--remote-debugging-port" not in argv
    assert "--host-resolver-rules=MAP signin.aws.amazon.com ~NOTFOUND" in argv
    assert "--headless" not in argv and "--no-sandbox" not in argv and argv.endswith("about:blank")
    profile = os.path.join(sandbox.env["XDG_DATA_HOME"], "credproc", "browser", "saml-corp")
    assert f"--user-data-dir={profile}" in argv
    assert os.stat(profile).st_mode & 0o777 == 0o700
    assert chromium.process_group(pid) == []  # the browser is gone when credproc is
    # the next call is a cache hit: no browser
    assert aws_cli_caller_arn(sandbox.env, "admin").endswith("assumed-role/Admin/bob@example.com")
    assert len(browser.launches()) == 1 and idp.sign_ons() == 1


def test_a_page_without_an_html_form_and_no_debugging_port(sandbox, idp, sts, browser, scripted, moto_server):
    """The sign-on page's script builds and submits the form; flow = "form" could not get past it.
    While the browser is open (the page waits 3 s), none of its processes listens on a TCP port."""
    sandbox.write_config(config(sts.url, scripted.start_url(delay=3), browser.path))
    sandbox.env.update(DESKTOP)
    proc = sandbox.popen("--role", "admin")
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        for pid, _ in browser.launches():
            group = chromium.process_group(pid)
            if group:
                seen.append((len(group), chromium.listening_sockets_of(group)))
        time.sleep(0.2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert seen and all(sockets == set() for _, sockets in seen), seen
    assert max(n for n, _ in seen) > 1  # the browser's helpers were looked at too
    import json

    assert caller_arn(json.loads(out), moto_server.url).endswith("assumed-role/Admin/bob@example.com")
    assert scripted.starts == 1 and len(sts.saml_calls()) == 1
    form = sandbox.run("--role", "admin", env={"CREDPROC_CONFIG": _form_config(sandbox, sts, scripted)})
    assert form.returncode == 9 and "no login form, no SAMLResponse" in form.stderr.decode()


def _form_config(sandbox, sts, scripted):
    path = os.path.join(sandbox.root, "form.toml")
    with open(path, "w") as f:
        f.write(f'[settings]\nsts_endpoint_url = "{sts.url}"\n[idp.corp]\ntype = "saml"\nflow = "form"\n'
                f'url = "{scripted.start_url()}"\nusername = "bob"\npassword_command = "echo pw"\n'
                f'[role.admin]\nidp = "corp"\narn = "{ADMIN}"\n')
    return path


def test_twenty_callers_and_two_roles_one_browser_window(sandbox, idp, sts, browser, scripted, moto_server):
    sandbox.write_config(config(sts.url, scripted.start_url(delay=2), browser.path, roles={"admin": ADMIN, "other": ADMIN}))
    sandbox.env.update(DESKTOP)
    results = []

    def call(role):
        results.append(sandbox.run("--role", role, timeout=90))

    threads = [threading.Thread(target=call, args=("admin" if i % 2 else "other",)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0] * 20, [r.stderr.decode()[-300:] for r in results if r.returncode]
    assert len(browser.launches()) == 1 and scripted.starts == 1
    assert len(sts.saml_calls()) == 2  # one per role, both from the one assertion


def test_a_closed_window_fails_within_seconds(sandbox, idp, sts, browser, scripted):
    """The user quits the browser without signing in (here: SIGTERM to it once the sign-on page has
    loaded, as closing its last window does; a page's own window.close() is not always allowed, so it
    cannot stand in for the user). The closed page target itself is covered with a scripted browser
    in tests/test_saml_browser.py."""
    import signal

    sandbox.write_config(config(sts.url, scripted.start_url(delay=600), browser.path, extra="signin_timeout = 120\n"))
    proc = sandbox.popen("--role", "admin", env=DESKTOP)
    deadline = time.monotonic() + 60
    while scripted.starts == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert scripted.starts == 1, proc.communicate(timeout=10)[1]
    [(pid, _)] = browser.launches()
    closed = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=90)
    took = time.monotonic() - closed
    err = err.decode()
    assert proc.returncode == 5, err
    assert "browser window for the SAML IdP at" in err and "was closed before the sign-in finished" in err
    assert took < 40, took  # at once, not at the sign-in's 120 s limit
    assert "Traceback" not in err and out == b"" and sts.calls == []
    assert chromium.process_group(pid) == []


def test_no_sign_in_within_the_limit_is_exit_4(sandbox, idp, sts, browser, scripted):
    sandbox.write_config(config(sts.url, scripted.start_url(delay=600), browser.path, extra="signin_timeout = 10\n"))
    started = time.monotonic()
    r = sandbox.run("--role", "admin", env=DESKTOP)
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "no sign-in at the SAML IdP at" in err and "within 10 s" in err
    assert 9 < time.monotonic() - started < 60  # its 10 s, not the default 300
    [(pid, _)] = browser.launches()
    assert chromium.process_group(pid) == []


def test_without_a_desktop_exit_4_at_once_and_no_browser(sandbox, idp, sts, browser):
    sandbox.write_config(config(sts.url, idp.initiated_url(), browser.path))
    started = time.monotonic()
    r = sandbox.run("--role", "admin")  # the sandbox has neither DISPLAY nor WAYLAND_DISPLAY
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "needs a browser window, and there is no desktop here" in err
    assert time.monotonic() - started < 20 and browser.launches() == []


def test_a_browser_that_is_not_there_is_exit_3_naming_the_key(sandbox, idp, sts, tmp_path):
    sandbox.write_config(config(sts.url, idp.initiated_url(), str(tmp_path / "no-such-browser")))
    r = sandbox.run("--role", "admin", env=DESKTOP)
    err = r.stderr.decode()
    assert r.returncode == 3, err
    assert "no-such-browser" in err and "[settings] browser" in err


def test_logout_removes_the_browser_profile(sandbox, idp, sts, browser):
    sandbox.write_config(config(sts.url, idp.initiated_url(), browser.path))
    sandbox.credentials("admin", env=DESKTOP)
    profile = os.path.join(sandbox.env["XDG_DATA_HOME"], "credproc", "browser", "saml-corp")
    assert os.path.isdir(profile)
    r = sandbox.run("logout", "--role", "admin")
    assert r.returncode == 0, r.stderr.decode()
    assert "removed the browser profile of idp 'corp'" in r.stdout.decode() + r.stderr.decode()
    assert not os.path.exists(profile)


def test_doctor_checks_the_browser_the_desktop_and_the_url(sandbox, idp, sts, browser, tmp_path):
    sandbox.write_config(config(sts.url, idp.initiated_url(), browser.path))
    out = sandbox.run("doctor", env=DESKTOP).stdout.decode()
    assert f"idp corp: the browser for sign-ins: {browser.path}" in out
    assert f"idp corp: the SAML IdP at {idp.url}/saml2/idp/SSOService.php (browser) answers (HTTP 200" in out
    out = sandbox.run("doctor").stdout.decode()  # no DISPLAY
    assert "no desktop here (DISPLAY and WAYLAND_DISPLAY are not set)" in out
    sandbox.write_config(config(sts.url, idp.initiated_url(), str(tmp_path / "gone")))
    r = sandbox.run("doctor", env=DESKTOP)
    assert r.returncode == 12 and "[settings] browser: browser" in r.stdout.decode()
    assert "gone is not found or not executable" in r.stdout.decode()
    # doctor starts no browser (its GET of the URL sends no credentials; this IdP's StaticSource
    # answers any GET with an assertion, which doctor does not look at)
    assert browser.launches() == []
