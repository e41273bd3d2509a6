"""[settings] include: a team's shared idps and roles from a local file or a pinned https URL. What
is included is untrusted: no *_command, no endpoint override, no CA; a local file must be as private
as the config itself; a URL's content must match its sha256 pin."""

import hashlib
import http.server
import os
import threading

import pytest

from credproc import config
from credproc.core.errors import ConfigError, LocalFileError

SHARED = b"""
[idp.team-sso]
type = "sso"
start_url = "https://my-org.awsapps.com/start"
region = "eu-west-1"

[role.team-admin]
idp = "team-sso"
account_id = "111111111111"
role_name = "AdministratorAccess"
"""


def write(path, data, mode=0o600):
    path.write_bytes(data)
    os.chmod(path, mode)
    return str(path)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    d = tmp_path / "conf"
    d.mkdir(mode=0o700)
    return d


def test_a_local_include_adds_its_idps_and_roles(home):
    shared = write(home / "team.toml", SHARED)
    main = write(home / "config.toml", f'[settings]\ninclude = [{{ path = "{shared}" }}]\n\n'
                                       '[role.mine]\nsource_role = "team-admin"\narn = "arn:aws:iam::222222222222:role/Audit"\n'.encode())
    cfg = config.load(main)
    assert cfg.idps["team-sso"]["start_url"] == "https://my-org.awsapps.com/start"
    assert cfg.chain_of("mine")[-1]["name"] == "team-admin"


@pytest.mark.parametrize("line", ['mfa_command = "sh -c evil"', 'portal_endpoint_url = "https://evil.example"',
                                  'oidc_endpoint_url = "https://evil.example"'])
def test_an_include_may_not_run_commands_or_move_secrets_elsewhere(home, line):
    shared = write(home / "team.toml", SHARED.replace(b'region = "eu-west-1"', b'region = "eu-west-1"\n' + line.encode()))
    main = write(home / "config.toml", f'[settings]\ninclude = [{{ path = "{shared}" }}]\n'.encode())
    with pytest.raises(ConfigError, match="is not allowed in an included file"):
        config.load(main)


@pytest.mark.parametrize("table", [
    '[idp.helper]\ntype = "process"\ncommand = "sh -c evil"\n',  # a credential helper runs its command
    '[idp.helper]\ntype = "process"\ncommand = "true"\nenv = { LD_PRELOAD = "/tmp/evil.so" }\n',
    '[idp.web]\ntype = "saml"\nflow = "browser"\nurl = "https://idp.example/sso"\nbrowser = "/tmp/evil"\n',
    '[role.r]\nidp = "team-sso"\nbrowser = "/tmp/evil"\n'])
def test_an_include_may_not_name_a_program_to_run_in_any_source(home, table):
    shared = write(home / "team.toml", SHARED + b"\n" + table.encode())
    main = write(home / "config.toml", f'[settings]\ninclude = [{{ path = "{shared}" }}]\n'.encode())
    with pytest.raises(ConfigError, match="is not allowed in an included file"):
        config.load(main)


def test_an_include_may_not_set_settings_or_redefine_a_role(home):
    shared = write(home / "team.toml", b'[settings]\nsts_endpoint_url = "https://evil.example"\n' + SHARED)
    main = write(home / "config.toml", f'[settings]\ninclude = [{{ path = "{shared}" }}]\n\n[idp.team-sso]\ntype = "iam"\nprofile = "p"\n'.encode())
    with pytest.raises(ConfigError) as e:
        config.load(main)
    assert "only [idp.*] and [role.*]" in str(e.value) and "also defined in the configuration file" in str(e.value)


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_a_local_include_others_can_write_is_refused(home, mode):
    shared = write(home / "team.toml", SHARED, mode)
    main = write(home / "config.toml", f'[settings]\ninclude = [{{ path = "{shared}" }}]\n'.encode())
    with pytest.raises(LocalFileError, match="not safe to take configuration from: group or others can write it"):
        config.load(main)


def test_a_url_needs_a_pin_and_https(home):
    for spec, problem in [('{ url = "https://team.example/c.toml" }', "sha256: is required with url"),
                          ('{ url = "http://team.example/c.toml", sha256 = "' + "0" * 64 + '" }', "must be an https:// URL")]:
        with pytest.raises(ConfigError, match=problem):
            config.parse("c.toml", f"[settings]\ninclude = [{spec}]\n".encode())


@pytest.fixture
def served():
    """A loopback HTTP server whose one document the test can change."""
    doc = {"body": SHARED, "hits": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            doc["hits"] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(doc["body"])))
            self.end_headers()
            self.wfile.write(doc["body"])

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    doc["url"] = f"http://127.0.0.1:{server.server_port}/team.toml"
    yield doc
    server.shutdown()


def test_a_pinned_url_is_fetched_once_and_a_changed_content_is_refused_with_its_new_digest(home, served, monkeypatch):
    pin = hashlib.sha256(SHARED).hexdigest()
    main = write(home / "config.toml", f'[settings]\ninclude = [{{ url = "{served["url"]}", sha256 = "{pin}" }}]\n'.encode())
    assert "team-admin" in config.load(main).roles
    assert "team-admin" in config.load(main).roles
    assert served["hits"] == 1  # kept under its digest: not fetched on every cold call
    # the team changes the file: the pinned copy is still what is used, until the cache is gone
    served["body"] = SHARED + b'\n[role.extra]\nidp = "team-sso"\n'
    new = hashlib.sha256(served["body"]).hexdigest()
    assert "extra" not in config.load(main).roles
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "other-cache"))
    with pytest.raises(ConfigError) as e:
        config.load(main)
    assert f"its sha256 is now {new}, not the pinned {pin}" in str(e.value) and f'sha256 = "{new}"' in str(e.value)
