"""A reader that stops reading gets no noise: when stdout is closed before credproc writes (the Go SDKs
kill a credential_process after 60 s and pass its stderr to the user; `credproc status | head`),
credproc exits quietly with the documented code 141, on the cache-hit path and on every other.

Before: a cache hit printed a traceback ending in BrokenPipeError; a cold call printed "unexpected
error (BrokenPipeError)" plus "Exception ignored ... BrokenPipeError" and exited 120."""

import os
import subprocess

import pytest

from credproc.core.errors import OutputClosed
from tests.integration.test_iam_moto import iam_config
from tests.sandbox import credproc_exe


def run_with_closed_stdout(sandbox, *args):
    """Run credproc with stdout a pipe whose read end is already closed; return (exit code, stderr)."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([credproc_exe(), *args], env=sandbox.env, stdin=subprocess.DEVNULL, stdout=w,
                           stderr=subprocess.PIPE, start_new_session=True, timeout=60)
    finally:
        os.close(w)
    return p.returncode, p.stderr.decode()


@pytest.fixture
def configured(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    return sandbox


def test_a_cache_hit_into_a_closed_stdout_exits_quietly(configured):
    configured.credentials("admin")  # fills the cache
    code, err = run_with_closed_stdout(configured, "--role", "admin")
    assert (code, err) == (OutputClosed.exit_code, "")


def test_a_cold_call_into_a_closed_stdout_exits_quietly_and_keeps_the_credentials(configured, sts):
    code, err = run_with_closed_stdout(configured, "--role", "admin")
    assert (code, err) == (OutputClosed.exit_code, "")
    sts.clear()
    configured.credentials("admin")  # what the closed call fetched was cached: no new call
    assert sts.actions == []


@pytest.mark.parametrize("args", [
    ("--help",), ("--version",), ("status",), ("status", "--json"), ("completion", "bash"),
    ("export", "--role", "admin"), ("login", "--role", "admin"), ("logout", "--all"), ("doctor",),
    ("setup", "--help"),
])
def test_every_command_into_a_closed_stdout_exits_quietly(configured, args):
    configured.credentials("admin")
    code, err = run_with_closed_stdout(configured, *args)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    assert code in (OutputClosed.exit_code, 12), (code, err)  # doctor may fail a check; it says so on stderr


def test_output_piped_into_head_ends_quietly(configured):
    configured.credentials("admin")
    p = subprocess.run(f"'{credproc_exe()}' --help | head -n 1", shell=True, env=configured.env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("usage: credproc")
    assert p.stderr == ""
