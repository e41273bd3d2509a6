"""The README's "Install for real use" path, for real: pipx (from PyPI, in the test venv) installs
credproc from a clean `git clone` of this repository into its own venv; that `credproc` then makes a
cold call (MFA session + AssumeRole against moto) and serves a cache hit.

This is the path that once gave `ImportError: cannot import name 'commands'` on every cold call."""

import json
import os
import subprocess
import sys

import pytest

from tests.integration.test_iam_moto import iam_config
from tests.sandbox import caller_arn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pipx_install_from_a_clean_clone_then_a_cold_call_and_a_cache_hit(sandbox, sts, mfa_counter, tmp_path):
    if subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"{ROOT} is not a git checkout: cannot make a clean clone")
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", ROOT, str(clone)], check=True, timeout=120)
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": sandbox.home, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
           "PIPX_MAN_DIR": str(tmp_path / "man"), "PIPX_DEFAULT_PYTHON": sys.executable}
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "SSL_CERT_FILE", "TMPDIR"):
        if var in os.environ:
            env[var] = os.environ[var]
    r = subprocess.run([sys.executable, "-m", "pipx", "install", str(clone)], env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    exe = str(tmp_path / "bin" / "credproc")
    assert os.path.exists(exe), r.stdout + r.stderr

    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url, mfa_command=mfa_counter[0]))
    run = dict(env=sandbox.env, capture_output=True, timeout=120, stdin=subprocess.DEVNULL, start_new_session=True)
    cold = subprocess.run([exe, "--role", "admin"], **run)
    assert cold.returncode == 0, cold.stderr.decode()
    doc = json.loads(cold.stdout)
    assert sts.actions == ["GetSessionToken", "AssumeRole"]
    assert caller_arn(doc, sts.url) == "arn:aws:sts::111111111111:assumed-role/Admin/alice"
    sts.clear()
    hit = subprocess.run([exe, "--role", "admin"], **run)
    assert hit.returncode == 0 and json.loads(hit.stdout) == doc
    assert sts.actions == []  # served from the cache
    version = subprocess.run([exe, "--version"], **run)
    assert version.stdout.decode().startswith("credproc ") and "not installed" not in version.stdout.decode()
