"""Issue 13 (security and reliability) with the real credproc executable against a real moto STS
server: config scoping, rollback after logout --all, FIFOs and symlinks in credproc's places,
parents created under umask 000."""

import json
import os
import stat
import time

from tests.integration.test_iam_moto import iam_config


def _ready(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))


def test_two_config_files_with_the_same_role_names_share_nothing_and_evict_nothing(sandbox, sts, mfa_counter):
    _ready(sandbox, sts, mfa_counter)
    other = os.path.join(sandbox.root, "other.toml")
    with open(other, "w") as f:  # same role and idp names, another MFA session length
        f.write(iam_config(sts.url, mfa_command=mfa_counter[0]).replace('profile = "corp-user"\n',
                                                                           'profile = "corp-user"\nsession_duration = 7200\n'))
    docs = []
    for _ in range(3):
        docs.append(sandbox.credentials("admin"))
        docs.append(sandbox.credentials("admin", env={"CREDPROC_CONFIG": other}))
    assert mfa_counter[1]() == 2  # one MFA session per config file, not one per call
    assert len({d["AccessKeyId"] for d in docs}) == 2
    assert sts.count("GetSessionToken") == 2 and sts.count("AssumeRole") == 2


def test_entries_copied_back_after_logout_all_do_not_restore_the_mfa_session(sandbox, sts, mfa_counter):
    _ready(sandbox, sts, mfa_counter)
    first = sandbox.credentials("admin")
    saved = {}
    for name in sandbox.cache_files():
        with open(os.path.join(sandbox.cache_dir, name), "rb") as f:
            saved[name] = f.read()
    r = sandbox.run("logout", "--all")
    assert r.returncode == 0, r.stderr
    assert b"replaced the cache key" in r.stdout
    for name, data in saved.items():  # a backup restored, or the files copied back by someone
        path = os.path.join(sandbox.cache_dir, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
    r = sandbox.run("--role", "admin")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["AccessKeyId"] != first["AccessKeyId"]
    assert mfa_counter[1]() == 2  # the MFA code was needed again


def test_a_fifo_at_an_entry_path_hangs_neither_the_fast_path_nor_status(sandbox, sts, mfa_counter):
    _ready(sandbox, sts, mfa_counter)
    sandbox.credentials("admin")
    names = sandbox.cache_files()  # the role's entry and the MFA session's
    assert len(names) == 2
    for name in names:
        os.unlink(os.path.join(sandbox.cache_dir, name))
        os.mkfifo(os.path.join(sandbox.cache_dir, name))
    start = time.monotonic()
    status = sandbox.run("status", "--json", timeout=30)
    assert status.returncode == 0, status.stderr
    # a file is there but is no entry: "unreadable", not "none" (issue 20, item 14)
    assert {r["role"]: r["state"] for r in json.loads(status.stdout)["roles"]}["admin"] == "unreadable"
    r = sandbox.run("--role", "admin", timeout=30)  # misses: a new MFA session and role credentials
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - start < 25 and mfa_counter[1]() == 2
    for name in names:  # the FIFOs were replaced by real entries
        assert stat.S_ISREG(os.lstat(os.path.join(sandbox.cache_dir, name)).st_mode)


def test_a_symlink_planted_where_the_cache_dir_goes_is_refused_not_followed(sandbox, sts, mfa_counter):
    _ready(sandbox, sts, mfa_counter)
    shared = os.path.join(sandbox.root, "shared-tmp")  # stands for /tmp with XDG_CACHE_HOME=/tmp
    victim = os.path.join(sandbox.root, "victim")
    os.makedirs(shared)
    os.makedirs(victim)
    os.chmod(victim, 0o755)
    os.symlink(victim, os.path.join(shared, "credproc"))
    r = sandbox.run("--role", "admin", env={"XDG_CACHE_HOME": shared})
    assert r.returncode == 11, r.stderr
    assert b"symbolic link" in r.stderr
    assert os.listdir(victim) == [] and stat.S_IMODE(os.stat(victim).st_mode) == 0o755


def test_parents_of_credproc_dirs_are_created_0700_under_umask_000(sandbox, sts, mfa_counter):
    _ready(sandbox, sts, mfa_counter)
    env = {"XDG_CACHE_HOME": "", "XDG_DATA_HOME": ""}  # so ~/.cache and ~/.local/share are used
    r = sandbox.run("--role", "admin", env=env, preexec_fn=lambda: os.umask(0))
    assert r.returncode == 0, r.stderr
    for d in (".cache", ".cache/credproc", ".local", ".local/share", ".local/share/credproc"):
        assert stat.S_IMODE(os.stat(os.path.join(sandbox.home, d)).st_mode) == 0o700, d


def test_expiration_is_utc_when_the_local_time_zone_is_not(sandbox, sts, mfa_counter):
    import calendar

    _ready(sandbox, sts, mfa_counter)
    for tz in ("Asia/Kolkata", "America/St_Johns"):
        sts.clear()
        r = sandbox.run("--role", "admin", env={"TZ": tz})
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        left = calendar.timegm(time.strptime(doc["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.time()
        assert 3000 < left <= 3600, (tz, doc["Expiration"])  # moto's one hour, read as UTC
        r = sandbox.run("login", "--role", "admin", env={"TZ": tz})  # the summary, by the full path
        assert r.returncode == 0 and b"UTC" in r.stdout + r.stderr


def test_an_unlockable_cache_during_a_refresh_serves_the_cached_credentials(sandbox, sts, mfa_counter):
    """Stands for a read-only or unwritable cache (the tests run as root, which modes do not stop):
    the entry's lock file cannot be opened because a directory sits where it goes."""
    from credproc.core.store import EncryptedFileCache

    _ready(sandbox, sts, mfa_counter)
    first = sandbox.credentials("admin")
    store = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path)
    entry = store.get("role:admin")
    entry.refresh_at = int(time.time()) - 1  # a refresh is due; 59 minutes are left
    store.put("role:admin", entry)
    lock = store.path_for("role:admin") + ".lock"
    if os.path.exists(lock):
        os.unlink(lock)
    os.mkdir(lock)
    sts.clear()
    r = sandbox.run("--role", "admin")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["AccessKeyId"] == first["AccessKeyId"] and sts.actions == []


def test_serve_survives_reset_connections_and_foreign_hosts_with_one_line_at_most(sandbox, sts, mfa_counter):
    import signal
    import socket
    import struct
    import urllib.request

    _ready(sandbox, sts, mfa_counter)
    proc = sandbox.popen("serve", "--role", "admin")
    try:
        lines = [proc.stdout.readline().decode() for _ in range(2)]
        env = dict(line[len("export "):-1].partition("=")[::2] for line in lines)
        url, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        for _ in range(50):  # connections reset half-way through a request
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthoriz")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        rebound = urllib.request.Request(url, headers={"Authorization": token, "Host": f"evil.example.com:{port}"})
        try:
            urllib.request.urlopen(rebound, timeout=10)
            status = 200
        except urllib.error.HTTPError as e:
            status = e.code
        assert status == 403
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": token}), timeout=10) as resp:
            assert json.loads(resp.read())["AccessKeyId"].startswith("ASIA")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = err.decode().splitlines()
    assert "Traceback" not in err.decode() and len(lines) <= 3, lines  # serving...; the refused host
    assert any("refused a request for host" in line for line in lines)


def test_a_login_with_a_forged_id_token_leaves_no_sign_in_behind(sandbox, sts):
    """The real executable against the Python issuer (it hands out forged ID tokens on request) and
    moto: login exits 5, status shows no sign-in, and the next call refreshes nothing."""
    from tests.fake_issuer import FORGERIES, FakeIssuer

    fake = FakeIssuer()
    fake.refresh_tokens = True
    try:
        sandbox.write_config(f"""
[settings]
sts_endpoint_url = "{sts.url}"
[idp.sso]
type = "oidc"
issuer = "{fake.url}"
client_id = "{fake.client_id}"
flow = "password"
username = "alice"
password_command = "echo {fake.password}"
[role.dev]
idp = "sso"
arn = "arn:aws:iam::111111111111:role/dev"
""")
        fake.forge = FORGERIES["other_key"]
        r = sandbox.run("login", "--role", "dev")
        assert r.returncode == 5, r.stderr
        status = sandbox.run("status", "--json")
        (session,) = json.loads(status.stdout)["sessions"]
        assert session["state"] == "none" and session["refresh_token"] is False
        fake.forge = None
        fake.token_requests.clear()
        doc = sandbox.credentials("dev")  # a new password login, not a refresh with the rejected answer's token
        assert doc["AccessKeyId"].startswith("ASIA") and fake.token_requests == ["password"]
    finally:
        fake.stop()
