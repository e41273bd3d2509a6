"""Issue 13, items 16 to 21 ("Behaviour"): each test is named after what was wrong, runs the real
credproc executable in a Sandbox, and failed before its fix."""

import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.integration.test_iam_moto import iam_config
from tests.pty_helper import PtyProcess
from tests.sandbox import credproc_exe

ADMIN_ARN = "arn:aws:sts::111111111111:assumed-role/Admin/alice"


def one_line(r):
    err = r.stderr.decode()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


# -- item 16: messages ------------------------------------------------------------------------------

def test_ctrl_d_at_the_mfa_prompt_says_no_answer_to_that_prompt_in_plain_english(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url))  # MFA without mfa_command: a prompt
    p = PtyProcess([credproc_exe(), "--role", "admin"], sandbox.env)
    p.expect("MFA code for arn:aws:iam::123456789012:mfa/alice: ")
    os.write(p.master, b"\x04")  # Ctrl-D at the start of a line: end of input
    code, out, err = p.finish()
    assert code == 5 and out == b""
    assert err.decode() == ("credproc: no answer to the prompt for an MFA code for arn:aws:iam::123456789012:mfa/alice "
                            "(end of input)\n")


def test_an_mfa_command_that_runs_credproc_again_is_recursion_exit_10_in_a_whole_sentence(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=f"{credproc_exe()} --role readonly"))
    r = sandbox.run("--role", "admin")
    assert r.returncode == 10 and r.stdout == b""
    err = one_line(r)
    assert err == (f"credproc: idp.corp.mfa_command ({credproc_exe()}) runs credproc again, which refuses to recurse; "
                   "make idp.corp.mfa_command independent of credproc (e.g. not through an AWS profile that runs "
                   "credproc)")


def test_a_missing_file_given_with_dash_dash_config_is_not_told_to_pass_dash_dash_config(sandbox):
    missing = os.path.join(sandbox.root, "nope.toml")
    r = sandbox.run("--config", missing, "--role", "admin")
    assert r.returncode == 3
    assert one_line(r) == f"credproc: no configuration file at {missing} (named by --config); check the path in --config"
    r = sandbox.run("--role", "admin", env={"CREDPROC_CONFIG": missing})
    assert one_line(r) == (f"credproc: no configuration file at {missing} (named by $CREDPROC_CONFIG); "
                           "check the path in $CREDPROC_CONFIG")


def test_an_unreachable_sts_says_connection_refused_not_endpoint_connection_error(sandbox, dead_url):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(dead_url, mfa=False))
    r = sandbox.run("--role", "admin")
    assert r.returncode == 7 and r.stdout == b""
    err = one_line(r)
    assert f"cannot reach STS at {dead_url}: Connection refused;" in err
    assert "EndpointConnectionError" not in err


def test_debug_prints_each_cache_miss_line_once(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    assert sandbox.run("--role", "admin").returncode == 0  # makes the cache key
    for name in os.listdir(sandbox.cache_dir):
        os.unlink(os.path.join(sandbox.cache_dir, name))
    r = sandbox.run("--role", "admin", "--debug")
    assert r.returncode == 0, r.stderr
    misses = [line for line in r.stderr.decode().splitlines() if "cache miss" in line]
    assert misses == ["credproc: debug: cache miss for role:admin: no entry",
                      "credproc: debug: cache miss for idp:corp: no entry"], r.stderr.decode()


# -- item 17: usage errors are exit 2 ---------------------------------------------------------------

def test_console_with_a_non_https_destination_is_a_usage_error_exit_2(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url))
    r = sandbox.run("console", "--role", "admin", "--destination", "ftp://x")
    assert r.returncode == 2 and r.stdout == b""
    assert one_line(r) == "credproc: --destination: 'ftp://x' must be an https:// URL"
    assert sts.actions == []


def test_setup_with_a_profile_name_holding_a_space_is_a_usage_error_exit_2(sandbox, sts):
    sandbox.write_config(iam_config(sts.url))
    r = sandbox.run("setup", "--role", "admin", "--profile-name", "my audit")
    assert r.returncode == 2 and r.stdout == b""
    assert "'my audit' is not a usable AWS profile name" in one_line(r)
    assert not os.path.exists(sandbox.aws_config)


# -- item 19: setup with a local sts_endpoint_url ---------------------------------------------------

def test_setup_try_it_command_works_when_sts_endpoint_url_is_local(sandbox, sts, mfa_counter):
    """The profile carries credproc's STS endpoint for the consumer too, so the printed command
    reaches the same (local) STS instead of failing against AWS."""
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    r = sandbox.run("setup", "--role", "admin")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert f"added [profile admin] and [services credproc-admin] (STS at {sts.url})" in out
    (try_it,) = [line[len("try it: "):] for line in out.splitlines() if line.startswith("try it: ")]
    assert try_it == "aws sts get-caller-identity --profile admin"
    env = {**sandbox.env, "PATH": os.path.dirname(sys.executable) + os.pathsep + sandbox.env["PATH"]}
    p = subprocess.run(shlex.split(try_it), env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["Arn"] == ADMIN_ARN
    assert sts.count("GetCallerIdentity") == 1  # the consumer's own call went to the local STS


# -- item 21: the role as a positional argument, and "did you mean" --------------------------------

def test_login_admin_and_role_before_the_command_are_accepted_as_aws_vault_users_type_them(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    r = sandbox.run("login", "admin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("role admin (account 111111111111): credentials valid until")
    r = sandbox.run("--role", "readonly", "login")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("role readonly (account 111111111111)")
    r = sandbox.run("export", "admin", "--format", "env")
    assert r.returncode == 0 and b"export AWS_ACCESS_KEY_ID=" in r.stdout, r.stderr
    r = sandbox.run("exec", "admin", "--", sys.executable, "-c", "import os; print(os.environ['AWS_ACCESS_KEY_ID'])")
    assert r.returncode == 0 and r.stdout.startswith(b"ASIA"), r.stderr
    r = sandbox.run("exec", "--role", "admin", "--", sys.executable, "-c", "print('argv kept')")
    assert r.returncode == 0 and r.stdout == b"argv kept\n", r.stderr
    r = sandbox.run("exec", "admin", "--server", "--", sys.executable, "-c",
                    "import os; print(os.environ['AWS_CONTAINER_CREDENTIALS_FULL_URI'][:17])")
    assert r.returncode == 0 and r.stdout == b"http://127.0.0.1:\n", r.stderr
    r = sandbox.run("logout", "admin")
    assert r.returncode == 0, r.stderr


def test_a_command_without_a_role_or_with_two_is_a_usage_error_that_shows_both_forms(sandbox, sts):
    sandbox.write_config(iam_config(sts.url))
    r = sandbox.run("login")
    assert r.returncode == 2
    assert "credproc login: error: name the role: credproc login ROLE (or --role ROLE)" in r.stderr.decode()
    assert "the following arguments are required: --role" not in r.stderr.decode()
    r = sandbox.run("login", "admin", "--role", "readonly")
    assert r.returncode == 2 and "two different roles given" in r.stderr.decode()
    r = sandbox.run("logout")
    assert r.returncode == 2 and "or give --all" in r.stderr.decode()
    r = sandbox.run("logout", "admin", "--all")
    assert r.returncode == 2 and "give either a role or --all, not both" in r.stderr.decode()


def test_a_mistyped_role_name_suggests_the_closest_one(sandbox, sts):
    sandbox.write_config(iam_config(sts.url))
    r = sandbox.run("--role", "admn")
    assert r.returncode == 3 and r.stdout == b""
    assert one_line(r).endswith("no role named 'admn' (configured roles: admin, audit, readonly); did you mean admin?")
    r = sandbox.run("login", "raedonly")
    assert one_line(r).endswith("did you mean readonly?")
    r = sandbox.run("login", "zzz")
    assert one_line(r).endswith("add a [role.zzz] table")


# -- item 15: doctor --------------------------------------------------------------------------------

def run_with_read_only(sandbox, directory, *args):
    """`credproc ARGS` while `directory` cannot be written: mode 0500 for a normal user; for root
    (CI), whom modes do not stop, a read-only bind mount in a private mount namespace."""
    if os.getuid() != 0:
        os.chmod(directory, 0o500)
        try:
            return sandbox.run(*args)
        finally:
            os.chmod(directory, 0o700)
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 99; shift; exec "$@"'
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", directory, credproc_exe(), *args],
                       env=sandbox.env, capture_output=True, stdin=subprocess.DEVNULL, start_new_session=True,
                       timeout=60)
    if r.returncode == 99 or b"unshare:" in r.stderr:
        why = f"cannot make {directory} read-only here (unshare -m, mount): {r.stderr.decode().strip()}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return r


def doctor_lines(r):
    return r.stdout.decode().splitlines()


def test_doctor_reports_a_read_only_cache_or_data_directory_instead_of_ok(sandbox, sts, mfa_counter):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    assert sandbox.run("--role", "admin").returncode == 0  # the key, the cache dir and entries exist
    r = run_with_read_only(sandbox, sandbox.cache_dir, "doctor")
    assert r.returncode == 12, r.stdout.decode() + r.stderr.decode()
    (line,) = [x for x in doctor_lines(r) if x.startswith(f"✗ cache directory {sandbox.cache_dir}")]
    assert "credproc cannot write in it:" in line
    assert [x for x in doctor_lines(r) if x.startswith("✓ data directory")]
    # before the first login: the data directory does not exist and its parent cannot take it
    parent = os.path.join(sandbox.root, "ro-data")
    os.makedirs(parent)
    sandbox.env["XDG_DATA_HOME"] = os.path.join(parent, "xdg")
    r = run_with_read_only(sandbox, parent, "doctor")
    assert r.returncode == 12
    (line,) = [x for x in doctor_lines(r) if x.startswith("✗ data directory")]
    assert f"credproc cannot write in {parent}, where it would be created," in line
    # and with everything writable, both are fine
    lines = doctor_lines(sandbox.run("doctor"))
    assert [x for x in lines if x.startswith(f"✓ cache directory {sandbox.cache_dir}")]
    assert [x for x in lines if x.startswith("✓ data directory")]


def test_doctor_fails_on_aws_keys_in_the_environment_without_showing_them(sandbox, sts):
    sandbox.write_config(iam_config(sts.url))
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYENVIRONMENT"
    r = sandbox.run("doctor", env={"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENTKEY01", "AWS_SECRET_ACCESS_KEY": secret})
    assert r.returncode == 12
    (line,) = [x for x in doctor_lines(r) if x.startswith("✗ AWS keys in the environment")]
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set" in line
    assert line.endswith("unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY")
    assert secret not in r.stdout.decode() + r.stderr.decode() and "AKIAENVIRONMENTKEY01" not in r.stdout.decode()
    assert "✓ no AWS keys in the environment" in sandbox.run("doctor").stdout.decode()


def test_doctor_summary_counts_add_up_to_the_lines_it_printed(sandbox, sts, dead_url):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa=False))
    sandbox.add_aws_profile("admin", "admin", sts.url)
    r = sandbox.run("doctor")
    assert r.returncode == 0, r.stdout.decode()
    *checks, summary = doctor_lines(r)
    warned, passed = sum(c.startswith("! ") for c in checks), sum(c.startswith("✓ ") for c in checks)
    # the warnings: no terminal, and the IAM keys in plain text (issue 10)
    assert warned == 2 and summary == f"{len(checks)} checks: 2 warnings, {passed} passed"
    assert passed + warned == len(checks)
    sandbox.write_config(iam_config(dead_url, mfa=False))
    r = sandbox.run("doctor")
    assert r.returncode == 12
    checks = doctor_lines(r)
    failed = sum(c.startswith("✗ ") for c in checks)
    passed = sum(c.startswith("✓ ") for c in checks)
    assert r.stderr.decode() == f"credproc: {len(checks)} checks: {failed} failed, 2 warnings, {passed} passed\n"
    assert failed + 2 + passed == len(checks)


def test_doctor_with_a_bad_config_file_names_its_path_once(sandbox):
    bad = os.path.join(sandbox.root, "bad.toml")
    with open(bad, "w") as f:
        f.write("[role.admin\n")
    r = sandbox.run("doctor", "--config", bad)
    assert r.returncode == 12
    (line,) = [x for x in doctor_lines(r) if x.startswith("✗ configuration")]
    assert line.count(bad) == 1 and line.startswith(f"✗ configuration {bad}: invalid TOML"), line
    missing = os.path.join(sandbox.root, "missing.toml")
    r = sandbox.run("doctor", "--config", missing)
    (line,) = [x for x in doctor_lines(r) if x.startswith("✗ configuration")]
    assert line.count(missing) == 1, line
