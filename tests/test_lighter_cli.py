"""The full path starts lighter (issue 22): only the parser of the command being run is built (its
module alone imported), the version is looked up only for --version, and a command imports what it
needs when it needs it. Measured in fresh interpreters of the installed package."""

import json
import os
import subprocess
import sys

import pytest

from credproc import cli, commands


@pytest.mark.parametrize("argv, expected", [
    (["--role", "admin"], None),
    (["--role=admin"], None),
    ([], None),
    (["--version"], None),
    (["status"], "status"),
    (["--config", "c.toml", "status", "--json"], "status"),
    (["--config=c.toml", "--debug", "logout", "--all"], "logout"),
    (["--role", "status", "login"], "login"),  # a role named like a command is --role's value
    (["--ro", "admin", "exec", "--", "aws"], "exec"),  # argparse's abbreviations take a value too
    (["--help"], cli.ALL),
    (["-h"], cli.ALL),
    (["--he"], cli.ALL),
    (["status", "--help"], "status"),
    (["nosuchcommand"], None),
    (["--", "status"], None),
])
def test_the_command_is_found_before_parsing(argv, expected):
    assert cli.command_in(argv) == expected


def loaded(argv, env=None):
    """Run cli.main(argv) in a fresh interpreter: (exit code, credproc.commands.* modules loaded, other modules)."""
    code = ("import sys, json; from credproc import cli; rc = cli.main(%r); "
            "print(json.dumps([rc, sorted(m for m in sys.modules if m.startswith('credproc.commands.')), "
            "[m for m in ('importlib.metadata', 'shutil', 'subprocess', 'email.utils', 'credproc.chain', "
            "'concurrent.futures') if m in sys.modules]]))" % (argv,))
    base = {k: v for k, v in os.environ.items() if k != "CREDPROC_ACTIVE"}  # set by in-process cli.main of other tests
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **(env or {})},
                       timeout=60)
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[idp.corp]\ntype = "iam"\nprofile = "p"\n[role.admin]\nidp = "corp"\n'
                    'arn = "arn:aws:iam::111111111111:role/Admin"\n')
    return {"CREDPROC_CONFIG": str(path), "XDG_CACHE_HOME": str(tmp_path / "c"), "XDG_DATA_HOME": str(tmp_path / "d"),
            "HOME": str(tmp_path)}


def test_status_builds_only_its_own_parser_and_imports_no_version_lookup_or_sts_client(config):
    rc, command_modules, heavy = loaded(["status"], config)
    assert rc == 0
    assert command_modules == ["credproc.commands.status"]
    assert heavy == []


def test_a_role_refresh_loads_no_command_module_and_no_version_lookup(config):
    rc, command_modules, heavy = loaded(["--role", "nosuchrole"], config)  # the config error comes after parsing
    assert rc == 3
    assert command_modules == []
    assert "importlib.metadata" not in heavy and "shutil" not in heavy


def test_the_top_level_help_still_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in commands.NAMES:
        assert f"    {name} " in out or f"    {name}\n" in out


def test_a_wrong_guess_costs_a_second_parse_not_a_wrong_answer(monkeypatch, config, capsys):
    for k, v in config.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(cli, "command_in", lambda argv: None)  # as if the guess missed `status`
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["roles"][0]["role"] == "admin"


def test_the_version_is_only_looked_up_for_version():
    code = ("import sys\nfrom credproc import cli\ntry:\n    cli.main(['--version'])\nexcept SystemExit as e:\n"
            "    sys.stderr.write(repr((e.code, 'importlib.metadata' in sys.modules)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("credproc ")
    assert r.stderr == "(0, True)"


@pytest.mark.parametrize("url", [
    "https://sts.amazonaws.com", "https://sts.eu-west-1.amazonaws.com/", "https://login.example.com:8443/cas/v1?x=1#f",
    "https://10.0.0.1/path/@evil.example", "https://a", "https://a-b.c/", "https://x.y/%2F..%2F",
])
def test_the_plain_https_shortcut_accepts_only_what_urlsplit_accepts(url):
    """core/urls.py decides plain https URLs without urllib.parse: each one it takes, urlsplit sees as
    https with a host; the tricky ones are left to urlsplit."""
    import urllib.parse

    from credproc.core import urls

    assert urls._PLAIN_HTTPS.match(url)
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "https" and parts.hostname


@pytest.mark.parametrize("url, ok", [
    ("https://user@evil.example", True), ("HTTPS://EXAMPLE.COM", True), ("https://[::1]/", True),
    ("http://127.0.0.1:5000", True), ("http://localhost/", True), ("http://example.com", False),
    ("https://", False), ("https:///path", False), ("https://exa mple.com", None), ("https://example.com\n", None),
    ("ftp://example.com", False), ("https://[::1", False), ("javascript:alert(1)//https://x", False),
])
def test_urls_the_shortcut_leaves_to_urlsplit_are_still_checked(url, ok):
    from credproc.core import urls
    from credproc.core.errors import ConfigError

    assert not urls._PLAIN_HTTPS.match(url)
    try:
        urls.check_url(url, "k")
        accepted = True
    except ConfigError:
        accepted = False
    if ok is not None:
        assert accepted is ok
