"""core/browser.py's secret-link opening (the console's sign-in link) and the `browser` /
`browser_profile` keys: which program and flags, the private redirect page, the config checks."""

import os
import stat
import urllib.parse
import urllib.request

import pytest

from credproc import config
from credproc.core import browser
from credproc.core.errors import ConfigError

LINK = "https://signin.aws.amazon.com/federation?Action=login&Issuer=credproc&SigninToken=SECRET-TOKEN\"'<>&x"


def on_linux(monkeypatch):
    monkeypatch.setattr(browser, "_platform", lambda: "linux")


@pytest.mark.parametrize("name, found, family", [
    ("chrome", "/usr/bin/google-chrome-stable", "chromium"),
    ("Edge", "/usr/bin/microsoft-edge", "chromium"),
    ("firefox", "/usr/bin/firefox", "firefox"),
    ("brave", "/usr/bin/brave-browser", "chromium"),
])
def test_known_names_are_looked_up_on_path(monkeypatch, name, found, family):
    on_linux(monkeypatch)
    present = {"google-chrome-stable": "/usr/bin/google-chrome-stable", "microsoft-edge": "/usr/bin/microsoft-edge",
               "firefox": "/usr/bin/firefox", "brave-browser": "/usr/bin/brave-browser"}
    launch = browser.launcher(name, "work", which=present.get)
    assert launch.argv == [found] and launch.family == family


def test_profile_flags_per_family():
    page = "file:///run/user/1000/credproc-link-x/open.html"
    assert browser.Launcher(["/usr/bin/chrome"], "chromium", "Profile 1").command(page) == \
        ["/usr/bin/chrome", "--profile-directory=Profile 1", page]
    assert browser.Launcher(["/usr/bin/firefox"], "firefox", "work").command(page) == \
        ["/usr/bin/firefox", "-P", "work", "-new-tab", page]
    assert browser.Launcher(["/usr/bin/firefox"], "firefox").command(page) == ["/usr/bin/firefox", page]


def test_a_command_is_split_and_firefox_recognised_by_its_program(monkeypatch):
    which = {"/opt/ff/firefox-esr": "/opt/ff/firefox-esr", "vivaldi": "/usr/bin/vivaldi"}.get
    launch = browser.launcher("/opt/ff/firefox-esr --private-window", "p", which=which)
    assert launch.argv == ["/opt/ff/firefox-esr", "--private-window"] and launch.family == "firefox"
    assert browser.launcher("vivaldi", which=which).family == "chromium"


def test_a_browser_that_is_not_there_is_a_configuration_error(monkeypatch):
    on_linux(monkeypatch)
    with pytest.raises(ConfigError) as e:
        browser.launcher("chrome", which=lambda n: None)
    assert "browser 'chrome' is not installed here (looked for google-chrome, google-chrome-stable)" in str(e.value)
    with pytest.raises(ConfigError):
        browser.launcher("/nope/browser", which=lambda n: None, exists=lambda p: False)


def test_the_redirect_page_is_private_and_holds_the_link_escaped(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    directory, url = browser.write_redirect_page(LINK)
    path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    assert os.path.dirname(path) == directory and directory.startswith(str(tmp_path))
    assert "SECRET-TOKEN" not in url
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    page = open(path, encoding="utf-8").read()
    assert 'content="0;url=https://signin.aws.amazon.com/federation?Action=login&amp;Issuer=credproc&amp;' \
           'SigninToken=SECRET-TOKEN&quot;&#x27;&lt;&gt;&amp;x"' in page
    assert "<\\/" not in LINK and "</script>" not in page.split("<script>")[1].split("</script>")[0]
    assert 'name="referrer" content="no-referrer"' in page


def test_without_a_browser_nothing_is_left_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    launch = browser.Launcher(["/nonexistent/browser"], "chromium", "x")
    assert browser.open_secret_url(LINK, launch) is False
    assert os.listdir(tmp_path) == []


def test_a_started_browser_gets_only_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    started, later = [], []
    monkeypatch.setattr("subprocess.Popen", lambda argv, **kw: started.append((argv, kw)))
    monkeypatch.setattr(browser, "_remove_later", later.append)
    assert browser.open_secret_url(LINK, browser.Launcher(["/usr/bin/chrome"], "chromium", "Work")) is True
    ((argv, kw),) = started
    assert argv[:2] == ["/usr/bin/chrome", "--profile-directory=Work"] and argv[2].startswith("file://")
    assert not any("SECRET-TOKEN" in a for a in argv)
    assert kw["stdin"] is not None and kw.get("start_new_session") is True
    assert later == [os.path.dirname(urllib.request.url2pathname(urllib.parse.urlsplit(argv[2]).path))]


# -- the keys --------------------------------------------------------------------------------------------

BASE = '[idp.corp]\ntype = "iam"\nprofile = "p"\n\n[role.r]\nidp = "corp"\narn = "arn:aws:iam::111111111111:role/A"\n'


def test_browser_keys_parse_per_role_and_in_settings():
    cfg = config.parse("c.toml", ('[settings]\nbrowser = "firefox"\nbrowser_profile = "default"\n' + BASE +
                                  'browser = "chrome"\nbrowser_profile = "Profile 1"\n').encode())
    assert (cfg.settings["browser"], cfg.settings["browser_profile"]) == ("firefox", "default")
    assert (cfg.roles["r"]["browser"], cfg.roles["r"]["browser_profile"]) == ("chrome", "Profile 1")


@pytest.mark.parametrize("text, problem", [
    (BASE + 'browser_profile = "work"\n', "role.r.browser_profile: needs browser (in the role or in [settings])"),
    ('[settings]\nbrowser_profile = "work"\n' + BASE, "settings.browser_profile: needs settings.browser"),
    (BASE + 'browser = "chrome"\nbrowser_profile = "--remote-debugging-port=9222"\n',
     "role.r.browser_profile: must not start with '-'"),
    (BASE + 'browser = "chrome\\u001b"\n', "role.r.browser: must not contain control characters"),
    (BASE + 'browser = ""\n', "role.r.browser: must not be empty"),
])
def test_bad_browser_keys_are_configuration_errors(text, problem):
    with pytest.raises(ConfigError) as e:
        config.parse("c.toml", text.encode())
    assert problem in str(e.value)


def test_browser_keys_leave_the_cached_credentials_alone():
    plain = config.parse("c.toml", BASE.encode())
    with_browser = config.parse("c.toml", (BASE + 'browser = "chrome"\nbrowser_profile = "Profile 1"\n').encode())
    assert plain.fingerprint("r") == with_browser.fingerprint("r")
