"""The device flow's polling rules (RFC 8628), with a fake token endpoint and a fake clock."""

import pytest

from credproc.core.errors import AuthenticationFailed, LoginRequired
from credproc.sources.oidc.protocol import DEVICE_GRANT, Client
from tests.fakes import ScriptedTerminal


class FakeIssuer:
    issuer = "https://idp.example.com"

    def endpoint(self, name):
        return f"https://idp.example.com/{name}"

    def metadata(self):
        return {"discovery": {}}


class Clock:
    def __init__(self):
        self.t = 1000.0
        self.sleeps = []

    def time(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def client(answers, interval=None, terminal=None):
    idp = {"name": "corp", "client_id": "cli", "scopes": ["openid"], "timeout": 5, "flow": "device", "open_browser": False}
    clock = Clock()
    c = Client(idp, FakeIssuer(), terminal or ScriptedTerminal([]), sleep=clock.sleep, clock=clock.time)
    device = {"device_code": "dc", "user_code": "ABCD-EFGH", "verification_uri": "https://idp.example.com/device",
              "expires_in": 600}
    if interval is not None:
        device["interval"] = interval
    script = [(200, device)] + list(answers)
    sent = []

    def post(url, form, what):
        sent.append(form)
        return script.pop(0)

    c._post = post
    return c, clock, sent


def test_default_interval_is_5_seconds_and_slow_down_adds_5():
    c, clock, sent = client([(400, {"error": "authorization_pending"}), (400, {"error": "slow_down"}),
                             (400, {"error": "authorization_pending"}), (200, {"id_token": "t"})])
    assert c.device_login() == {"id_token": "t"}
    assert clock.sleeps == [5, 5, 10, 10]
    assert all(f["grant_type"] == DEVICE_GRANT and f["device_code"] == "dc" for f in sent[1:])


def test_the_servers_interval_is_used():
    c, clock, _ = client([(200, {"id_token": "t"})], interval=2)
    c.device_login()
    assert clock.sleeps == [2]


@pytest.mark.parametrize("error, message", [("expired_token", "expired before the sign-in"),
                                            ("access_denied", "denied in the browser")])
def test_terminal_errors_end_the_poll(error, message):
    c, _, _ = client([(400, {"error": "authorization_pending"}), (400, {"error": error})])
    with pytest.raises(AuthenticationFailed, match=message):
        c.device_login()


def test_the_code_is_shown_on_the_terminal_and_polling_stops_at_expiry():
    term = ScriptedTerminal([])
    c, clock, _ = client([(400, {"error": "authorization_pending"})] * 200, terminal=term)
    with pytest.raises(AuthenticationFailed, match="expired"):
        c.device_login()
    assert any("ABCD-EFGH" in line and "https://idp.example.com/device" in line for line in term.said)
    assert clock.t - 1000 <= 600 + 5


def test_no_terminal_no_device_flow():
    c, _, sent = client([], terminal=ScriptedTerminal(None))
    with pytest.raises(LoginRequired):
        c.device_login()
    assert sent == []
