"""credproc exec and credproc serve, end to end: the real credproc executable against moto STS,
with the AWS CLI, boto3 and the JavaScript SDK as the programs that use the credentials.

exec without --server replaces itself with the command (os.execvpe): the exit status and a death by
signal are the command's own (a Python parent sees -15, a shell $? of 143). With --server credproc
stays the command's parent and exits 128+N when signal N ended the command (143 for SIGTERM).
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from tests.integration.test_iam_moto import iam_config
from tests.peers import consumers
from tests.peers.net import free_port
from tests.pty_helper import PtyProcess
from tests.sandbox import STATIC_SECRET, credproc_exe

ADMIN_ARN = "arn:aws:sts::111111111111:assumed-role/Admin/alice"
TIMEOUT = 60

# Prints what the child sees: its caller ARN (by the default credential chain), where the
# credentials came from, and the variables credproc set or should have removed.
BOTO3_CHILD = textwrap.dedent("""
    import json, os, boto3
    session = boto3.Session()
    arn = session.client("sts").get_caller_identity()["Arn"]
    names = ["AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION", "AWS_REGION",
             "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
             "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "CREDPROC_ACTIVE"]
    print(json.dumps({"arn": arn, "method": session.get_credentials().method,
                      "env": {n: os.environ[n] for n in names if n in os.environ}}))
""")


@pytest.fixture
def admin(sandbox, sts, mfa_counter):
    """Role 'admin' over IAM keys with an MFA session (code from an mfa_command)."""
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    return sandbox


def stale_env(sts):
    """What a user's shell may hold: a profile that does not exist and old keys. The endpoint
    variable points the children at moto."""
    return {"AWS_PROFILE": "no-such-profile", "AWS_DEFAULT_PROFILE": "no-such-profile",
            "AWS_ACCESS_KEY_ID": "AKIASTALESTALESTALE0", "AWS_SECRET_ACCESS_KEY": "stale",
            "AWS_SESSION_TOKEN": "stale", "AWS_SECURITY_TOKEN": "stale", "AWS_ROLE_ARN": "arn:aws:iam::1:role/x",
            "AWS_ENDPOINT_URL_STS": sts.url}


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout.decode()}\nstderr: {r.stderr.decode()}"
    return r


@contextmanager
def running(proc):
    """Whatever happens, the process and its children (its own session) are gone afterwards."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.communicate(timeout=10)


def read_lines(stream, n=1, timeout=TIMEOUT):
    """The next n lines of a pipe, or fail after the timeout (the reader thread is left to the pipe's
    end, which comes when the test kills the process)."""
    lines = []

    def read():
        for _ in range(n):
            lines.append(stream.readline().decode())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert len(lines) == n and all(lines), f"wanted {n} lines within {timeout} s, got {lines!r}"
    return lines


# --------------------------------------------------------------------------------------------
# exec


def test_exec_runs_the_aws_cli_as_the_role_whatever_the_environment_held(admin, sts):
    r = ok(admin.run("exec", "--role", "admin", "--", consumers.aws_cli_path(), "sts", "get-caller-identity",
                     env=stale_env(sts), timeout=TIMEOUT))
    assert json.loads(r.stdout)["Arn"] == ADMIN_ARN
    assert r.stderr == b""


def test_exec_gives_a_boto3_child_the_keys_region_and_expiry_and_removes_the_rest(admin, sts):
    r = ok(admin.run("exec", "--role", "admin", "--", sys.executable, "-c", BOTO3_CHILD, env=stale_env(sts),
                     timeout=TIMEOUT))
    seen = json.loads(r.stdout)
    assert seen["arn"] == ADMIN_ARN and seen["method"] == "env"
    env = seen["env"]
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and env["AWS_SESSION_TOKEN"] != "stale"
    assert env["AWS_CREDENTIAL_EXPIRATION"].endswith("Z")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"  # [settings] region is set
    assert set(env) == {"AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION", "AWS_REGION",
                        "AWS_DEFAULT_REGION"}


def test_exec_leaves_the_region_alone_when_the_config_sets_none(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]).replace('region = "us-east-1"\n', ""))
    env = dict(stale_env(sts), AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-2")
    r = ok(sandbox.run("exec", "--role", "admin", "--", sys.executable, "-c", BOTO3_CHILD, env=env, timeout=TIMEOUT))
    seen = json.loads(r.stdout)
    assert seen["arn"] == ADMIN_ARN
    assert seen["env"]["AWS_REGION"] == "eu-west-1" and seen["env"]["AWS_DEFAULT_REGION"] == "eu-west-2"


def test_the_command_may_run_credproc_itself(admin, sts):
    """CREDPROC_ACTIVE (the recursion guard's mark) is not passed on: the command is not credproc's own
    helper but the user's program, which may well use a credential_process profile."""
    r = ok(admin.run("exec", "--role", "admin", "--", credproc_exe(), "--role", "readonly", timeout=TIMEOUT))
    assert json.loads(r.stdout)["AccessKeyId"].startswith("ASIA")


@pytest.mark.parametrize("server", [False, True], ids=["exec", "server"])
def test_the_exit_status_is_the_commands(admin, server):
    flags = ["--server"] if server else []
    r = admin.run("exec", "--role", "admin", *flags, "--", "sh", "-c", "exit 7", timeout=TIMEOUT)
    assert r.returncode == 7 and r.stderr == b""


def test_a_command_that_is_not_found_exits_127_before_any_authentication(admin, sts):
    r = admin.run("exec", "--role", "admin", "--", "no-such-command-here", timeout=TIMEOUT)
    assert r.returncode == 127 and r.stdout == b""
    assert r.stderr.decode() == "credproc: command not found: no-such-command-here\n"
    assert sts.actions == []


def test_no_command_starts_the_shell_with_the_credentials_and_credproc_role(admin, tmp_path):
    """As aws-vault: `credproc exec admin` opens $SHELL (here a script standing for it)."""
    shell = tmp_path / "fake-shell"
    shell.write_text("#!/bin/sh\necho \"$CREDPROC_ROLE ${AWS_ACCESS_KEY_ID%${AWS_ACCESS_KEY_ID#????}}\"\n")
    shell.chmod(0o755)
    for argv in (("exec", "admin"), ("exec", "--role", "admin", "--")):
        r = admin.run(*argv, timeout=TIMEOUT, env={"SHELL": str(shell)})
        assert r.returncode == 0 and r.stdout == b"admin ASIA\n", r.stderr


def test_a_nested_exec_is_refused_before_any_authentication(admin, sts):
    r = admin.run("exec", "admin", "--", sys.executable, "-c", "print('x')", timeout=TIMEOUT,
                  env={"CREDPROC_ROLE": "audit"})
    assert r.returncode == 2 and r.stdout == b"" and b"already inside `credproc exec` for role audit" in r.stderr
    assert sts.actions == []


SELF_TERM = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"


def test_a_command_killed_by_a_signal_is_seen_as_such(admin):
    r = admin.run("exec", "--role", "admin", "--", sys.executable, "-c", SELF_TERM, timeout=TIMEOUT)
    assert r.returncode == -signal.SIGTERM  # credproc became the command: a real death by signal
    r = admin.run("exec", "--role", "admin", "--server", "--", sys.executable, "-c", SELF_TERM, timeout=TIMEOUT)
    assert r.returncode == 128 + signal.SIGTERM  # 143, as a shell reports it


def test_exec_server_gives_the_child_an_endpoint_not_keys(admin, sts):
    r = ok(admin.run("exec", "--role", "admin", "--server", "--", sys.executable, "-c", BOTO3_CHILD,
                     env=stale_env(sts), timeout=TIMEOUT))
    seen = json.loads(r.stdout)
    assert seen["arn"] == ADMIN_ARN and seen["method"] == "container-role"
    env = seen["env"]
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
    assert len(env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]) >= 40
    assert set(env) == {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_REGION",
                        "AWS_DEFAULT_REGION"}
    assert r.stderr == b""


# The child reports each signal it gets and, after a quiet moment, exits with the count (so a
# doubled signal shows), or with 0 if none came.
COUNTING_CHILD = textwrap.dedent("""
    import signal, sys, time
    got = []
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT):
        signal.signal(s, lambda n, f: got.append(n))
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # room for a second copy of the signal to arrive
    print("got", *got, flush=True)
    sys.exit(len(got))
""")


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"])
def test_exec_server_forwards_signals_to_the_command_once(admin, sig):
    signum = getattr(signal, sig)
    proc = admin.popen("exec", "--role", "admin", "--server", "--", sys.executable, "-c", COUNTING_CHILD)
    with running(proc):
        assert read_lines(proc.stdout) == ["ready\n"]
        proc.send_signal(signum)  # to credproc only (no terminal here): it must pass it on
        out, err = proc.communicate(timeout=TIMEOUT)
    assert out.decode() == f"got {int(signum)}\n", err.decode()
    assert proc.returncode == 1


def test_ctrl_c_at_the_terminal_reaches_the_command_once_not_twice(admin):
    """Regression: a wrapper that forwards SIGINT although the terminal already sent it to the whole
    foreground group makes Terraform see two interrupts and abort without cleaning up."""
    pty = PtyProcess([credproc_exe(), "exec", "--role", "admin", "--server", "--", sys.executable, "-c",
                      COUNTING_CHILD], env=admin.env)
    try:
        assert read_lines(pty.proc.stdout) == ["ready\n"]
        os.write(pty.master, b"\x03")  # Ctrl-C typed at the terminal
        code, out, err = pty.finish(timeout=TIMEOUT)
    finally:
        if pty.proc.poll() is None:
            os.killpg(pty.proc.pid, signal.SIGKILL)
            pty.proc.wait(10)
    assert out.decode() == f"got {int(signal.SIGINT)}\n", err.decode()
    assert code == 1


# --------------------------------------------------------------------------------------------
# serve


class Served:
    def __init__(self, proc, lines):
        self.proc = proc
        self.lines = lines
        self.env = {}
        for line in lines:
            assert line.startswith("export ") and line.endswith("\n"), lines
            name, _, value = line[len("export "):-1].partition("=")
            self.env[name] = value
        assert list(self.env)[:2] == ["AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"], lines
        self.url = self.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        self.token = self.env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]

    def get(self, token=None, path=""):
        """(status, body bytes); token=None sends the right one, token="" none at all."""
        headers = {} if token == "" else {"Authorization": self.token if token is None else token}
        req = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def creds(self):
        status, body = self.get()
        assert status == 200, body
        return json.loads(body)

    def child_env(self, sandbox, sts):
        return {**sandbox.env, **self.env, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_STS": sts.url}


@pytest.fixture
def serve(admin):
    """Start `credproc serve --role admin [args]`, read its export lines (four: admin's config sets a
    region); stopped (or killed) at the end."""
    procs = []

    def start(*args, lines=4):
        proc = admin.popen("serve", "--role", "admin", *args)
        procs.append(proc)
        return Served(proc, read_lines(proc.stdout, lines))

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=10)


def test_serve_prints_the_two_export_lines_and_a_note(serve):
    served = serve()
    assert served.url.startswith("http://127.0.0.1:") and served.url.endswith("/")
    assert len(served.token) >= 40 and served.token.replace("-", "").replace("_", "").isalnum()
    served.proc.send_signal(signal.SIGTERM)
    out, err = served.proc.communicate(timeout=TIMEOUT)
    assert served.proc.returncode == 0 and out == b""
    assert err.decode() == f"credproc: serving role admin on {served.url}; Ctrl-C to stop\n"


def test_serve_stopped_by_ctrl_c_exits_130_as_documented(serve):
    served = serve()
    served.proc.send_signal(signal.SIGINT)
    out, err = served.proc.communicate(timeout=TIMEOUT)
    assert served.proc.returncode == 130 and out == b""
    assert err.decode() == f"credproc: serving role admin on {served.url}; Ctrl-C to stop\n"


def test_serve_prints_the_region_so_pasted_lines_leave_no_NoRegionError(serve, admin, sts):
    """boto3 and the AWS CLI read AWS_DEFAULT_REGION; the JS and Go SDKs and CLI v2 AWS_REGION."""
    served = serve()
    assert [line.split("=")[0] for line in served.lines] == [
        "export AWS_CONTAINER_CREDENTIALS_FULL_URI", "export AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "export AWS_REGION", "export AWS_DEFAULT_REGION"]
    assert served.env["AWS_REGION"] == served.env["AWS_DEFAULT_REGION"] == "us-east-1"
    # exactly what a user gets by pasting the lines into a clean shell: no region from anywhere else
    env = {**admin.env, **served.env, "AWS_ENDPOINT_URL_STS": sts.url}
    code = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == ADMIN_ARN
    r = subprocess.run([sys.executable, "-m", "awscli", "sts", "get-caller-identity", "--query", "Arn",
                        "--output", "text"], env=env, capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == ADMIN_ARN


def test_serve_prints_no_region_when_none_is_configured(admin, sts):
    admin.write_config(open(admin.config_path).read().replace('region = "us-east-1"\n', ""))
    proc = admin.popen("serve", "--role", "admin")
    try:
        lines = read_lines(proc.stdout, 2)
        assert [line.split("=")[0] for line in lines] == [
            "export AWS_CONTAINER_CREDENTIALS_FULL_URI", "export AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=TIMEOUT)
    assert out == b"" and proc.returncode == 0


def test_serve_answers_in_the_container_protocol_shape(serve):
    served = serve()
    doc = served.creds()
    assert set(doc) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "AccountId"}
    assert doc["AccountId"] == "111111111111" and doc["Expiration"].endswith("Z") and len(doc["Expiration"]) == 20
    assert served.get(path="any/path?x=1")[0] == 200  # any path


@pytest.mark.parametrize("token", ["", "wrong", "upper"], ids=["missing", "wrong", "case"])
def test_serve_refuses_a_missing_or_wrong_token_with_a_bare_403(serve, token):
    served = serve()
    if token == "upper":
        token = served.token.upper() if served.token.upper() != served.token else served.token.lower()
    assert served.get(token=token) == (403, b"")


def test_boto3_uses_serve_through_its_container_provider(serve, admin, sts):
    served = serve()
    r = ok(subprocess.run([sys.executable, "-c", BOTO3_CHILD], env=served.child_env(admin, sts),
                          capture_output=True, timeout=TIMEOUT))
    seen = json.loads(r.stdout)
    assert seen["arn"] == ADMIN_ARN and seen["method"] == "container-role"


def test_the_js_sdk_uses_serve_through_its_http_provider(serve, admin, sts):
    ok_, reason = consumers.node_available()
    if not ok_:
        if os.environ.get("CI"):  # on CI the consumer must be there: a skip would hide a gap
            pytest.fail(reason)
        pytest.skip(reason)
    served = serve()
    script = ('import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";\n'
              'const c = new STSClient({ endpoint: process.env.STS_URL, maxAttempts: 1 });\n'
              'process.stdout.write((await c.send(new GetCallerIdentityCommand({}))).Arn + "\\n");\n')
    env = dict(served.child_env(admin, sts), STS_URL=sts.url)
    r = ok(subprocess.run(["node", "--input-type=module", "-e", script], cwd=consumers.NODE_DIR, env=env,
                          capture_output=True, timeout=TIMEOUT))
    assert r.stdout.decode() == ADMIN_ARN + "\n"


def test_serve_keeps_working_across_a_refresh(serve, admin, sts, mfa_counter):
    from credproc.core.store import EncryptedFileCache

    served = serve()
    first = served.creds()
    assert served.creds() == first  # served from the cache
    sts.clear()
    assert EncryptedFileCache(admin.cache_dir, admin.key_path, scope=admin.config_path).delete("role:admin")  # stands for expiry
    second = served.creds()
    assert second["AccessKeyId"] != first["AccessKeyId"]
    assert sts.actions == ["AssumeRole"] and mfa_counter[1]() == 1  # the MFA session is still good
    r = ok(subprocess.run([sys.executable, "-c", BOTO3_CHILD], env=served.child_env(admin, sts),
                          capture_output=True, timeout=TIMEOUT))
    assert json.loads(r.stdout)["arn"] == ADMIN_ARN


def test_a_failing_request_is_a_500_with_a_short_reason_and_one_log_line(serve, admin, sts):
    served = serve()
    good = open(admin.config_path).read()
    admin.write_config(good.replace('arn = "arn:aws:iam::111111111111:role/Admin"', "duration = 1"))
    status, body = served.get()
    assert status == 500
    doc = json.loads(body)
    assert set(doc) == {"Code", "Message"} and doc["Code"] == "ConfigError" and "role.admin" in doc["Message"]
    assert STATIC_SECRET.encode() not in body
    admin.write_config(good)
    assert served.creds()["AccessKeyId"].startswith("ASIA")  # and it recovers
    served.proc.send_signal(signal.SIGTERM)
    _, err = served.proc.communicate(timeout=TIMEOUT)
    assert served.proc.returncode == 0
    lines = err.decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith("credproc: serve: request failed: ")


def test_serve_on_a_given_port_and_a_taken_port_is_a_clear_error(serve, admin):
    port = free_port()
    served = serve("--port", str(port))
    assert served.url == f"http://127.0.0.1:{port}/"
    r = admin.run("serve", "--role", "admin", "--port", str(port), timeout=TIMEOUT)
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode().startswith(f"credproc: cannot listen on 127.0.0.1:{port}: ")


def test_serve_fails_before_listening_when_the_role_cannot_be_had(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url))  # MFA code needed, no terminal, no mfa_command
    r = sandbox.run("serve", "--role", "admin", timeout=TIMEOUT)
    assert r.returncode == 4 and r.stdout == b"" and b"login --role admin" in r.stderr


# --------------------------------------------------------------------------------------------
# the server in-process, with a fake credentials source


def test_the_server_runs_one_refresh_at_a_time():
    from credproc.core.credentials import Credentials
    from credproc.core.server import CredentialServer

    active, peak, lock = [0], [0], threading.Lock()

    def fetch():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return Credentials("ASIAX", "secret", "token", time.time() + 3600)

    server = CredentialServer(fetch).start()
    try:
        results = []

        def call():
            req = urllib.request.Request(server.url, headers={"Authorization": server.token})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                results.append(resp.status)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
    finally:
        server.stop()
    assert results == [200] * 4 and peak[0] == 1


def test_an_unexpected_error_is_a_500_that_names_only_its_type():
    from credproc.core.server import CredentialServer

    logged = []

    def fetch():
        raise KeyError("secret-material")

    server = CredentialServer(fetch, log=logged.append).start()
    try:
        req = urllib.request.Request(server.url, headers={"Authorization": server.token})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=TIMEOUT)
        body = e.value.read()
    finally:
        server.stop()
    assert e.value.code == 500 and json.loads(body) == {"Code": "InternalError", "Message": "unexpected error (KeyError)"}
    assert b"secret-material" not in body and len(logged) == 1 and "secret-material" not in logged[0]


# -- regressions found in review ------------------------------------------------------------------

def test_exec_gives_the_command_default_sigpipe(admin):
    """Python ignores SIGPIPE; an exec'd `yes | head` must still end quietly."""
    r = admin.run("exec", "--role", "admin", "--", "sh", "-c", "yes | head -1", timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout == b"y\n"
    assert b"Broken pipe" not in r.stderr


def test_a_default_profile_with_keys_is_warned_about_before_serving(serve, admin):
    with open(admin.aws_credentials, "a") as f:
        f.write("[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other\n")
    served = serve()
    served.proc.send_signal(signal.SIGTERM)
    _, err = served.proc.communicate(timeout=TIMEOUT)
    assert b"warning: the [default] profile in" in err and b"sets aws_access_key_id" in err
    assert b"AKIAOTHER" not in err
