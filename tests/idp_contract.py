"""The contract every identity source (credproc/sources/<type>/) passes.

IdentitySourceContract is parametrized over the registry by tests/test_idp_contract.py, so a
source added to credproc.sources.SOURCES gets every check below without writing a line: its keys are
documented (and the README table matches), a minimal config parses, unknown keys and wrong types
are all reported at once, the chain is built without touching the network, and the status,
logout and doctor hooks run on an empty cache. Source-specific behaviour is tested in the
source's own test files.
"""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from credproc import cli, config
from credproc import sources as registry
from credproc.core import log
from credproc.core.errors import ConfigError
from credproc.sources import base, readme

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
ROLE = "arn:aws:iam::123456789012:role/Example"
# a valid value for every role key a source may declare as having no effect
VALID_ROLE_VALUES = {
    "session_name": "alice", "external_id": "ext-1", "source_identity": "alice", "tags": {"project": "blue"},
    "transitive_tag_keys": ["project"], "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    "region": "eu-west-1", "sts_endpoint_url": "https://sts.eu-west-1.amazonaws.com",
}
WRONG_TYPE = {str: 12345, int: "twelve", bool: "yes", list: "not-a-list", dict: "not-a-table"}
SESSION_KEYS = {"identity", "idp", "type", "kind", "state", "expires_at", "seconds_left"}
STATES = {"valid", "refresh due", "expired", "stale", "none"}


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def toml_config(source, idp_table=None, role_table=None):
    idp_table = dict(source.example_idp if idp_table is None else idp_table)
    role_table = dict(source.example_role if role_table is None else role_table)
    lines = ["[idp.src]", f"type = {toml_value(source.type_name)}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in idp_table.items()]
    lines += ["", "[role.r]", 'idp = "src"']
    lines += [f"{k} = {toml_value(v)}" for k, v in role_table.items()]
    return "\n".join(lines) + "\n"


def problems_of(text):
    with pytest.raises(ConfigError) as e:
        config.parse("test.toml", text.encode())
    return [line.strip() for line in e.value.message.splitlines()[1:]]


class NetworkUsed(AssertionError):
    pass


class IdentitySourceContract:
    """Subclasses (or a parametrized fixture) provide `source`: an IdentitySource."""

    @pytest.fixture
    def source(self):
        raise NotImplementedError

    @pytest.fixture
    def no_network(self, monkeypatch):
        """Every attempt to resolve or connect is recorded and refused; the test asserts none was made
        (recorded as well as raised, since some callers catch every exception)."""
        attempts = []

        def refuse(*args, **kwargs):
            attempts.append(args[1:2] or args[:1])
            raise NetworkUsed(f"network use: {args!r}")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket.socket, "connect_ex", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)
        monkeypatch.setattr(socket, "getaddrinfo", refuse)
        return attempts

    @pytest.fixture
    def home(self, tmp_path, monkeypatch):
        """An isolated HOME, XDG dirs and AWS files, and no terminal: nothing of the user's is read."""
        for var, sub in {"HOME": "home", "XDG_CONFIG_HOME": "xdg-config", "XDG_CACHE_HOME": "xdg-cache",
                         "XDG_DATA_HOME": "xdg-data", "AWS_CONFIG_FILE": "home/.aws/config",
                         "AWS_SHARED_CREDENTIALS_FILE": "home/.aws/credentials", "CREDPROC_CONFIG": "credproc.toml"}.items():
            monkeypatch.setenv(var, str(tmp_path / sub))
        (tmp_path / "home").mkdir()
        monkeypatch.setenv("CREDPROC_NO_PROMPT", "1")
        monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
        monkeypatch.delenv("CREDPROC_ACTIVE", raising=False)
        monkeypatch.setattr(log, "enabled", False)
        return tmp_path

    def parsed(self, source, home):
        text = toml_config(source)
        (home / "credproc.toml").write_text(text)
        return config.parse(str(home / "credproc.toml"), text.encode())

    def store(self, home):
        from credproc.core.store import EncryptedFileCache

        return EncryptedFileCache(str(home / "xdg-cache" / "credproc"), str(home / "xdg-data" / "credproc" / "cache.key"))

    def context(self, cfg, store):
        from credproc.context import Context
        from credproc.core.prompt import Terminal

        return Context(cfg, store, Terminal("credproc login --role r", interactive=False))

    # -- registration and documentation -----------------------------------------------------------
    def test_registered_under_its_own_type_name(self, source):
        assert isinstance(source, base.IdentitySource)
        assert registry.SOURCES[source.type_name] == f"credproc.sources.{source.type_name}.source"
        assert registry.get(source.type_name) is source
        assert re.match(r"^[a-z][a-z0-9_]*\Z", source.type_name)

    def test_every_key_is_documented(self, source):
        names = [k.name for k in source.keys]
        assert len(names) == len(set(names)), "a key is listed twice"
        assert "type" not in names
        for key in source.keys:
            assert re.match(r"^[a-z][a-z0-9_]*\Z", key.name)
            assert key.kind in WRONG_TYPE, f"{key.name}: kind must be one of {list(WRONG_TYPE)}"
            assert key.doc.strip() and "\n" not in key.doc, f"{key.name}: needs a one-line doc"
            assert key.readme_type().strip() and key.readme_default().strip()
            assert not (key.required and key.default is not None), f"{key.name}: required with a default"

    def test_the_readme_table_is_generated_from_the_keys(self, source):
        text = open(README, encoding="utf-8").read()
        start, end = readme.markers(source.type_name)
        current = readme.current_table(text, source.type_name)
        assert current is not None, (f"README.md has no key table for type {source.type_name!r}: add {start} and "
                                     f"{end} in its section, then run python -m credproc.sources.readme --write")
        assert current == readme.render_table(source), "README.md is out of step: run python -m credproc.sources.readme --write"
        heading = f'### `[idp.NAME]` with `type = "{source.type_name}"`: {source.title}\n'
        assert source.title and heading in text, f"the README's configuration reference needs the heading {heading!r}"

    def test_its_module_is_cheap_to_import(self, source):
        """Config parsing imports the module: no AWS SDK, HTTP client or crypto at import time."""
        light = ("credproc.sources", "credproc.sources.base", "credproc.sources.checks",
                 f"credproc.sources.{source.type_name}", f"credproc.sources.{source.type_name}.source")
        code = (f"import sys, credproc.sources.{source.type_name}.source as m; m.SOURCE.key_names(); "
                "heavy = [n for n in ('boto3', 'botocore', 'http.client', 'urllib.request', 'jwt', 'cryptography', "
                "'credproc.core.sts', 'credproc.core.http') if n in sys.modules]; "
                f"heavy += [n for n in sys.modules if n.startswith('credproc.sources') and n not in {light!r}]; "
                "print(heavy)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "[]"

    # -- configuration ----------------------------------------------------------------------------
    def test_the_minimal_config_parses(self, source, home):
        cfg = self.parsed(source, home)
        idp = cfg.idps["src"]
        assert idp["type"] == source.type_name and idp["name"] == "src"
        assert set(idp) == {"name", "type"} | {k.name for k in source.keys}
        for key in source.keys:
            if key.name not in source.example_idp:
                assert idp[key.name] == key.default, f"{key.name}: absent must mean its default"

    def test_unknown_keys_are_rejected(self, source, home):
        problems = problems_of(toml_config(source, {**source.example_idp, "no_such_key": 1}))
        known = ", ".join(sorted(source.key_names()))
        assert problems == [f"idp.src.no_such_key: unknown key (known: {known})"]

    def test_every_missing_required_key_is_reported_at_once(self, source):
        required = [k.name for k in source.keys if k.required]
        if not required:
            assert toml_config(source, {})  # nothing required: the empty table is the minimal config
            return
        problems = problems_of(toml_config(source, {}))
        for name in required:
            assert any(p.startswith(f"idp.src.{name}: is required") for p in problems), (name, problems)

    def test_every_wrongly_typed_key_is_reported_at_once(self, source):
        wrong = {k.name: WRONG_TYPE[k.kind] for k in source.keys}
        problems = problems_of(toml_config(source, wrong))
        for name in wrong:
            assert any(p.startswith(f"idp.src.{name}: must be ") for p in problems), (name, problems)

    def test_role_keys_without_effect_are_errors_and_the_others_are_accepted(self, source, home):
        assert set(source.ignored_role_keys) <= config.ROLE_KEYS
        for key in source.ignored_role_keys:
            problems = problems_of(toml_config(source, role_table={**source.example_role, key: VALID_ROLE_VALUES[key]}))
            assert problems == [f"role.r.{key}: has no effect for a role over a {source.type_name} identity provider "
                                "(remove it)"]
        allowed = {k: v for k, v in VALID_ROLE_VALUES.items() if k not in source.ignored_role_keys}
        config.parse("test.toml", toml_config(source, role_table={**source.example_role, **allowed}).encode())

    # -- credentials --------------------------------------------------------------------------------
    def test_the_chain_is_built_without_network(self, source, home, no_network):
        from credproc.chain import build
        from credproc.sources.cached import CachedProvider

        cfg = self.parsed(source, home)
        provider = build(self.context(cfg, self.store(home)), "r")
        assert isinstance(provider, CachedProvider)
        assert callable(provider.inner.retrieve) and provider.inner.describe()
        assert no_network == []

    # -- status, logout, doctor on an empty cache ---------------------------------------------------------
    def test_status_sessions_on_an_empty_cache(self, source, home, no_network):
        cfg = self.parsed(source, home)
        sessions = source.sessions(cfg, self.store(home), cfg.idps["src"], 1_800_000_000)
        assert isinstance(sessions, list)
        for s in sessions:
            assert SESSION_KEYS <= set(s), SESSION_KEYS - set(s)
            assert s["type"] == source.type_name and s["idp"] == "src" and s["state"] == "none"
            assert s["expires_at"] is None and s["seconds_left"] is None
            json.dumps(s)
            what, detail = source.session_columns(s)
            assert isinstance(what, str) and what and isinstance(detail, str)
        assert no_network == []

    def test_status_command_on_an_empty_cache(self, source, home, no_network, capsys):
        self.parsed(source, home)
        assert cli.main(["status", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert [r["idp_type"] for r in report["roles"]] == [source.type_name]
        assert all(s["type"] == source.type_name and s["state"] in STATES for s in report["sessions"])
        assert cli.main(["status"]) == 0
        assert "r " in capsys.readouterr().out
        assert no_network == []

    def test_logout_on_an_empty_cache(self, source, home, no_network, capsys):
        cfg = self.parsed(source, home)
        said, removed = [], []

        def remove(identity, what):
            removed.append((identity, what))
            return False

        def new_context():
            raise AssertionError("nothing cached: nothing to revoke")

        assert source.logout(cfg, self.store(home), cfg.idps["src"], said.append, remove, new_context) is False
        assert said == []
        assert cli.main(["logout", "--role", "r"]) == 0
        assert capsys.readouterr().out == "nothing cached for role r\n"
        assert no_network == []

    def test_doctor_hooks(self, source, home, no_network):
        from credproc.commands.doctor import Check

        cfg = self.parsed(source, home)
        idp = cfg.idps["src"]
        checks = list(source.doctor_checks(cfg, idp))  # e.g. iam: the (absent) profile is a failed check
        assert all(isinstance(c, Check) and c.what for c in checks)
        for what, url, ca_bundle in source.doctor_probes(idp):
            assert isinstance(what, str) and what
            assert url.startswith(("https://", "http://127.0.0.1", "http://localhost", "http://[::1]"))
            assert ca_bundle is None or isinstance(ca_bundle, str)
        for url in source.idp_sts_endpoints(cfg, idp):
            assert url.startswith("https://")
        assert isinstance(source.role_calls_sts, bool)
        refusal = source.console_refusal(cfg, cfg.roles["r"], idp)
        assert refusal is None or isinstance(refusal, ConfigError)
        assert no_network == []
