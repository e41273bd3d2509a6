"""The IAM-keys chain end to end: the real credproc executable against a real moto STS server,
with calls counted at the endpoint (a counting proxy in front of moto)."""

import json
import os
import signal
import time

import pytest

from tests.sandbox import caller_arn


def iam_config(sts_url, mfa=True, mfa_command=None, extra=""):
    mfa_lines = 'mfa_serial = "arn:aws:iam::123456789012:mfa/alice"\n' if mfa else ""
    if mfa_command:
        mfa_lines += f"mfa_command = {json.dumps(mfa_command)}\n"
    return f"""
[settings]
region = "us-east-1"
sts_endpoint_url = "{sts_url}"

[idp.corp]
type = "iam"
profile = "corp-user"
{mfa_lines}
[role.admin]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"
session_name = "alice"

[role.readonly]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/ReadOnly"

[role.audit]
source_role = "admin"
arn = "arn:aws:iam::222222222222:role/Audit"
{extra}"""


def test_role_credentials_are_the_assumed_role_and_the_document_is_well_formed(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    r = sandbox.run("--role", "admin")
    assert r.returncode == 0 and r.stderr == b""
    doc = json.loads(r.stdout)
    assert set(doc) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "AccountId"}
    assert doc["Version"] == 1 and doc["AccountId"] == "111111111111"
    assert doc["Expiration"].endswith("Z") and len(doc["Expiration"]) == 20  # whole seconds, UTC
    assert sts.actions == ["GetSessionToken", "AssumeRole"]
    assert caller_arn(doc, sts.url) == "arn:aws:sts::111111111111:assumed-role/Admin/alice"


def test_a_cache_hit_makes_no_call(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    first = sandbox.credentials("admin")
    sts.clear()
    assert sandbox.credentials("admin") == first
    assert sts.actions == []


def test_roles_over_one_idp_share_one_mfa_session(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    sandbox.credentials("admin")
    sandbox.credentials("readonly")
    audit = sandbox.credentials("audit")
    assert mfa_counter[1]() == 1
    assert sts.count("GetSessionToken") == 1 and sts.count("AssumeRole") == 3
    assert caller_arn(audit, sts.url).startswith("arn:aws:sts::222222222222:assumed-role/Audit/")


def test_twenty_cold_callers_make_one_mfa_prompt_and_one_chain(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    sts.delay = 0.3  # widen the race window
    procs = [sandbox.popen("--role", "audit") for _ in range(20)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [o[1] for o in outs]
    docs = [json.loads(o[0]) for o in outs]
    assert len({d["AccessKeyId"] for d in docs}) == 1 and len({d["SessionToken"] for d in docs}) == 1
    assert mfa_counter[1]() == 1
    assert sts.count("GetSessionToken") == 1
    assert sts.count("AssumeRole") == 2  # admin, then audit from admin


def test_without_mfa_the_role_is_assumed_from_the_static_keys(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa=False))
    doc = sandbox.credentials("admin")
    assert sts.actions == ["AssumeRole"]  # no GetSessionToken without mfa_serial
    assert caller_arn(doc, sts.url) == "arn:aws:sts::111111111111:assumed-role/Admin/alice"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_tampered_or_truncated_cache_files_are_refetched(sandbox, sts, mfa_counter, damage):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    first = sandbox.credentials("admin")
    for name in sandbox.cache_files():
        path = os.path.join(sandbox.cache_dir, name)
        data = bytearray(open(path, "rb").read())
        if damage == "flip":
            data[len(data) // 2] ^= 0x40
        elif damage == "truncate":
            data = data[:20]
        else:
            data = bytearray(b'{"Version":1,"AccessKeyId":"AKIAEVIL"}')
        open(path, "wb").write(data)
    sts.clear()
    r = sandbox.run("--role", "admin", "--debug")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["AccessKeyId"] != first["AccessKeyId"] and doc["AccessKeyId"] != "AKIAEVIL"
    assert sts.actions == ["GetSessionToken", "AssumeRole"]
    assert b"entry unusable" in r.stderr


def test_a_process_killed_while_refreshing_leaves_a_usable_cache(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    sts.delay = 1.5
    for kill_after in (0.4, 0.9, 1.6, 2.2):  # before, during and after the STS calls
        p = sandbox.popen("--role", "admin")
        time.sleep(kill_after)
        p.send_signal(signal.SIGKILL)
        p.wait()
        sts.delay = 0
        t = time.monotonic()
        doc = sandbox.credentials("admin", timeout=20)  # the OS released the lock; nothing torn
        assert time.monotonic() - t < 10
        assert caller_arn(doc, sts.url).endswith("assumed-role/Admin/alice")
        sts.delay = 1.5
        for name in sandbox.cache_files():
            os.unlink(os.path.join(sandbox.cache_dir, name))


def test_no_terminal_fails_fast_with_the_login_hint_and_empty_stdout(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url))  # MFA, no mfa_command: needs a prompt
    t = time.monotonic()
    p = sandbox.popen("--role", "admin", stdin=__import__("subprocess").PIPE)  # like the JS SDK: stdin never delivers
    out, err = p.communicate(timeout=20)
    assert time.monotonic() - t < 8
    assert p.returncode == 4
    assert out == b""
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert "an MFA code for arn:aws:iam::123456789012:mfa/alice is needed and there is no terminal" in lines[0]
    assert "login --role admin" in lines[0]
    assert sts.actions == []


def test_login_prints_a_summary_not_secrets(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    r = sandbox.run("login", "--role", "admin")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert out.startswith("role admin (account 111111111111): credentials valid until ") and out.count("\n") == 1
    doc = sandbox.credentials("admin")
    assert doc["SecretAccessKey"] not in out and doc["AccessKeyId"] not in out
    r = sandbox.run("login", "--role", "admin", "--force")
    assert r.returncode == 0 and mfa_counter[1]() == 2


def test_a_changed_role_arn_is_not_served_from_the_cache(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    sandbox.credentials("admin")
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]).replace("role/Admin", "role/Other"))
    doc = sandbox.credentials("admin")
    assert caller_arn(doc, sts.url) == "arn:aws:sts::111111111111:assumed-role/Other/alice"


def test_a_comment_in_the_config_does_not_discard_the_cache(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    first = sandbox.credentials("admin")
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]) + "\n# tidy\n")
    sts.clear()
    assert sandbox.credentials("admin") == first and sts.actions == []
    # ...and the entry is re-stamped with the new config digest, so the fast path serves it again
    from credproc.core import cache
    from credproc.core.store import EncryptedFileCache

    entry = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path).get("role:admin")
    assert entry.config_digest == cache.digest(open(sandbox.config_path, "rb").read())


def test_a_malformed_config_is_one_clear_error(sandbox):
    sandbox.write_config("[role.admin]\nidp = 'nope'\nduration = 10\n")
    r = sandbox.run("--role", "admin")
    assert r.returncode == 3 and r.stdout == b""
    err = r.stderr.decode()
    assert err.startswith(f"credproc: {sandbox.config_path}: 2 problems:")
    assert "role.admin.idp" in err and "role.admin.duration" in err and "Traceback" not in err


def test_unreachable_sts_is_reported_as_such(sandbox, mfa_counter):
    from tests.peers.net import free_port

    sandbox.write_static_keys()
    sandbox.write_config(iam_config(f"http://127.0.0.1:{free_port()}", mfa_command=mfa_counter[0]))
    r = sandbox.run("--role", "admin")
    assert r.returncode == 7
    assert r.stderr.decode().startswith("credproc: cannot reach STS at http://127.0.0.1:")
    assert r.stdout == b""


def test_recursion_is_refused(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa=False))
    r = sandbox.run("--role", "admin", env={"CREDPROC_ACTIVE": "1"})
    assert r.returncode == 10 and b"refusing to recurse" in r.stderr


def test_a_waiter_gives_up_before_terraforms_60_second_kill_and_says_why(sandbox, sts, mfa_counter):
    """Another process holds the role's lock (say, at an MFA prompt in another terminal) and the cache
    is cold: the waiter must give up, with the reason, well inside the Go SDK's 60 s."""
    import time as _time

    from credproc.core.store import EncryptedFileCache

    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    holder = EncryptedFileCache(sandbox.cache_dir, sandbox.key_path, scope=sandbox.config_path).lock("role:admin", "x")
    holder.acquire(_time.monotonic())
    try:
        t = _time.monotonic()
        r = sandbox.run("--role", "admin", timeout=70)
        elapsed = _time.monotonic() - t
    finally:
        holder.release()
    assert r.returncode == 8 and r.stdout == b""
    assert 40 < elapsed < 55
    err = r.stderr.decode()
    assert f"gave up waiting for another credproc process (pid {os.getpid()})" in err
    assert "still getting credentials for role 'admin'" in err and "another terminal" in err
    assert sts.actions == []
