"""Issue 20 (hardening, round 3): each test is named after its item and failed before the fix it
goes with."""

import os
import stat
import subprocess
import sys

import pytest

from credproc import cli, config
from credproc.core import log
from tests.fakes import IAM_CONFIG


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    """An isolated user: XDG dirs under tmp_path, a config file in its own 0700 directory."""
    for var, sub in (("XDG_CACHE_HOME", "xdg-cache"), ("XDG_DATA_HOME", "xdg-data"), ("XDG_CONFIG_HOME", "xdg-config"),
                     ("HOME", "home")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    d = tmp_path / "conf"
    d.mkdir(mode=0o700)
    cfg = d / "credproc.toml"
    cfg.write_bytes(IAM_CONFIG)
    os.chmod(cfg, 0o600)
    monkeypatch.setenv("CREDPROC_CONFIG", str(cfg))
    monkeypatch.setenv("CREDPROC_NO_PROMPT", "1")
    monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
    monkeypatch.delenv("CREDPROC_ACTIVE", raising=False)
    monkeypatch.setattr(log, "enabled", False)
    return cfg


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- item 4: a config other users can write -----------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("what", ["file 0666", "file 0602", "directory 0777", "directory 0703"])
def test_item4_world_writable_config_is_refused(xdg, capsys, what):
    """mfa_command, password_command and keys_command come from the config and are run: a config
    that another user can write (the file, or a directory without the sticky bit) is refused with
    the file and the fix (exit 11, no traceback), and doctor fails the check."""
    if what.startswith("directory"):
        os.chmod(xdg.parent, int(what.split()[1], 8))
    else:
        os.chmod(xdg, int(what.split()[1], 8))
    try:
        with pytest.raises(Exception) as e:
            config.load(str(xdg))
        assert "writ" in e.value.message and str(xdg.parent) in e.value.message and "chmod" in e.value.hint
        code, out, err = run(capsys, "status")
        assert code == 11 and "Traceback" not in err and "chmod" in err, err
        code, out, err = run(capsys, "doctor")
        assert code == 12 and "chmod" in out, out
    finally:
        os.chmod(xdg.parent, 0o700)
        os.chmod(xdg, 0o600)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_item4_a_private_config_in_a_sticky_shared_directory_is_used(xdg, tmp_path):
    """A directory like /tmp (world-writable, sticky) cannot have your file replaced by others."""
    d = tmp_path / "sticky"
    d.mkdir()
    os.chmod(d, 0o1777)
    (d / "c.toml").write_bytes(IAM_CONFIG)
    os.chmod(d / "c.toml", 0o644)
    assert config.load(str(d / "c.toml")).roles


# -- item 5: keys import and the spellings botocore accepts -------------------------------------------
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SPELLINGS = {
    "upper case": f"AWS_ACCESS_KEY_ID = {KEY_ID}\nAWS_SECRET_ACCESS_KEY = {SECRET}\n",
    "colons": f"aws_access_key_id: {KEY_ID}\naws_secret_access_key: {SECRET}\n",
    "no spaces, mixed case": f"Aws_Access_Key_Id={KEY_ID}\naws_Secret_Access_Key={SECRET}\n",
    "indented": f"  aws_access_key_id = {KEY_ID}\n  aws_secret_access_key = {SECRET}\n",
    "continuation line": f"aws_access_key_id = {KEY_ID}\naws_secret_access_key =\n    {SECRET}\n",
    "comment between": f"aws_access_key_id = {KEY_ID}\naws_secret_access_key =\n# a note\n    {SECRET}\n",
}


def _botocore(path):
    from botocore.configloader import raw_config_parse

    return raw_config_parse(str(path), parse_subsections=False)


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@pytest.mark.parametrize("where", ["credentials", "config"])
def test_item5_keys_import_removes_every_spelling_botocore_reads(tmp_path, monkeypatch, spelling, where):
    """Whatever spelling botocore reads the keys from, the file and its backup afterwards hold no
    trace of the secret (by bytes and by botocore's own parser), and everything else is kept."""
    from credproc.commands.keyfiles import remove_keys
    from credproc.sources.iam.static_keys import StaticKeysProvider

    creds, conf = tmp_path / "credentials", tmp_path / "config"
    header = "[corp-user]" if where == "credentials" else "[profile corp-user]"
    target = creds if where == "credentials" else conf
    target.write_text(f"[other]\nregion = eu-west-1\n\n{header}\n{SPELLINGS[spelling]}region = us-east-2\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(conf))
    got = StaticKeysProvider("corp-user", "corp").retrieve()
    assert (got.access_key_id, got.secret_access_key) == (KEY_ID, SECRET)  # botocore reads this spelling
    [(path, backup)] = remove_keys("corp-user", KEY_ID)
    assert path == str(target)
    for p in (path, backup):
        data = open(p).read()
        assert SECRET not in data and SECRET[:20] not in data, p
        section = _botocore(p)[header.strip("[]")]
        assert "aws_secret_access_key" not in section or "keyring" in section["aws_secret_access_key"]
    assert _botocore(path)[header.strip("[]")] == {"region": "us-east-2"} and _botocore(path)["other"]
    assert KEY_ID in open(backup).read()


def test_item5_keys_import_refuses_rather_than_claims(tmp_path, monkeypatch):
    """A secret that would still be read after the edit (here from configparser's [DEFAULT]) makes
    remove_keys refuse and leave the file as it was, instead of saying it removed the keys."""
    from credproc.commands.keyfiles import remove_keys
    from credproc.core.errors import CredprocError

    creds = tmp_path / "credentials"
    text = f"[DEFAULT]\naws_secret_access_key = {SECRET}\n\n[corp-user]\naws_access_key_id = {KEY_ID}\n"
    creds.write_text(text)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with pytest.raises(CredprocError) as e:
        remove_keys("corp-user", KEY_ID)
    assert "remove" in (e.value.hint or "") and SECRET not in e.value.message
    assert creds.read_text() == text
    assert not [n for n in os.listdir(tmp_path) if ".bak-" in n]  # no backup holding the secret


# -- item 7: FIFOs, devices and links among the AWS CLI's files ----------------------------------------
def _finishes(fn, seconds=5):
    """fn() returns (or raises) within `seconds`; a read that blocks on a FIFO never does."""
    import threading

    done = []

    def go():
        try:
            done.append(("ok", fn()))
        except Exception as e:  # noqa: BLE001
            done.append(("error", e))

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    assert done, f"{getattr(fn, '__name__', fn)} blocked (a FIFO read without O_NONBLOCK?)"
    return done[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_item7_a_fifo_in_the_aws_cli_files_is_refused_without_waiting(tmp_path, monkeypatch):
    """A FIFO as an Identity Center token file, as ~/.aws/config or ~/.aws/credentials, and a link to
    /dev/zero, are read (refused) at once: every reader of the AWS files is non-blocking,
    regular-file-only and size-capped; the token files are not read through a symbolic link."""
    import hashlib

    from credproc.commands import doctor
    from credproc.sources.iam.static_keys import StaticKeysProvider
    from credproc.sources.sso import protocol as sso

    monkeypatch.setenv("HOME", str(tmp_path))
    start = "https://my-org.awsapps.com/start"
    idp = {"name": "corp-sso", "type": "sso", "start_url": start, "region": "eu-west-1", "flow": "device",
           "scopes": ["sso:account:access"], "aws_cli_cache": "read", "oidc_endpoint_url": None,
           "portal_endpoint_url": None}
    cache_dir = tmp_path / ".aws" / "sso" / "cache"
    cache_dir.mkdir(parents=True)
    fifo = cache_dir / (hashlib.sha1(start.encode()).hexdigest() + ".json")
    os.mkfifo(fifo)
    cache = sso.CliTokenCache(idp)
    assert _finishes(lambda: [cache.load(p) for p in cache.candidates()]) == ("ok", [None])
    # a link to a valid token file elsewhere is not followed either
    os.unlink(fifo)
    real = tmp_path / "elsewhere.json"
    real.write_text('{"startUrl": "%s", "accessToken": "a", "expiresAt": "2999-01-01T00:00:00Z"}' % start)
    os.symlink(real, fifo)
    assert _finishes(lambda: [cache.load(p) for p in cache.candidates()]) == ("ok", [None])

    conf, creds = tmp_path / ".aws" / "config", tmp_path / ".aws" / "credentials"
    os.mkfifo(conf)
    os.symlink("/dev/zero", creds)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(conf))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    assert _finishes(cache.candidates)[0] == "ok"  # reads ~/.aws/config for sso-session names
    kind, e = _finishes(StaticKeysProvider("corp-user", "corp").retrieve)
    assert kind == "error" and "regular file" in e.message
    assert _finishes(lambda: list(doctor.aws_profile_checks(None, "x")))[0] == "ok"
    assert _finishes(doctor._credentials_file_profiles)[0] == "ok"


# -- item 8: sso roles output that TOML reads as it looks -----------------------------------------------
class PortalClient:
    """ListAccounts/ListAccountRoles of a portal with awkward account and role names."""

    def __init__(self, accounts):
        self._accounts = accounts  # [(id, name, [role names])]

    def accounts(self, token):
        return [(i, n) for i, n, _ in self._accounts]

    def roles(self, token, account_id):
        return next(r for i, _, r in self._accounts if i == account_id)


def test_item8_sso_roles_output_pastes_into_a_config_that_parses():
    """The blocks `sso roles` prints, appended to a config as its help says, parse: one [role.*] per
    account and role (no nested tables from dots), names that config accepts, and account_id and
    role_name read back exactly, whatever the portal calls its accounts."""
    from credproc.commands.sso import _blocks

    long = "x" * 64
    accounts = [
        ("111111111111", "corp.prod", ["AdministratorAccess", "Read.Only"]),
        ("222222222222", 'say "hi" \\ [role.evil]', ["Admin"]),
        ("333333333333", "Produktion Zürich ☃", ["Admin"]),
        ("444444444444", long, ["AdministratorAccess"]),
        ("555555555555", long, ["AdministratorAccess"]),  # the same (cut) name twice
        ("666666666666", "corp-prod", ["AdministratorAccess"]),  # collides with corp.prod once dots go
        ("777777777777", "line\nbreak = 1\n[role.injected]", ["Admin"]),
        ("888888888888", "...", ["Admin"]),
        ("999999999999", None, ["Admin"]),
        ("101010101010", "del\x7f", ["Admin+=,.@_-"]),
    ]
    text = "".join(_blocks(PortalClient(accounts), "t", "corp-sso"))
    head = ('[idp.corp-sso]\ntype = "sso"\nstart_url = "https://my-org.awsapps.com/start"\nregion = "eu-west-1"\n\n')
    cfg = config.parse("c.toml", (head + text).encode("utf-8"))
    got = sorted((r["account_id"], r["role_name"]) for r in cfg.roles.values())
    assert got == sorted((i, role) for i, _, roles in accounts for role in roles)
    for name in cfg.roles:
        assert config.NAME_RE.match(name) and "." not in name and len(name) <= 64, name
    assert "injected" not in cfg.roles and "evil" not in cfg.roles


# -- item 3: share-mode logout and the sign-in an SDK refreshed ---------------------------------------
def test_item3_share_mode_logout_ends_the_newest_sign_in(tmp_path, monkeypatch):
    """An SDK refreshed (rotated) the shared sign-in after credproc's own save: logout ends the
    newest copy at the service (its access token gets Logout; credproc's spent refresh token is never
    tried), and removes both copies."""
    import time

    from credproc.sources.sso import protocol as sso
    from tests import test_sso as t

    monkeypatch.setenv("HOME", str(tmp_path))
    ctx = _sso_ctx(tmp_path)
    until = int(time.time()) + 3600
    t.put_state(ctx, {"registration": t.REG, "access_token": "ours-expired", "expires_at": until - 4000,
                      "refresh_token": "spent"})
    t._shared(tmp_path, "theirs", "live", until)
    client = t.ScriptedClient({"Logout": [{}], "CreateToken": ["InvalidGrantException"]})
    client.now = time.time()
    session = sso.SsoSession(ctx, t.idp(aws_cli_cache="share"), client=client)
    assert session.logout() is True
    assert [(op, p.get("accessToken") or p.get("refreshToken")) for op, p in client.calls] == [("Logout", "theirs")]
    assert session.load() == {} and not os.path.exists(session.cli.shared_path())


def test_item3_a_sign_in_not_ended_at_the_service_is_said_loudly(tmp_path, monkeypatch):
    """When the portal does not take the Logout (here: it is unreachable), logout says the sign-in may
    still be usable, instead of a plain 'removed'."""
    import time

    from credproc.core.errors import NetworkError
    from credproc.sources.sso import protocol as sso
    from credproc.sources.sso.source import SOURCE
    from tests import test_sso as t

    monkeypatch.setenv("HOME", str(tmp_path))
    ctx = _sso_ctx(tmp_path)
    until = int(time.time()) + 3600
    t.put_state(ctx, {"registration": t.REG, "access_token": "ours", "expires_at": until, "refresh_token": "rt"})

    class Down(t.ScriptedClient):
        def _call(self, service, operation, **params):
            raise NetworkError("cannot reach the portal")

    said = []
    monkeypatch.setattr(sso, "SsoClient", lambda idp, terminal: Down({}))
    SOURCE.logout(ctx.config, ctx.store, t.idp(aws_cli_cache="share"), said.append, lambda i, w: ctx.store.delete(i),
                  lambda: ctx)
    assert len(said) == 1 and "NOT ended" in said[0] and "still" in said[0], said


def _sso_ctx(tmp_path):
    from credproc.context import Context
    from credproc.core.store import EncryptedFileCache
    from tests import test_sso as t

    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "key"))
    return Context(t.FakeConfig(), store, t.FakeTerminal(available=False), lock_wait=5)


# -- item 9: a proxy or captive portal answering instead of STS ----------------------------------------
PORTAL_PAGES = {
    "html 200": (200, b"<!DOCTYPE html><html><body>Please accept the terms to use the WiFi</body></html>"),
    "xhtml 200": (200, b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>Log in</body></html>'),
    "truncated xml": (200, b'<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
                           b"<Credentials><AccessKeyId>ASIA"),
    "5xx page": (502, b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"),
    "empty 200": (200, b""),
}


@pytest.fixture
def fake_server():
    """A loopback HTTP server answering every request with what the test sets (or never, 'hang')."""
    import http.server
    import threading

    state = {"status": 200, "body": b"", "hang": False, "requests": []}
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            state["requests"].append((self.command, self.rfile.read(n) if n else b""))
            if state["hang"]:
                release.wait(30)
                return
            self.send_response(state["status"])
            self.send_header("Content-Type", state.get("type", "text/html"))
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

        do_GET = do_POST = _answer

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("page", sorted(PORTAL_PAGES))
def test_item9_a_captive_portal_instead_of_sts_is_one_clear_line(xdg, capsys, fake_server, page, monkeypatch):
    """An answer that is not STS's (HTML, truncated XML, a 5xx page, nothing) is one line naming the
    endpoint and saying it is not an STS response, with a documented exit code, not
    'unexpected error (KeyError)'."""
    from credproc.core.errors import EXIT_CODES

    fake_server["status"], fake_server["body"] = PORTAL_PAGES[page]
    xdg.write_bytes(IAM_CONFIG.replace(b"[idp.corp]", f'[settings]\nsts_endpoint_url = "{fake_server["url"]}"\n'
                                                      f"[idp.corp]".encode()))
    home = xdg.parent.parent / "home"
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    (home / ".aws" / "credentials").write_text(f"[p]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    code, out, err = run(capsys, "--role", "admin")
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert "not an STS response (a proxy or captive portal?)" in err and fake_server["url"] in err, err
    assert code in {c for c, _ in EXIT_CODES} and code not in (0, 1), (code, err)


@pytest.mark.parametrize("answer", ["html 200", "5xx page", "hang", "sts error", "sts success"])
def test_item9_doctor_checks_that_sts_answers_as_sts(xdg, fake_server, answer, monkeypatch):
    """doctor's STS check makes a harmless STS call: an HTML page, a 5xx page and a POST that
    hangs fail it (within its time limit); an answer in STS's own shape (an error or a result) passes."""
    import time

    from credproc.commands import doctor

    monkeypatch.setattr(doctor, "TIMEOUT", 2)
    if answer == "hang":
        fake_server["hang"] = True
    elif answer == "sts error":
        fake_server["status"], fake_server["type"] = 403, "text/xml"
        fake_server["body"] = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender'
                               b"</Type><Code>MissingAuthenticationToken</Code><Message>Request is missing "
                               b"Authentication Token</Message></Error><RequestId>1</RequestId></ErrorResponse>")
    elif answer == "sts success":
        fake_server["status"], fake_server["type"] = 200, "text/xml"
        fake_server["body"] = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                               b"<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/a</Arn><UserId>AIDA1"
                               b"</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata>"
                               b"<RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>")
    else:
        fake_server["status"], fake_server["body"] = PORTAL_PAGES[answer]
    [(kind, label, what, _)] = [c for c in doctor.network_checks(config.load(str(xdg))) if c[1].startswith("STS")]
    check_args = (label, what, fake_server["url"])
    started = time.monotonic()
    check = kind(*check_args)
    assert time.monotonic() - started < 15
    assert check.status == ("ok" if answer.startswith("sts") else "fail"), (check.status, check.what, check.problem)
    assert any(method == "POST" for method, _ in fake_server["requests"]), fake_server["requests"]


# -- item 11: stdout on a full disk, and stdout closed -------------------------------------------------
def _exe():
    from tests.sandbox import credproc_exe

    return credproc_exe()


def _cache_hit(xdg, monkeypatch):
    """A servable entry for role admin of the xdg config (as test_fastpath makes one)."""
    from credproc.core import cache, paths
    from credproc.core.store import EncryptedFileCache

    store = EncryptedFileCache(paths.cache_dir(), paths.key_file(), scope=paths.config_file())
    now = cache.now()
    store.put("role:admin", cache.Entry(now + 3600, now + 600, cache.digest(xdg.read_bytes()), "fp", b'{"Version":1}\n'))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["--role", "admin"], ["status"], ["--help"], ["completion", "bash"]])
def test_item11_stdout_on_a_full_disk_is_one_line_and_a_documented_code(xdg, monkeypatch, argv):
    """A write to stdout that fails (ENOSPC on /dev/full), on the cache-hit path and elsewhere: no
    traceback, no 'Exception ignored', one line saying stdout could not be written, a documented
    code (not 1 or Python's 120)."""
    from credproc.core.errors import EXIT_CODES

    _cache_hit(xdg, monkeypatch)
    with open("/dev/full", "wb") as full:
        r = subprocess.run([_exe(), *argv], stdout=full, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           env=os.environ.copy(), timeout=60, start_new_session=True)
    err = r.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert len(err.strip().splitlines()) == 1 and "stdout" in err, err
    assert r.returncode in {c for c, _ in EXIT_CODES} and r.returncode not in (0, 1, 120), (r.returncode, err)


@pytest.mark.skipif(os.name != "posix", reason="closing fd 1")
@pytest.mark.parametrize("argv", [["--role", "admin"], ["status"], ["--version"]])
def test_item11_stdout_closed_exits_quietly_with_the_documented_code(xdg, monkeypatch, argv):
    """`credproc --role admin >&-`: no AttributeError traceback from the fast path; the documented
    exit code of a closed stdout (141), and no file credproc opens lands on fd 1."""
    from credproc.core.errors import OutputClosed

    _cache_hit(xdg, monkeypatch)
    r = subprocess.run(["/bin/sh", "-c", 'exec "$0" "$@" >&-', _exe(), *argv], stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, env=os.environ.copy(), timeout=60, start_new_session=True)
    err = r.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert r.returncode == OutputClosed.exit_code, (r.returncode, err)


def test_item11_the_entry_points_exit_codes_are_the_documented_ones():
    from credproc import _entry
    from credproc.core.errors import OutputClosed, OutputFailed

    assert (_entry.OUTPUT_CLOSED, _entry.OUTPUT_FAILED) == (OutputClosed.exit_code, OutputFailed.exit_code)


# -- item 10: a signal at a hidden prompt -------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX terminals and signals")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGQUIT"])
def test_item10_a_signal_at_a_hidden_prompt_restores_the_terminal(tmp_path, signame):
    """SIGTERM, SIGHUP or SIGQUIT while echo is off at a secret prompt: the terminal gets its echo
    back (as with Ctrl-C), and credproc still ends by that signal."""
    import signal
    import termios

    from tests.pty_helper import PtyProcess
    from tests.sandbox import Sandbox, credproc_exe

    box = Sandbox(tmp_path)
    box.write_config('[idp.corp]\ntype = "iam"\nprofile = "p"\n[role.admin]\nidp = "corp"\n'
                     'arn = "arn:aws:iam::111111111111:role/Admin"\n')
    p = PtyProcess([credproc_exe(), "keys", "add", "--idp", "corp"], box.env)
    try:
        p.expect("AWS access key ID: ")
        assert termios.tcgetattr(p.slave)[3] & termios.ECHO
        p.send("AKIAIOSFODNN7EXAMPLE")
        p.expect("AWS secret access key: ")
        assert not termios.tcgetattr(p.slave)[3] & termios.ECHO  # hidden
        p.proc.send_signal(getattr(signal, signame))
        p.proc.wait(20)
        assert termios.tcgetattr(p.slave)[3] & termios.ECHO, "echo left off"
        assert p.proc.returncode == -getattr(signal, signame)
    finally:
        if p.proc.poll() is None:
            p.proc.kill()
        p.finish()


# -- item 14: a read-only HOME, a 0777 cache directory, a corrupt entry --------------------------------
def _servable(xdg):
    """A real, servable entry for role admin (full path and fast path agree on it)."""
    import time as _time

    from credproc import app as _app
    from credproc.chain import role_identity
    from credproc.core import cache
    from credproc.core.credentials import Credentials

    cfg = config.load(str(xdg))
    exp = int(_time.time()) + 3600
    creds = Credentials("ASIAEXAMPLEEXAMPLE01", "secret-x", "token-x", exp)
    _app.store(cfg).put(role_identity("admin"), cache.Entry(exp, exp - 1200, cfg.digest, cfg.fingerprint("admin"),
                                                           creds.to_process_json()))
    return creds


@pytest.mark.parametrize("where", ["lock file", "cache directory"])
def test_item14_a_read_only_home_names_xdg_cache_home(xdg, capsys, monkeypatch, where):
    """A cache that cannot be written (a read-only file system) says how to point it elsewhere, as
    doctor does: $XDG_CACHE_HOME, exit 11, one line."""
    import errno

    from credproc.core import paths

    cache_dir = paths.cache_dir()
    if where == "lock file":  # the key and the directory exist; the lock file cannot be created
        from credproc import app as _app

        _app.store(config.load(str(xdg))).key()
        os.makedirs(cache_dir, mode=0o700)
    real_open, real_mkdir = os.open, os.mkdir

    def ro_open(path, flags, *a, **kw):
        if flags & os.O_CREAT and (str(path).endswith(".lock") or str(path).startswith(cache_dir)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, flags, *a, **kw)

    def ro_mkdir(path, *a, **kw):
        if str(path).startswith(os.path.dirname(cache_dir)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    code, out, err = run(capsys, "--role", "admin")
    assert code == 11 and len(err.strip().splitlines()) == 1, err
    assert "Read-only file system" in err and "XDG_CACHE_HOME" in err, err


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_item14_the_fast_path_does_not_serve_from_a_world_writable_cache_directory(xdg, monkeypatch):
    """A cache directory others can write (0777) is not served from by the fast path: the full path
    serves the same entry and tightens the directory to 0700 on its way."""
    from credproc.core import paths

    creds = _servable(xdg)
    os.chmod(paths.cache_dir(), 0o777)
    r = subprocess.run([_exe(), "--role", "admin"], capture_output=True, env=os.environ.copy(), timeout=60,
                       stdin=subprocess.DEVNULL, start_new_session=True)
    assert r.returncode == 0 and creds.access_key_id.encode() in r.stdout, r.stderr
    assert stat.S_IMODE(os.stat(paths.cache_dir()).st_mode) == 0o700


def test_item14_a_corrupt_entry_shows_as_unreadable_in_status(xdg, capsys):
    """status says `unreadable` for an entry file that is there but does not decrypt (not `none`)."""
    import json as _json

    from credproc import app as _app
    from credproc.chain import role_identity

    _servable(xdg)
    store = _app.store(config.load(str(xdg)))
    path = store.path_for(role_identity("admin"))
    with open(path, "r+b") as f:
        f.seek(20)
        f.write(b"garbage!")
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    [role] = [r for r in _json.loads(out)["roles"] if r["role"] == "admin"]
    assert role["state"] == "unreadable"
    code, out, err = run(capsys, "status")
    assert "unreadable" in out


# -- item 16: repeated or unused options ---------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["--role", "admin", "--role", "audit"],
    ["--role=admin", "--role", "audit"],
    ["--config", "a.toml", "--config", "b.toml", "--role", "admin"],
    ["--role", "admin", "login", "--role", "audit"],
    ["login", "--role", "admin", "--role", "admin"],
    ["--role", "admn", "status"],
    ["--role", "admin", "doctor"],
    ["--role", "admin", "keys", "remove", "--idp", "corp", "--idp", "other"],
])
def test_item16_repeated_or_unused_options_are_usage_errors(xdg, capsys, argv):
    """An option given twice (the last silently won) or one the command does not use (a typo then
    went unnoticed, exit 0) is a usage error naming it: exit 2, nothing run."""
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == "", (out, err)
    name = next(a.split("=")[0] for a in argv if a.startswith("--"))
    assert ("twice" in err or "does not take" in err) and ("--role" in err or "--config" in err or "--idp" in err), err


# -- item 15: what a failing mfa_command said ------------------------------------------------------------
def test_item15_a_failing_commands_last_stderr_line_is_shown_clean_and_without_the_secret():
    """The command's own last stderr line is in the message (ykman's 'No YubiKey detected'), its
    terminal colours and other control characters removed (not shown as \\x1b escapes), and never
    anything it printed on stdout (the secret), even when it repeats it on stderr."""
    from credproc.core.errors import AuthenticationFailed
    from credproc.core.prompt import run_secret_command

    script = ("import sys; print('123456'); sys.stderr.write('trying 123456\\n'); "
              "sys.stderr.write('\\x1b[31mERROR:\\x1b[0m No YubiKey detected (code 123456)\\x07\\r\\n\\n'); sys.exit(2)")
    with pytest.raises(AuthenticationFailed) as e:
        run_secret_command(f'{sys.executable} -c "{script}"', "an MFA code", "idp.corp.mfa_command")
    message = e.value.message
    assert "exit code 2" in message and "ERROR: No YubiKey detected" in message, message
    assert "123456" not in message and "\x1b" not in message and "\\x1b" not in message and "\x07" not in message


# -- item 12: an OpenID Connect refresh answer without an ID token --------------------------------------
def test_item12_a_refresh_without_an_id_token_says_so_keeps_the_refresh_token_and_is_not_repeated(tmp_path):
    """OIDC Core 12.2 allows a refresh answer without an ID token. Then: the message says that (not
    'the refresh token was refused'), the refresh token is kept, the next call does not spend another
    refresh grant, and status does not call the sign-in valid."""
    import time as _time

    from credproc.context import Context
    from credproc.core.errors import LoginRequired
    from credproc.core.store import EncryptedFileCache
    from credproc.sources.oidc.provider import OidcSession
    from credproc.sources.oidc.source import SOURCE
    from tests.fakes import ScriptedTerminal

    text = (b'[idp.sso]\ntype = "oidc"\nissuer = "https://idp.example.com"\nclient_id = "c"\nflow = "device"\n'
            b'[role.dev]\nidp = "sso"\narn = "arn:aws:iam::111111111111:role/dev"\n')
    cfg = config.parse("c.toml", text)
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "key"))
    ctx = Context(cfg, store, ScriptedTerminal(None), lock_wait=2)

    class Client:
        refreshes = 0

        def refresh(self, refresh_token):
            Client.refreshes += 1
            assert refresh_token == "rt1"
            return {"access_token": "at", "token_type": "Bearer", "expires_in": 300}

        def login(self):
            raise AssertionError("no terminal: no login")

    now = int(_time.time())
    session = OidcSession(ctx, cfg.idps["sso"])
    session._save({"refresh_token": "rt1", "id_token": "old", "claims": {"exp": now - 60}}, 86400)
    for _ in range(2):
        s = OidcSession(ctx, cfg.idps["sso"])
        s.client = Client()
        with pytest.raises(LoginRequired) as e:
            s.id_token()
        assert "sent no new ID token" in e.value.message and "refused" not in e.value.message, e.value.message
        assert "sign in again" in e.value.message or "credproc login" in (e.value.hint or "")
    assert Client.refreshes == 1  # not a refresh grant spent on every call
    assert OidcSession(ctx, cfg.idps["sso"])._load().get("refresh_token") == "rt1"  # kept
    [row] = SOURCE.sessions(cfg, store, cfg.idps["sso"], now)
    assert row["state"] != "valid", row


# -- item 13: a clock hours off ---------------------------------------------------------------------------
def _sts_with_clock(fake_server, offset):
    """fake_server answers every STS action with credentials valid for an hour by ITS clock, which
    is `offset` seconds from ours, and says its time in the Date header as STS does."""
    import email.utils
    import time as _time

    server_now = _time.time() + offset
    exp = _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(server_now + 3600))
    creds = (f"<Credentials><AccessKeyId>ASIAFAKEFAKEFAKE0001</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
             f"<SessionToken>t</SessionToken><Expiration>{exp}</Expiration></Credentials>")
    body = (f'<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>{creds}'
            f"<AssumedRoleUser><AssumedRoleId>AROA:x</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/Admin/x"
            f"</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
            f"</AssumeRoleResponse>").encode()
    fake_server.update(status=200, type="text/xml", body=body,
                       date=email.utils.formatdate(server_now, usegmt=True))


@pytest.fixture
def clock_server(fake_server, monkeypatch):
    import http.server

    from credproc.core import sts

    monkeypatch.setattr(sts, "_clock", {"skew": None, "warned": False})  # a new run

    real = http.server.BaseHTTPRequestHandler.date_time_string
    monkeypatch.setattr(http.server.BaseHTTPRequestHandler, "date_time_string",
                        lambda self, timestamp=None: fake_server.get("date") or real(self, timestamp))
    return fake_server


def _iam_against(xdg, monkeypatch, url):
    xdg.write_bytes(IAM_CONFIG.replace(b"[idp.corp]", f'[settings]\nsts_endpoint_url = "{url}"\n[idp.corp]'.encode()))
    home = xdg.parent.parent / "home"
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    (home / ".aws" / "credentials").write_text(f"[p]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))


def test_item13_a_clock_hours_ahead_is_named_not_the_roles_duration(xdg, capsys, clock_server, monkeypatch):
    """Our clock 3 hours ahead of STS's: the message says the clock is 180 minutes off (from STS's
    Date header), not 'raise the role's duration'."""
    _sts_with_clock(clock_server, -3 * 3600)
    _iam_against(xdg, monkeypatch, clock_server["url"])
    code, out, err = run(capsys, "--role", "admin")
    assert code != 0 and out == "", err
    assert "your clock is 180 minutes ahead" in err and "duration" not in err, err


def test_item13_a_clock_behind_is_said_without_debug(xdg, capsys, clock_server, monkeypatch):
    """Our clock 2 hours behind STS's: the call works, and stderr says the clock is 120 minutes
    behind (the SDKs would otherwise fail their signatures with no word from credproc); an entry
    written 'in the future' by this clock is reported too, not only under --debug."""
    import time as _time

    from credproc import app as _app
    from credproc.chain import role_identity
    from credproc.core import cache

    _sts_with_clock(clock_server, 2 * 3600)
    _iam_against(xdg, monkeypatch, clock_server["url"])
    code, out, err = run(capsys, "--role", "admin")
    assert code == 0 and "ASIAFAKEFAKEFAKE0001" in out, err
    assert "your clock is 120 minutes behind" in err, err
    cfg = config.load(str(xdg))
    store = _app.store(cfg)
    entry = store.get(role_identity("admin"))
    entry.written_at = int(_time.time()) + 3600  # written by a clock an hour ahead of this one
    store.put(role_identity("admin"), entry)
    code, out, err = run(capsys, "--role", "admin")
    assert code == 0 and "clock" in err and "60 minutes" in err, err


# -- item 17: no prompt before knowing that STS answers ---------------------------------------------------
class _Keys:
    def describe(self):
        return "profile p"

    def retrieve(self):
        from credproc.core.credentials import Credentials

        return Credentials(KEY_ID, SECRET)


class _RecordingTerminal:
    def __init__(self, answers):
        from tests.fakes import ScriptedTerminal

        self.inner = ScriptedTerminal(answers)
        self.progressed = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def progress(self, text):
        self.progressed.append(text)
        return self.inner.progress(text)


def _mfa_idp():
    return {"name": "corp", "type": "iam", "mfa_serial": "arn:aws:iam::123456789012:mfa/alice", "mfa_command": None,
            "session_duration": 43200}


def test_item17_an_unreachable_sts_fails_before_the_mfa_prompt(dead_url):
    """With STS unreachable, the MFA code is not asked for (typing it would be for nothing): one round
    trip checks first, and the error is the network's."""
    from credproc.core.errors import NetworkError
    from credproc.sources.iam.session_token import SessionTokenProvider

    terminal = _RecordingTerminal(["123456"])
    with pytest.raises(NetworkError):
        SessionTokenProvider(_Keys(), _mfa_idp(), "us-east-1", dead_url, terminal).retrieve()
    assert terminal.inner.asked == []


def test_item17_progress_is_shown_while_waiting_for_sts_after_the_code(fake_server):
    """Once the code is typed, the wait for STS shows progress on the terminal (no silent 40 s)."""
    from credproc.sources.iam.session_token import SessionTokenProvider

    fake_server.update(status=200, type="text/xml", body=(
        b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        b"<Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDA1</UserId><Account>123456789012</Account>"
        b"</GetCallerIdentityResult></GetCallerIdentityResponse>"))
    terminal = _RecordingTerminal(["123456"])
    provider = SessionTokenProvider(_Keys(), _mfa_idp(), "us-east-1", fake_server["url"], terminal)
    with pytest.raises(Exception):  # the fake answers GetSessionToken with the wrong document: no matter
        provider.retrieve()
    assert terminal.inner.asked and terminal.progressed, (terminal.inner.asked, terminal.progressed)


# -- item 19: --debug and an Identity Center call's parameters ------------------------------------------
def test_item19_debug_never_logs_an_sso_calls_secrets(fake_server, capsys, monkeypatch):
    """With --debug on, a refused Identity Center call (a refresh, a device-code poll) logs no client
    secret, refresh token, access token or device code, on stdout or stderr."""
    from credproc.sources.sso import protocol as sso

    monkeypatch.setattr(log, "enabled", True)
    fake_server.update(status=400, type="application/json",
                       body=b'{"__type": "InvalidGrantException", "error": "invalid_grant", "message": "no"}')
    idp = {"name": "corp-sso", "type": "sso", "start_url": "https://my-org.awsapps.com/start", "region": "eu-west-1",
           "flow": "device", "scopes": ["sso:account:access"], "aws_cli_cache": "read",
           "oidc_endpoint_url": fake_server["url"], "portal_endpoint_url": fake_server["url"]}

    class Term:
        login_command = "credproc login"

    client = sso.SsoClient(idp, Term(), sleep=lambda s: None)
    reg = {"client_id": "CLIENT-ID-1", "client_secret": "CLIENT-SECRET-42", "expires_at": 10 ** 10}
    assert client.refresh(reg, "REFRESH-TOKEN-42") is None
    client._call(sso.OIDC_SERVICE, "CreateToken", grantType="urn:ietf:params:oauth:grant-type:device_code",
                 clientId="CLIENT-ID-1", clientSecret="CLIENT-SECRET-42", deviceCode="DEVICE-CODE-42")
    with pytest.raises(Exception):
        client.role_credentials("ACCESS-TOKEN-42", "111111111111", "Admin")
    out, err = capsys.readouterr()
    assert "CreateToken" in err  # the debug lines are there
    for secret in ("CLIENT-SECRET-42", "REFRESH-TOKEN-42", "DEVICE-CODE-42", "ACCESS-TOKEN-42"):
        assert secret not in out and secret not in err, secret


# -- the three caught only by integration tests, now in seconds ---------------------------------------
def _oidc_ctx(tmp_path):
    from credproc.context import Context
    from credproc.core.store import EncryptedFileCache
    from tests.fakes import ScriptedTerminal

    text = (b'[idp.sso]\ntype = "oidc"\nissuer = "https://idp.example.com"\nclient_id = "c"\nflow = "device"\n'
            b'[role.dev]\nidp = "sso"\narn = "arn:aws:iam::111111111111:role/dev"\n')
    cfg = config.parse("c.toml", text)
    return Context(cfg, EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "key")), ScriptedTerminal(None),
                   lock_wait=2)


class _NoCalls:
    def refresh(self, refresh_token):
        raise AssertionError("refreshed")

    def login(self):
        raise AssertionError("signed in")


def test_unit_an_id_token_with_120_s_or_less_left_is_not_used(tmp_path):
    """The 120 s margin: an ID token about to expire is not sent to STS (which may refuse it by the
    time it arrives); one with more left is used without asking the IdP."""
    import time as _time

    from credproc.sources.oidc.provider import OidcSession

    ctx = _oidc_ctx(tmp_path)
    session = OidcSession(ctx, ctx.config.idps["sso"])
    now = int(_time.time())
    session._save({"id_token": "t", "claims": {"exp": now + 115}})
    assert session._cached_token() is None
    session._save({"id_token": "t", "claims": {"exp": now + 300}})
    assert session._cached_token() == ("t", {"exp": now + 300})


def test_unit_the_oidc_sign_in_is_read_again_once_its_lock_is_held(tmp_path):
    """Another process stores a sign-in between our first look and our (uncontended) lock: it is used,
    no refresh or sign-in of our own."""
    import time as _time

    from credproc.sources.oidc.provider import OidcSession

    ctx = _oidc_ctx(tmp_path)
    session = OidcSession(ctx, ctx.config.idps["sso"])
    session.client = _NoCalls()
    now = int(_time.time())
    real_lock = ctx.store.lock

    def lock(identity, what):
        held = real_lock(identity, what)
        acquire = held.acquire

        def acquire_after_their_sign_in(deadline):
            OidcSession(ctx, ctx.config.idps["sso"])._save({"id_token": "theirs", "claims": {"exp": now + 3600},
                                                            "refresh_token": "rt"})
            return acquire(deadline)

        held.acquire = acquire_after_their_sign_in
        return held

    ctx.store.lock = lock
    assert session.id_token()[0] == "theirs"


def test_unit_the_browser_redirect_with_another_state_is_refused():
    """PKCE's companion, the state check: a redirect to the loopback listener with another state (a
    stray or forged request) is answered 404 and does not end the sign-in; the right one does."""
    import urllib.error
    import urllib.request

    from credproc.core.loopback import Listener

    listener = Listener("/callback", "the-state")
    listener.start()
    try:
        base = f"http://127.0.0.1:{listener.port}/callback"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{base}?code=forged&state=other", timeout=5)
        assert e.value.code == 404 and not listener.done.is_set()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{base}?code=forged", timeout=5)
        assert urllib.request.urlopen(f"{base}?code=good&state=the-state", timeout=5).status == 200
        assert listener.wait(1) == {"code": "good", "state": "the-state"}
    finally:
        listener.stop()


def test_item17_the_saml_form_flow_asks_for_the_password_only_once_the_login_page_answered(tmp_path, dead_url):
    """The form flow's first request (the sign-on page) is the reachability check: with the IdP down,
    the password is never asked for; the error is the network's."""
    from credproc.context import Context
    from credproc.core.errors import NetworkError
    from credproc.core.store import EncryptedFileCache
    from credproc.sources.saml.provider import SamlSession
    from tests.fakes import ScriptedTerminal

    text = (f'[idp.uni]\ntype = "saml"\nurl = "{dead_url}/sso"\nflow = "form"\nusername = "alice"\n'
            f'[role.r]\nidp = "uni"\narn = "arn:aws:iam::111111111111:role/R"\n').encode()
    cfg = config.parse("c.toml", text)
    terminal = ScriptedTerminal(["pw"])
    ctx = Context(cfg, EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "key")), terminal, lock_wait=2)
    with pytest.raises(NetworkError):
        SamlSession(ctx, cfg.idps["uni"])._sign_on()
    assert terminal.asked == []
