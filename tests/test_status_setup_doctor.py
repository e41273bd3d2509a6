"""credproc status, setup, doctor (and logout's sweep), run in-process through cli.main with an
isolated HOME, XDG dirs and AWS files."""

import http.server
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import threading
import time

import pytest

from credproc.core.errors import ConfigError
from credproc import cli, config
from credproc.core import log
from credproc.core.cache import Entry
from credproc.core.credentials import Credentials
from credproc.core.store import EncryptedFileCache

ISSUER = "https://sso.example.com"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "ASIAEXAMPLEKEYID1234"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
REFRESH = "refresh-token-that-must-never-show"


class Env:
    def __init__(self, root, monkeypatch):
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        self.aws_config = self.home / ".aws" / "config"
        self.aws_credentials = self.home / ".aws" / "credentials"
        self.config_path = root / "credproc.toml"
        self.cache_dir = root / "xdg-cache" / "credproc"
        self.key_path = root / "xdg-data" / "credproc" / "cache.key"
        for var, value in {"HOME": self.home, "XDG_CONFIG_HOME": root / "xdg-config", "XDG_CACHE_HOME": root / "xdg-cache",
                           "XDG_DATA_HOME": root / "xdg-data", "AWS_CONFIG_FILE": self.aws_config,
                           "AWS_SHARED_CREDENTIALS_FILE": self.aws_credentials, "CREDPROC_CONFIG": self.config_path,
                           "CREDPROC_NO_PROMPT": "1"}.items():
            monkeypatch.setenv(var, str(value))
        monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
        monkeypatch.setattr(log, "enabled", False)  # an earlier test's --debug may have left it on
        monkeypatch.delenv("CREDPROC_ACTIVE", raising=False)
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(var, raising=False)  # doctor fails on keys in the environment

    def write_config(self, text):
        self.config_path.write_text(text)
        return config.parse(str(self.config_path), text.encode())

    def store(self):
        return EncryptedFileCache(str(self.cache_dir), str(self.key_path), scope=str(self.config_path))


@pytest.fixture
def env(tmp_path, monkeypatch):
    return Env(tmp_path, monkeypatch)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


CONFIG = """
[settings]
region = "eu-west-1"
sts_endpoint_url = "{sts}"

[idp.corp]
type = "iam"
profile = "corp-user"
mfa_serial = "arn:aws:iam::123456789012:mfa/alice"

[idp.sso]
type = "oidc"
issuer = "{issuer}"
client_id = "credproc"

[role.admin]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"

[role.readonly]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/ReadOnly"

[role.audit]
source_role = "admin"
arn = "arn:aws:iam::222222222222:role/Audit"

[role.ops]
idp = "corp"
arn = "arn:aws:iam::333333333333:role/Ops"

[role.dev]
idp = "sso"
arn = "arn:aws:iam::444444444444:role/dev"
"""


# -- setup -------------------------------------------------------------------------------------------
@pytest.fixture
def fake_exe(tmp_path, monkeypatch):
    """A `credproc` executable at a chosen directory, as sys.argv[0] (like the console script)."""
    def make(dirname="bin"):
        d = tmp_path / dirname
        d.mkdir(parents=True, exist_ok=True)
        exe = d / "credproc"
        exe.write_text('#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\n')
        exe.chmod(0o755)
        monkeypatch.setattr(sys, "argv", [str(exe)])
        return str(exe)
    return make


EXISTING = (b"# my AWS config: keep this comment\n"
            b"[default]\nregion = us-east-1   ; trailing comment\n\n"
            b"[profile other]\n# a comment inside\nrole_arn = arn:aws:iam::999999999999:role/x\nsource_profile = default\n"
            b"[sso-session corp]\nsso_start_url = https://example.awsapps.com/start")  # no final newline


def test_setup_appends_a_stanza_keeps_every_byte_and_backs_up(env, capsys, fake_exe):
    exe = fake_exe()
    env.write_config(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=ISSUER))
    env.aws_config.parent.mkdir()
    env.aws_config.write_bytes(EXISTING)
    env.aws_config.chmod(0o640)
    code, out, err = run(capsys, "setup", "--role", "admin")
    assert code == 0, err
    data = env.aws_config.read_bytes()
    assert data.startswith(EXISTING)
    assert data[len(EXISTING):] == (f"\n\n[profile admin]\ncredential_process = {exe} --role admin --config "
                                    f"{env.config_path}\nregion = eu-west-1\nservices = credproc-admin\n\n"
                                    "[services credproc-admin]\nsts =\n"
                                    "  endpoint_url = https://sts.eu-west-1.amazonaws.com\n").encode()
    assert stat.S_IMODE(os.stat(env.aws_config).st_mode) == 0o640  # the file's mode is kept
    backups = [p for p in env.aws_config.parent.iterdir() if p.name.startswith("config.bak-")]
    assert len(backups) == 1 and backups[0].read_bytes() == EXISTING
    assert stat.S_IMODE(os.stat(backups[0]).st_mode) == 0o600
    assert len(backups[0].name) == len("config.bak-20260101T120000")
    assert "added [profile admin]" in out and str(backups[0]) in out
    # the result is what botocore reads
    from botocore.configloader import raw_config_parse

    parsed = raw_config_parse(str(env.aws_config))
    assert shlex.split(parsed["profile admin"]["credential_process"])[:3] == [exe, "--role", "admin"]
    assert parsed["profile other"]["source_profile"] == "default"
    # a second run changes nothing and makes no second backup
    code, out, err = run(capsys, "setup", "--role", "admin")
    assert code == 0 and "already set up" in out
    assert env.aws_config.read_bytes() == data
    assert len([p for p in env.aws_config.parent.iterdir() if p.name.startswith("config.bak-")]) == 1


def test_setup_every_role_and_the_default_config_needs_no_config_option(env, capsys, fake_exe, monkeypatch):
    exe = fake_exe()
    default = env.root / "xdg-config" / "credproc" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=ISSUER))
    monkeypatch.delenv("CREDPROC_CONFIG")
    code, out, err = run(capsys, "setup")
    assert code == 0, err
    text = env.aws_config.read_text()
    for role in ("admin", "readonly", "audit", "ops", "dev"):
        assert f"[profile {role}]\ncredential_process = {exe} --role {role}\nregion = eu-west-1\n" in text
    assert "--config" not in text and "\n\n\n" not in text
    # a new ~/.aws and file are private
    assert stat.S_IMODE(os.stat(env.aws_config.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(env.aws_config).st_mode) == 0o600
    assert not [p for p in env.aws_config.parent.iterdir() if p.name.startswith("config.bak-")]  # nothing to back up


def test_setup_refuses_a_profile_that_does_something_else(env, capsys, fake_exe):
    fake_exe()
    env.write_config(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=ISSUER))
    env.aws_config.parent.mkdir()
    original = b"[profile admin]\ncredential_process = /opt/other-tool --x\n"
    env.aws_config.write_bytes(original)
    code, out, err = run(capsys, "setup", "--role", "admin")
    assert code == 3
    assert "[profile admin] already exists" in err and "--profile-name" in err
    assert env.aws_config.read_bytes() == original
    assert not [p for p in env.aws_config.parent.iterdir() if p.name.startswith("config.bak-")]
    code, out, err = run(capsys, "setup", "--role", "admin", "--profile-name", "admin-credproc")
    assert code == 0, err
    assert b"[profile admin-credproc]\ncredential_process = " in env.aws_config.read_bytes()


def test_setup_print_writes_nothing(env, capsys, fake_exe):
    exe = fake_exe()
    env.write_config(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=ISSUER))
    code, out, err = run(capsys, "setup", "--role", "dev", "--profile-name", "work", "--print")
    assert code == 0, err
    assert out == (f"[profile work]\ncredential_process = {exe} --role dev --config {env.config_path}\nregion = eu-west-1\n"
                   "services = credproc-work\n\n[services credproc-work]\nsts =\n"
                   "  endpoint_url = https://sts.eu-west-1.amazonaws.com\n")
    assert not env.aws_config.exists()


def test_setup_refuses_a_path_with_a_hash(env, capsys, fake_exe):
    fake_exe("tools#1")
    env.write_config(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=ISSUER))
    for extra in ([], ["--print"]):
        code, out, err = run(capsys, "setup", "--role", "admin", *extra)
        assert code == 3 and "contains '#' or ';'" in err and "Go SDK" in err
    assert not env.aws_config.exists()


def test_setup_quotes_a_path_with_a_space_for_botocore_and_sh(env, capsys, fake_exe):
    exe = fake_exe("my tools")
    env.write_config(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=ISSUER))
    code, out, err = run(capsys, "setup", "--role", "admin")
    assert code == 0, err
    from botocore.configloader import raw_config_parse

    line = raw_config_parse(str(env.aws_config))["profile admin"]["credential_process"]
    assert line.startswith(f"'{exe}' --role admin")
    assert shlex.split(line)[0] == exe  # botocore: shlex.split, no shell
    shell = subprocess.run(["sh", "-c", line], capture_output=True, text=True)  # JS and Go: sh -c
    assert shell.returncode == 0 and shell.stdout.splitlines()[:2] == ["arg:--role", "arg:admin"]


# -- status -------------------------------------------------------------------------------------------
def _creds_entry(cfg, role, now, left, refresh_in, fingerprint=None, account="111111111111"):
    body = Credentials(KEY_ID, SECRET, TOKEN, now + left, account).to_process_json()
    return Entry(now + left, now + refresh_in, cfg.digest, fingerprint or cfg.fingerprint(role), body, written_at=now - 60)


def prepared_cache(env, issuer=ISSUER):
    cfg = env.write_config(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=issuer))
    store = env.store()
    now = int(time.time())
    store.put("role:admin", _creds_entry(cfg, "admin", now, 47 * 60 + 30, 27 * 60))
    store.put("role:readonly", _creds_entry(cfg, "readonly", now, 3000 + 30, 2000, fingerprint="other-settings"))
    store.put("role:audit", _creds_entry(cfg, "audit", now, 10 * 60, -300, account="222222222222"))
    store.put("role:ops", _creds_entry(cfg, "ops", now, 30 * 60, -60, account="333333333333"))
    session = Credentials(KEY_ID, SECRET, TOKEN, now + 11 * 3600 - 30).to_process_json()
    store.put("idp:corp", Entry(now + 11 * 3600 - 30, now + 10 * 3600, cfg.digest, cfg.idp_fingerprint("corp"), session))
    state = {"refresh_token": REFRESH, "id_token": "eyJ.secret.sig", "claims": {"exp": now + 330, "sub": "alice"},
             "refresh_expires_at": now + 89 * 86400 + 3600}  # the IdP said how long its refresh token lasts
    store.put("oidc:sso", Entry(now + 89 * 86400 + 3600, now + 89 * 86400 + 3600, cfg.digest, cfg.idp_fingerprint("sso"),
                                json.dumps(state).encode()))
    return store


def test_status_table_shows_states_times_and_accounts_but_no_secret(env, capsys):
    prepared_cache(env)
    before = sorted(os.listdir(env.cache_dir))
    code, out, err = run(capsys, "status")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["ROLE", "IDP", "CACHED", "LEFT", "ACCOUNT"]
    rows = {line.split()[0]: line for line in lines[1:6]}
    assert rows["admin"].split() == ["admin", "corp", "valid", "47", "min", "111111111111"]
    assert rows["readonly"].split() == ["readonly", "corp", "stale", "50", "min", "111111111111"]
    assert rows["audit"].split() == ["audit", "via", "admin", "expired", "10", "min", "222222222222"]
    assert rows["ops"].split() == ["ops", "corp", "refresh", "due", "30", "min", "333333333333"]
    assert rows["dev"].split() == ["dev", "sso", "none", "-", "444444444444"]
    sessions = out.split("\n\n", 1)[1]
    assert "idp:corp" in sessions and "mfa session" in sessions and "10 h 59 min" in sessions
    assert "oidc:sso" in sessions and "refresh token: yes" in sessions and "ID token: 5 min left" in sessions
    assert "89 days" in sessions
    for secret in (SECRET, KEY_ID, TOKEN, REFRESH, "eyJ.secret.sig", "ASIA"):
        assert secret not in out
    assert sorted(os.listdir(env.cache_dir)) == before  # no lock files, nothing written


def test_status_json_is_the_documented_structure(env, capsys):
    prepared_cache(env)
    code, out, err = run(capsys, "status", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert set(doc) == {"roles", "sessions"}
    roles = {r["role"]: r for r in doc["roles"]}
    assert list(roles) == ["admin", "readonly", "audit", "ops", "dev"]
    admin = roles["admin"]
    assert set(admin) == {"role", "idp", "idp_type", "source_role", "state", "expires_at", "seconds_left", "account",
                          "role_choice"}
    assert admin["state"] == "valid" and admin["account"] == "111111111111" and admin["idp"] == "corp"
    assert 47 * 60 <= admin["seconds_left"] <= 47 * 60 + 30 and admin["expires_at"].endswith("Z")
    assert roles["audit"]["source_role"] == "admin" and roles["audit"]["idp"] == "corp"
    assert [roles[r]["state"] for r in ("readonly", "audit", "ops", "dev")] == ["stale", "expired", "refresh due", "none"]
    assert roles["dev"]["seconds_left"] is None and roles["dev"]["expires_at"] is None
    sessions = {s["identity"]: s for s in doc["sessions"]}
    assert sessions["idp:corp"]["state"] == "valid" and sessions["idp:corp"]["kind"] == "mfa session"
    sso = sessions["oidc:sso"]
    assert sso["state"] == "valid" and sso["refresh_token"] is True and 300 < sso["id_token_seconds_left"] <= 330
    assert sso["issuer"] == "https://sso.example.com" and sso["type"] == "oidc"
    for secret in (SECRET, KEY_ID, TOKEN, REFRESH, "eyJ.secret.sig"):
        assert secret not in out


def test_status_with_nothing_cached_creates_no_key(env, capsys):
    env.write_config(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=ISSUER))
    code, out, err = run(capsys, "status", "--json")
    assert code == 0
    assert {r["state"] for r in json.loads(out)["roles"]} == {"none"}
    assert not env.key_path.exists() and not env.cache_dir.exists()


# -- logout's sweep ------------------------------------------------------------------------------------
def test_logout_all_removes_entries_of_unconfigured_roles_but_not_key_locks_or_temp_files(env, capsys, dead_url):
    store = prepared_cache(env, issuer=dead_url)
    cfg = config.parse("x", env.config_path.read_bytes())
    store.put("role:gone", _creds_entry(cfg, "admin", int(time.time()), 3000, 2000))
    with store.lock("role:admin", "test"):
        pass  # leaves a lock file, as real use does
    (env.cache_dir / ".tmp-inflight").write_bytes(b"x")
    (env.cache_dir / "oidc-0123456789abcdef01234567.json").write_text("{}")
    # the OIDC sign-in's issuer does not exist: revocation fails, the local removal still happens
    code, out, err = run(capsys, "logout", "--all")
    assert code == 0, err
    assert "removed credentials for role admin" in out and "removed the MFA session of idp corp" in out
    assert f"removed the sign-in at {dead_url} (not revoked" in out
    assert "could not revoke" in err
    assert "removed 1 other cache entry" in out
    left = sorted(os.listdir(env.cache_dir))
    assert not [n for n in left if len(n) == 40]
    assert ".tmp-inflight" in left and any(n.endswith(".lock") for n in left) and any(n.startswith("oidc-") for n in left)
    assert env.key_path.exists()
    for secret in (SECRET, KEY_ID, TOKEN, REFRESH):
        assert secret not in out + err


# -- doctor ----------------------------------------------------------------------------------------------
@pytest.fixture
def http_peer():
    """A loopback server that answers 404 to every GET (an idp endpoint that answers) and, as STS
    does, an ErrorResponse to the POST of doctor's STS probe."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                    b"<Code>InvalidClientTokenId</Code><Message>The security token included in the request is "
                    b"invalid.</Message></Error><RequestId>1</RequestId></ErrorResponse>")
            self.send_response(403)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


IAM_ONLY = """
[settings]
sts_endpoint_url = "{sts}"
[idp.corp]
type = "iam"
profile = "corp-user"
[role.admin]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"
"""


def _healthy(env, http_peer, fake_exe):
    exe = fake_exe()
    env.write_config(IAM_ONLY.format(sts=http_peer))
    env.aws_config.parent.mkdir(exist_ok=True)
    env.aws_credentials.write_text(f"[corp-user]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {SECRET}\n")
    env.aws_config.write_text(f"[profile admin]\ncredential_process = {exe} --role admin\n")
    return exe


def test_doctor_all_good(env, capsys, http_peer, fake_exe):
    _healthy(env, http_peer, fake_exe)
    code, out, err = run(capsys, "doctor")
    assert code == 0, out + err
    assert "✓ configuration" in out and "✓ role admin resolves" in out
    assert f"the STS endpoint {http_peer}: STS answers (InvalidClientTokenId to a probe" in out
    assert "✓ profile admin in" in out
    assert "! no terminal for prompts" in out and "credproc login" in out  # a warning, not a failure
    lines = out.rstrip().splitlines()
    assert "! idp corp: keys in plain text in profile corp-user" in out  # issue 10: a warning, with the fix
    assert "credproc keys import --idp corp --from-profile corp-user" in out
    assert "✗" not in out and lines[-1] == f"{len(lines) - 1} checks: 2 warnings, {len(lines) - 3} passed"
    assert SECRET not in out and "AKIAIOSFODNN7EXAMPLE" not in out


def test_doctor_with_a_broken_config(env, capsys, http_peer, fake_exe):
    _healthy(env, http_peer, fake_exe)
    env.config_path.write_text('[role.admin]\nidp = "nowhere"\nduration = 5\n')
    code, out, err = run(capsys, "doctor")
    assert code == 12
    assert f"✗ configuration {env.config_path}:" in out and "role.admin.idp" in out and "role.admin.duration" in out
    assert "does not load" in out  # the profile's --role cannot be checked against it
    assert re.fullmatch(r"credproc: \d+ checks: 2 failed, 1 warning, \d+ passed\n", err)


def test_doctor_with_bad_permissions_and_bad_profiles(env, capsys, http_peer, fake_exe):
    exe = _healthy(env, http_peer, fake_exe)
    env.store().key()  # creates the key and the data dir
    env.cache_dir.mkdir(parents=True)
    os.chmod(env.key_path, 0o644)
    os.chmod(env.cache_dir, 0o755)
    with open(env.aws_config, "a") as f:
        f.write("[profile rel]\ncredential_process = credproc --role admin\n"
                f"[profile nosuch]\ncredential_process = {exe} --role nosuch\n"
                f"[profile hash]\ncredential_process = {exe} --role admin # comment\n"
                f"[profile relcfg]\ncredential_process = {exe} --role admin --config work/credproc.toml\n")
    code, out, err = run(capsys, "doctor")
    assert code == 12
    assert f"✗ cache key {env.key_path}: has mode 0644" in out and f"chmod 600 '{env.key_path}'" in out
    assert f"✗ cache directory {env.cache_dir}: has mode 0755" in out and f"chmod 700 '{env.cache_dir}'" in out
    assert "✓ data directory" in out
    assert "✗ profile rel in" in out and "'credproc' is not an absolute path" in out
    assert "✗ profile nosuch in" in out and "--role nosuch: no such role" in out
    assert "✗ profile hash in" in out and "ends with a comment ('# comment')" in out
    assert "move the comment to a line of its own" in out and "install credproc under a path" not in out
    assert "✗ profile relcfg in" in out and "--config work/credproc.toml is not an absolute path" in out
    assert "✓ profile admin in" in out
    # the warnings: no terminal, and the IAM keys in plain text (issue 10)
    assert re.fullmatch(r"credproc: \d+ checks: 6 failed, 2 warnings, \d+ passed\n", err)


def test_doctor_names_an_unreachable_sts_endpoint(env, capsys, fake_exe, dead_url):
    fake_exe()
    env.write_config(IAM_ONLY.format(sts=dead_url))
    code, out, err = run(capsys, "doctor")
    assert code == 12
    assert [line for line in out.splitlines() if line.startswith("✗ STS for role admin") and dead_url in line]


def test_doctor_falls_back_to_ascii_markers():
    from credproc.commands import doctor

    class Ascii:
        encoding = "ascii"

    symbols, dash = doctor._symbols(Ascii())
    line = doctor.format_check(doctor.fail("thing", "is broken", "fix it"), symbols, dash)
    assert line == "FAIL thing: is broken - fix it"
    assert doctor.format_check(doctor.ok("fine"), symbols, dash) == "ok fine"


def test_a_profile_name_with_a_line_break_is_refused_not_written(env, capsys, fake_exe):
    """A trailing newline once slipped through a `$`-anchored pattern and split the header: run
    setup itself and check that nothing reaches ~/.aws/config."""
    fake_exe()
    env.write_config(CONFIG.format(sts="https://sts.eu-west-1.amazonaws.com", issuer=ISSUER))
    env.aws_config.parent.mkdir()
    env.aws_config.write_bytes(EXISTING)
    for name in ("evil\n", "evil\n[profile x]", "evil\r"):
        code, out, err = run(capsys, "setup", "--role", "admin", "--profile-name", name)
        assert code != 0 and "not a usable AWS profile name" in err
        assert env.aws_config.read_bytes() == EXISTING
        assert not [p for p in env.aws_config.parent.iterdir() if p.name.startswith("config.bak-")]
    code, out, err = run(capsys, "setup", "--role", "admin", "--profile-name", "good")
    assert code == 0, err
    assert "[profile good]\n" in env.aws_config.read_text()


def test_doctor_fails_a_command_key_whose_program_is_missing(tmp_path):
    from credproc.commands import doctor

    idp = {"name": "campus", "type": "cas", "password_command": "no-such-password-manager show x",
           "mfa_command": f"{sys.executable} -c pass", "username": "alice"}
    checks = list(doctor.command_checks(idp))
    assert [c.status for c in checks] == ["ok", "fail"]
    assert "idp.campus.password_command" in checks[1].what and "'no-such-password-manager' is not found" in checks[1].problem


@pytest.mark.parametrize("version, extra", [(b"aws-cli/2.9.19 Python/3.11.2 Linux/6.1 source/x86_64.debian.12\n", True),
                                            (b"aws-cli/2.15.0 Python/3.11.6\n", False),
                                            (b"aws-cli/1.33.0 Python/3.11.7 botocore/1.35.0\n", False)])
def test_setups_try_it_line_adds_the_endpoint_for_an_aws_cli_that_ignores_services(tmp_path, monkeypatch, version, extra):
    from credproc.commands import setup

    fake = tmp_path / "aws"
    fake.write_bytes(b"#!/bin/sh\nprintf '" + version.rstrip(b"\n") + b"\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    line = setup.try_it("admin", "http://127.0.0.1:5000")
    assert line.startswith("try it: aws sts get-caller-identity --profile admin")
    assert ("--endpoint-url http://127.0.0.1:5000" in line) is extra
    assert setup.try_it("admin", None) == "try it: aws sts get-caller-identity --profile admin"


# -- first-hour.md item 18: small message and help nits ---------------------------------------------
def test_a_utf8_bom_is_named(tmp_path):
    with pytest.raises(ConfigError, match="byte order mark"):
        config.parse("c.toml", b"\xef\xbb\xbf[settings]\nregion = \"eu-west-1\"\n")


def test_status_shows_the_account_an_sso_role_names_before_any_call(env, capsys):
    env.write_config('[idp.corp-sso]\ntype = "sso"\nstart_url = "https://my-org.awsapps.com/start"\n'
                     'region = "eu-west-1"\n\n[role.prod]\nidp = "corp-sso"\naccount_id = "111111111111"\n'
                     'role_name = "Admin"\n')
    code, out, _ = run(capsys, "status")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("prod "))
    assert row.split()[-1] == "111111111111"


@pytest.mark.parametrize("action", ["add", "import", "rotate", "remove"])
def test_every_keys_action_has_examples_in_its_help(capsys, action):
    with pytest.raises(SystemExit):
        cli.main(["keys", action, "--help"])
    out = capsys.readouterr().out
    assert "examples:\n  credproc keys " + action in out


def test_a_mistyped_keys_profile_gets_did_you_mean(env):
    from credproc.sources.iam.static_keys import StaticKeysProvider

    env.aws_credentials.parent.mkdir(parents=True, exist_ok=True)
    env.aws_credentials.write_text("[corp-user]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n")
    with pytest.raises(ConfigError) as e:
        StaticKeysProvider("corp-usr", "corp").retrieve()
    assert e.value.hint == "did you mean corp-user?"


def test_doctor_warns_about_a_mistyped_region():
    from credproc.commands import doctor

    cfg = config.parse("c.toml", b'[settings]\nregion = "eu-wset-1"\n\n[idp.corp]\ntype = "iam"\nprofile = "p"\n\n'
                                 b'[role.admin]\nidp = "corp"\nregion = "us-east-1"\n')
    [check] = list(doctor.region_checks(cfg))
    assert check.status == "warn" and check.what == "settings.region = eu-wset-1" and check.fix == "did you mean eu-west-1?"
