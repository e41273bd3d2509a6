"""Browser sign-ins on a pinned loopback port (redirect_port), against the real oidc-provider with
a client whose redirect URI is compared exactly (application_type "web", as many real providers
treat every client), and browser sign-ins started without a terminal with prompt = "gui"."""

import json
import os
import socket
import sys
import threading

import pytest

from tests.integration.conftest import ROLE_DEV
from tests.integration.test_oidc import oidc_config
from tests.peers.browser import BrowserError, complete_code_flow
from tests.peers.net import free_port
from tests.peers.oidc import OidcProvider, node_available
from tests.pty_helper import PtyProcess
from tests.sandbox import caller_arn, credproc_exe

pytestmark = pytest.mark.integration


@pytest.fixture
def exact():
    """(provider, port): the one redirect URI it accepts is http://127.0.0.1:PORT/callback."""
    reason = node_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    with OidcProvider(roles=[ROLE_DEV], application_type="web",
                      redirect_uris=[f"http://127.0.0.1:{port}/callback"]) as provider:
        yield provider, port


def browser_script(tmp_path, log):
    """A $BROWSER stand-in that completes the code flow (logging each run), as a user would."""
    script = tmp_path / "browser.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {os.getcwd()!r})\n"
        f"open({str(log)!r}, 'a').write('run\\n')\n"
        f"open({str(log)!r} + '.argv', 'a').write(' '.join(sys.argv) + '\\n')\n"
        "from tests.peers.browser import complete_code_flow\n"
        "complete_code_flow(sys.argv[1], login='bob')\n")
    return f"{sys.executable} {script} %s"


def test_a_provider_that_compares_exactly_refuses_a_random_port(sandbox, exact, sts):
    op, _ = exact
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url, flow="browser"))
    p = PtyProcess([credproc_exe(), "--role", "dev"], sandbox.env)
    p.expect("code_challenge_method=S256")
    url = p.screen.decode().split("this machine:", 1)[1].split()[0]
    try:
        with pytest.raises(BrowserError, match="redirect_uri"):
            complete_code_flow(url, login="bob")
    finally:
        p.proc.kill()
        p.finish(timeout=30)


def test_redirect_port_makes_the_exact_redirect_uri(sandbox, exact, sts):
    op, port = exact
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url, flow="browser",
                                     extra_idp=f"redirect_port = {port}"))
    p = PtyProcess([credproc_exe(), "--role", "dev"], sandbox.env)
    p.expect("code_challenge_method=S256")
    url = p.screen.decode().split("this machine:", 1)[1].split()[0]
    assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback" in url
    assert "Signed in." in complete_code_flow(url, login="bob").response.text
    code, out, err = p.finish(timeout=30)
    assert code == 0, err
    assert caller_arn(json.loads(out), sts.url) == "arn:aws:sts::111111111111:assumed-role/dev/bob@example.com"


def test_a_port_in_use_stops_at_once_and_opens_no_browser(sandbox, exact, sts, tmp_path):
    op, port = exact
    log = tmp_path / "browser-runs"
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url, flow="browser", open_browser=True,
                                     extra_idp=f"redirect_port = {port}"))
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen(1)
    try:
        p = PtyProcess([credproc_exe(), "--role", "dev"], {**sandbox.env, "BROWSER": browser_script(tmp_path, log)})
        code, out, err = p.finish(timeout=30)
    finally:
        squatter.close()
    assert code == 3, (err, p.screen)
    assert f"127.0.0.1:{port} (idp.corp.redirect_port) is in use by another program" in err.decode()
    assert "no browser was opened" in err.decode()
    assert not log.exists() and out == b""


def test_with_prompt_gui_a_desktop_is_enough_and_n_callers_open_one_browser(sandbox, exact, sts, tmp_path):
    op, port = exact
    log = tmp_path / "browser-runs"
    sandbox.write_config('[settings]\nprompt = "gui"\n' + oidc_config(
        op.issuer, op.client_id, sts.url, flow="browser", open_browser=True,
        extra_idp=f"redirect_port = {port}").replace("[settings]\n", "", 1))
    env = {"BROWSER": browser_script(tmp_path, log), "DISPLAY": ":0", "PATH": "/usr/bin:/bin"}  # no dialog tool needed
    results = []

    def call():
        results.append(sandbox.run("--role", "dev", env=env, timeout=90))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0] * 8, [r.stderr.decode()[-300:] for r in results if r.returncode]
    assert log.read_text().splitlines() == ["run"]  # one browser for all of them
    # the authorize URL (its state, PKCE challenge and redirect) was on no argv: the browser got a page
    [argv] = open(str(log) + ".argv").read().splitlines()
    assert "file://" in argv and "state=" not in argv and "code_challenge" not in argv and "127.0.0.1" not in argv
    assert caller_arn(json.loads(results[0].stdout), sts.url).endswith("assumed-role/dev/bob@example.com")


def test_without_prompt_gui_no_terminal_means_no_browser(sandbox, exact, sts, tmp_path):
    op, _ = exact
    log = tmp_path / "browser-runs"
    sandbox.write_config(oidc_config(op.issuer, op.client_id, sts.url, flow="browser", open_browser=True))
    r = sandbox.run("--role", "dev", env={"BROWSER": browser_script(tmp_path, log), "DISPLAY": ":0"})
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "a sign-in at http://127.0.0.1:" in err and "is needed and there is no terminal to ask on" in err
    assert 'on a desktop, set [settings] prompt = "gui" to let it open the browser without one' in err
    assert not log.exists()
