"""The CAS identity provider end to end: credproc -> the CAS awsSts emulator -> moto STS, then real
consumers. The emulator follows ../shared/reference/cas-awssts.md (tests/peers/cas_emulator.py)."""

import json
import os
import sys
import threading
import time

import pytest

from tests.peers.cas_emulator import CasEmulator
from tests.pty_helper import PtyProcess
from tests.sandbox import caller_arn, credproc_exe

ROLE_A = "arn:aws:iam::111111111111:role/campus-admin"
ROLE_B = "arn:aws:iam::222222222222:role/campus-read"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def password_command(tmp_path):
    script = tmp_path / "pw.py"
    log = tmp_path / "pw-calls"
    script.write_text(f"open({str(log)!r}, 'a').write('x\\n')\nprint({PASSWORD!r})\n")
    return f"{sys.executable} {script}"


def cas_config(url, role_arn=None, mfa="none", password_command=None, username="alice", duration=3600, extra=""):
    lines = [f'[idp.campus]\ntype = "cas"\nurl = "{url}"\nmfa = "{mfa}"\ntimeout = 30']
    if username:
        lines.append(f'username = "{username}"')
    if password_command:
        lines.append(f"password_command = {json.dumps(password_command)}")
    lines.append(f'\n[role.campus]\nidp = "campus"\nduration = {duration}')
    if role_arn:
        lines.append(f'arn = "{role_arn}"')
    return "\n".join(lines) + "\n" + extra


def emulator(moto_server, roles=(ROLE_A,), mfa=None, **kw):
    users = {"alice": {"password": PASSWORD, "attributes": {"awsroles": list(roles)}, "mfa": mfa}}
    kw.setdefault("rbac_enabled", True)
    kw.setdefault("principal_attribute_name", "awsroles")
    return CasEmulator(moto_server.url, users, **kw)


def test_rbac_role_through_credproc_and_the_aws_cli(sandbox, moto_server, password_command):
    from tests.peers.consumers import aws_cli_caller_arn

    with emulator(moto_server, roles=(ROLE_A, ROLE_B)) as cas:
        sandbox.write_config(cas_config(cas.url, ROLE_B, password_command=password_command))
        sandbox.add_aws_profile("campus", "campus", moto_server.url)
        arn = aws_cli_caller_arn(sandbox.env, "campus")
        assert arn.startswith("arn:aws:sts::222222222222:assumed-role/campus-read/")
        sent = cas.requests[0]
        assert sent["roleArn"] == ROLE_B and sent["duration"] == "3600" and sent["username"] == "alice"
        assert cas.post_count == 1


def test_expiry_is_computed_from_the_send_time_and_duration(sandbox, moto_server, password_command):
    with emulator(moto_server) as cas:
        sandbox.write_config(cas_config(cas.url, ROLE_A, password_command=password_command, duration=7200))
        before = int(time.time())
        doc = sandbox.credentials("campus")
        after = int(time.time())
        exp = int(time.mktime(time.strptime(doc["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))) - time.timezone
        assert before + 7200 - 60 <= exp <= after + 7200 - 60
        assert caller_arn(doc, moto_server.url).startswith("arn:aws:sts::111111111111:assumed-role/campus-admin/")


def test_get_session_token_mode_with_crlf_bodies(sandbox, moto_server, password_command):
    users = {"alice": {"password": PASSWORD, "attributes": {}, "mfa": None}}
    with CasEmulator(moto_server.url, users, rbac_enabled=False, line_ending="\r\n", region=None) as cas:
        sandbox.write_config(cas_config(cas.url, password_command=password_command))
        doc = sandbox.credentials("campus")
        assert doc["AccessKeyId"] and doc["SessionToken"] and "\r" not in doc["SessionToken"]
        assert cas.sts_calls[0]["action"] == "GetSessionToken"


def test_twenty_cold_callers_make_one_post(sandbox, moto_server, password_command, tmp_path):
    with emulator(moto_server, push_delay=0.5) as cas:
        sandbox.write_config(cas_config(cas.url, ROLE_A, password_command=password_command))
        procs = [sandbox.popen("--role", "campus") for _ in range(20)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0] * 20, [o[1] for o in outs]
        assert len({json.loads(o[0])["AccessKeyId"] for o in outs}) == 1
        assert cas.post_count == 1
        assert len((tmp_path / "pw-calls").read_text().splitlines()) == 1  # one password lookup


@pytest.mark.parametrize("case, code, fragment", [
    ("bad_password", 5, "CAS at {url} rejected the login of alice; check the username and password"),
    ("not_authorized", 6, "authenticated alice but does not authorize them for AWS"),
    ("role_not_allowed", 6, f"CAS does not allow alice to take arn:aws:iam::333333333333:role/other; allowed: {ROLE_A}, {ROLE_B}"),
    ("disabled", 9, "has no awsSts endpoint (HTTP 404)"),
    ("unauthorized", 9, "is not open to this client (HTTP 401)"),
    ("forbidden", 9, "is not open to this client (HTTP 403)"),
    ("sts_error", 9, "could not get credentials from STS (HTTP 500); often a duration STS refuses: it is 43200 s"),
])
def test_failures_each_get_their_own_message_and_exit_code(sandbox, moto_server, tmp_path, case, code, fragment):
    pw = tmp_path / "pw.py"
    pw.write_text(f"print({('wrong' if case == 'bad_password' else PASSWORD)!r})\n")
    kw = {}
    roles, arn, duration = (ROLE_A, ROLE_B), ROLE_A, 3600
    if case == "not_authorized":
        kw["principal_attribute_value"] = "^nothing-matches$"
    if case == "role_not_allowed":
        arn = "arn:aws:iam::333333333333:role/other"
    if case in ("disabled", "unauthorized", "forbidden"):
        kw["endpoint_mode"] = case
    if case == "sts_error":
        kw["max_role_duration"] = 3600
        duration = 43200
    with emulator(moto_server, roles=roles, **kw) as cas:
        sandbox.write_config(cas_config(cas.url, arn, password_command=f"{sys.executable} {pw}", duration=duration))
        r = sandbox.run("--role", "campus")
        assert r.returncode == code, r.stderr
        assert r.stdout == b""
        err = r.stderr.decode().strip()
        assert fragment.format(url=cas.url) in err
        assert len(err.splitlines()) == 1 and "Traceback" not in err and PASSWORD not in err


def test_several_roles_without_a_terminal_lists_them_and_says_how_to_pin(sandbox, moto_server, password_command):
    with emulator(moto_server, roles=(ROLE_A, ROLE_B)) as cas:
        sandbox.write_config(cas_config(cas.url, None, password_command=password_command))
        r = sandbox.run("--role", "campus")
        assert r.returncode == 3 and r.stdout == b""
        err = r.stderr.decode()
        assert f"CAS offers alice several roles and [role.campus] names none: {ROLE_A}, {ROLE_B}" in err
        assert f'pin one in [role.campus], e.g. arn = "{ROLE_A}"' in err


def test_the_role_menu_password_and_passcode_at_a_terminal(sandbox, moto_server):
    with emulator(moto_server, roles=(ROLE_A, ROLE_B), mfa="duo", valid_passcodes={"246810", "135791"}) as cas:
        sandbox.write_config(cas_config(cas.url, None, mfa="passcode", username=None))
        p = PtyProcess([credproc_exe(), "--role", "campus"], sandbox.env)
        p.expect(f"CAS username for {cas.url}: ")
        p.send("alice")
        p.expect("CAS password for alice: ")
        p.send(PASSWORD)
        p.expect("Duo passcode: ")
        p.send("246810")
        p.expect("Choose 1-2: ")
        p.send("2")
        p.expect("Duo passcode (a new one, for the chosen role): ")  # passcodes are single-use
        p.send("135791")
        code, out, err = p.finish()
        assert code == 0, err
        assert PASSWORD.encode() not in p.screen  # typed with echo off
        assert f'arn = "{ROLE_B}"'.encode() in p.screen  # how to pin the choice
        assert caller_arn(json.loads(out), moto_server.url).startswith("arn:aws:sts::222222222222:assumed-role/campus-read/")
        assert [r.get("roleArn") for r in cas.requests] == [None, ROLE_B]
        assert [r["passcode"] for r in cas.requests] == ["246810", "135791"]


def test_a_duo_push_is_announced_and_waited_for(sandbox, moto_server, password_command):
    with emulator(moto_server, mfa="duo") as cas:
        sandbox.write_config(cas_config(cas.url, ROLE_A, mfa="push", password_command=password_command))
        p = PtyProcess([credproc_exe(), "--role", "campus"], sandbox.env)
        p.expect("Approve the Duo push on your phone...")
        p.expect("waiting for the Duo push... 1 s")  # a progress line while the request blocks
        cas.approve_push(timeout=10)
        code, out, err = p.finish()
        assert code == 0, err
        assert json.loads(out)["AccessKeyId"]


def test_a_denied_duo_push_is_an_authentication_failure(sandbox, moto_server, password_command):
    with emulator(moto_server, mfa="duo") as cas:
        sandbox.write_config(cas_config(cas.url, ROLE_A, mfa="push", password_command=password_command))
        p = PtyProcess([credproc_exe(), "--role", "campus"], sandbox.env)
        p.expect("Approve the Duo push")
        cas.deny_push(timeout=10)
        code, out, err = p.finish()
        assert code == 5 and out == b""
        assert b"the Duo push may have been denied or timed out" in err


def test_a_push_without_a_terminal_or_password_command_fails_fast_and_sends_nothing(sandbox, moto_server):
    with emulator(moto_server, mfa="duo") as cas:
        sandbox.write_config(cas_config(cas.url, ROLE_A, mfa="push"))
        t = time.monotonic()
        r = sandbox.run("--role", "campus")
        assert time.monotonic() - t < 8
        assert r.returncode == 4 and r.stdout == b""
        assert b"a CAS password is needed and there is no terminal" in r.stderr
        assert b"login --role campus" in r.stderr
        assert cas.post_count == 0


def test_the_password_is_never_cached_or_passed_in_argv(sandbox, moto_server, password_command):
    with emulator(moto_server) as cas:
        sandbox.write_config(cas_config(cas.url, ROLE_A, password_command=password_command))
        seen = []
        stop = threading.Event()

        def watch_argv():  # every process's command line, while credproc runs
            while not stop.is_set():
                for pid in os.listdir("/proc"):
                    if pid.isdigit():
                        try:
                            seen.append(open(f"/proc/{pid}/cmdline", "rb").read())
                            seen.append(open(f"/proc/{pid}/environ", "rb").read())
                        except OSError:
                            pass
                time.sleep(0.01)

        t = threading.Thread(target=watch_argv)
        t.start()
        r = sandbox.run("--role", "campus", "--debug")
        stop.set()
        t.join()
        assert r.returncode == 0
        assert PASSWORD.encode() not in r.stderr
        assert not any(PASSWORD.encode() in s for s in seen)
        for root, _, files in os.walk(sandbox.root):
            for name in files:
                if name != "pw.py":
                    assert PASSWORD.encode() not in open(os.path.join(root, name), "rb").read(), name


def test_plain_http_to_a_remote_host_is_refused(sandbox):
    sandbox.write_config(cas_config("http://sso.example.edu/cas", ROLE_A))
    r = sandbox.run("--role", "campus")
    assert r.returncode == 3
    assert b"idp.campus.url: 'http://sso.example.edu/cas' must be an https:// URL" in r.stderr


# -- issue 13 item 14: a Duo push without a terminal ----------------------------------------------

def _push_config(cas, password_command, extra_idp=""):
    cfg = cas_config(cas.url, ROLE_A, mfa="push", password_command=password_command)
    return cfg.replace("timeout = 30", "timeout = 30\n" + extra_idp) if extra_idp else cfg


def test_a_duo_push_works_without_a_terminal(sandbox, moto_server, password_command):
    """Terraform or an IDE: no terminal, username and password_command configured; the phone shows
    the push, and five concurrent callers share that one push."""
    with emulator(moto_server, mfa="duo") as cas:
        sandbox.write_config(_push_config(cas, password_command))
        procs = [sandbox.popen("--role", "campus") for _ in range(5)]
        pushed = cas.push_requests.get(timeout=20)
        time.sleep(1)  # the other four are waiting on the lock, not sending pushes of their own
        assert cas.push_requests.empty() and cas.post_count == 1
        pushed.approve()
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0] * 5, [o[1] for o in outs]
        assert len({json.loads(o[0])["AccessKeyId"] for o in outs}) == 1
        assert cas.post_count == 1


def test_a_denied_push_without_a_terminal_stops_further_unattended_pushes(sandbox, moto_server, password_command):
    with emulator(moto_server, mfa="duo", push_response="deny") as cas:
        sandbox.write_config(_push_config(cas, password_command))
        r = sandbox.run("--role", "campus")
        assert r.returncode == 5 and r.stdout == b"", r.stderr
        assert b"the Duo push may have been denied or timed out" in r.stderr
        assert cas.post_count == 1
        # push fatigue: the next unattended callers fail at once, with the login hint, and send nothing
        t = time.monotonic()
        r = sandbox.run("--role", "campus")
        assert time.monotonic() - t < 8
        assert r.returncode == 4 and r.stdout == b"", r.stderr
        err = r.stderr.decode()
        assert "no Duo push is sent without a terminal" in err and "login --role campus" in err
        assert len(err.strip().splitlines()) == 1
        assert cas.post_count == 1
        # at a terminal the user is there to answer: the push goes out, and success lifts the pause
        cas.push_response = "approve"
        p = PtyProcess([credproc_exe(), "login", "--role", "campus"], sandbox.env)
        p.expect("Approve the Duo push")
        code, out, err = p.finish()
        assert code == 0, err
        assert cas.post_count == 2
        sandbox.run("logout", "--role", "campus")
        assert sandbox.run("--role", "campus").returncode == 0
        assert cas.post_count == 3


def test_an_unanswered_push_without_a_terminal_gives_up_before_the_sdks_60_s_kill(sandbox, moto_server,
                                                                                 password_command):
    """With timeout = 600 the unattended wait is still capped at 45 s (the Go SDK kills a
    credential_process at 60 s), then the same pause as after a denied push."""
    with emulator(moto_server, mfa="duo", push_timeout=300) as cas:
        sandbox.write_config(_push_config(cas, password_command).replace("timeout = 30", "timeout = 600"))
        t = time.monotonic()
        r = sandbox.run("--role", "campus", timeout=90)
        took = time.monotonic() - t
        assert 40 <= took < 55, took
        assert r.returncode == 4 and r.stdout == b"", r.stderr
        err = r.stderr.decode()
        assert "the Duo push was not answered within" in err and "login --role campus" in err
        assert len(err.strip().splitlines()) == 1
        assert sandbox.run("--role", "campus").returncode == 4
        assert cas.post_count == 1


def test_the_push_pause_is_configurable_and_zero_turns_it_off(sandbox, moto_server, password_command):
    with emulator(moto_server, mfa="duo", push_response="deny") as cas:
        sandbox.write_config(_push_config(cas, password_command, extra_idp="push_backoff = 0"))
        assert sandbox.run("--role", "campus").returncode == 5
        assert sandbox.run("--role", "campus").returncode == 5
        assert cas.post_count == 2
        sandbox.write_config(_push_config(cas, password_command, extra_idp="push_backoff = 2"))
        assert sandbox.run("--role", "campus").returncode == 5
        assert sandbox.run("--role", "campus").returncode == 4
        time.sleep(2.5)
        assert sandbox.run("--role", "campus").returncode == 5
        assert cas.post_count == 4


def test_a_duo_push_without_a_terminal_raises_a_desktop_notification_with_prompt_gui(sandbox, moto_server,
                                                                                     password_command, tmp_path):
    from tests.test_console_gui import write_fake_zenity, zenity_calls

    bin_dir, calls = tmp_path / "bin", tmp_path / "zenity.log"
    write_fake_zenity(str(bin_dir), str(calls))
    env = {"DISPLAY": ":99", "PATH": f"{bin_dir}{os.pathsep}{sandbox.env['PATH']}"}
    with emulator(moto_server, mfa="duo", push_response="approve", push_delay=0.5) as cas:
        sandbox.write_config('[settings]\nprompt = "gui"\n' + _push_config(cas, password_command))
        r = sandbox.run("--role", "campus", env=env)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 10
        while not zenity_calls(str(calls)) and time.monotonic() < deadline:
            time.sleep(0.05)
        (argv,) = zenity_calls(str(calls))
        assert argv[0] == "--notification" and "--text=credproc: Approve the Duo push on your phone..." in argv


def test_concurrent_callers_behind_a_denied_push_do_not_send_pushes_of_their_own(sandbox, moto_server,
                                                                                 password_command):
    """The callers waiting on the lock find the pause when they get it: one push in all, not one each."""
    with emulator(moto_server, mfa="duo") as cas:
        sandbox.write_config(_push_config(cas, password_command))
        procs = [sandbox.popen("--role", "campus") for _ in range(4)]
        cas.push_requests.get(timeout=20).deny()
        outs = [p.communicate(timeout=60) for p in procs]
        assert sorted(p.returncode for p in procs) == [4, 4, 4, 5], [o[1] for o in outs]
        assert cas.post_count == 1 and cas.push_requests.empty()
