"""Browser sign-ins of OpenID Connect and Identity Center: a pinned loopback port, and when a browser
sign-in may start without a terminal (prompt = "gui" on a desktop)."""

import socket

import pytest

from credproc import config
from credproc.core.errors import ConfigError, LoginRequired
from credproc.core.loopback import Listener
from credproc.core.prompt import Terminal
from credproc.sources.oidc.protocol import Client


def test_a_pinned_port_held_by_another_program_is_an_error_at_once():
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    port = squatter.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} \\(idp.x.redirect_port\\) is in use") as e:
            Listener("/callback", "state", port, "idp.x.redirect_port")
        assert e.value.exit_code == 3 and "no browser was opened" in e.value.message
    finally:
        squatter.close()
    listener = Listener("/callback", "state", port)  # free again: it listens there
    try:
        assert listener.port == port
    finally:
        listener.stop()


class Issuer:
    def endpoint(self, name):
        return "https://op.example.com/authorize"


class Attended:
    login_command = "credproc login --role r"

    def require_browser(self, what):
        pass

    def attended(self):
        return True

    def say(self, line):
        pass


def test_the_browser_is_not_opened_when_the_pinned_port_is_taken(monkeypatch):
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    port = squatter.getsockname()[1]
    opened = []
    client = Client({"name": "x", "client_id": "c", "redirect_path": "/callback", "redirect_port": port,
                     "scopes": ["openid"], "open_browser": True}, Issuer(), Attended())
    monkeypatch.setattr(client, "_open_browser", opened.append)
    try:
        with pytest.raises(ConfigError, match="in use by another program"):
            client.browser_login(wait=1)
    finally:
        squatter.close()
    assert opened == []


def test_a_browser_sign_in_without_a_terminal_needs_prompt_gui_and_a_desktop(monkeypatch):
    monkeypatch.setenv("CREDPROC_NO_PROMPT", "1")  # no terminal, whatever runs the tests
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    assert Terminal("x", desktop=True).browser_possible() is True
    assert Terminal("x", desktop=False).browser_possible() is False
    assert Terminal("x", interactive=False, desktop=True).browser_possible() is False
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert Terminal("x", desktop=True).browser_possible() is False
    with pytest.raises(LoginRequired) as e:
        Terminal("credproc login --role r").require_browser("a browser sign-in")
    assert 'set [settings] prompt = "gui"' in e.value.hint


@pytest.mark.parametrize("kind, extra", [
    ("oidc", 'issuer = "https://op.example.com"\nclient_id = "c"\n'),
    ("sso", 'start_url = "https://x.awsapps.com/start"\nregion = "eu-west-1"\n')])
def test_redirect_port_is_checked(tmp_path, kind, extra):
    path = tmp_path / "c.toml"
    path.write_text(f'[idp.x]\ntype = "{kind}"\n{extra}flow = "device"\nredirect_port = 80\n')
    with pytest.raises(ConfigError) as e:
        config.load(str(path))
    assert "idp.x.redirect_port: must be between 1024 and 65535" in e.value.message
    assert "idp.x.redirect_port: works only with flow = \"browser\"" in e.value.message
    path.write_text(f'[idp.x]\ntype = "{kind}"\n{extra}flow = "browser"\nredirect_port = 8400\n')
    assert config.load(str(path)).idps["x"]["redirect_port"] == 8400
