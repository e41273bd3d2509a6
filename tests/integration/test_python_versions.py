"""requires-python is honest: on every minor version pyproject.toml claims, the wheel installs and a
smoke run passes in a venv of that interpreter: the unit tests, plus one cold chain and one cache hit
against moto through that venv's installed console script.

The interpreters come from pyenv (these machines have 3.9 to 3.13) or PATH. A missing one skips on a
developer's machine and FAILS on CI (CI=true): a version we claim and never ran is a gap, not a pass.
Venvs are kept in .venv-pythons/ between local runs (only the wheel is reinstalled)."""

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE_MOTO = [
    "tests/integration/test_iam_moto.py::test_role_credentials_are_the_assumed_role_and_the_document_is_well_formed",
    "tests/integration/test_iam_moto.py::test_a_cache_hit_makes_no_call",
]


def claimed_versions():
    """Every minor version from requires-python's lower bound to the newest CPython we know of."""
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        m = re.search(r'requires-python\s*=\s*">=3\.(\d+)"', f.read())
    assert m, "requires-python must be a plain lower bound, >=3.N"
    return [f"3.{minor}" for minor in range(int(m.group(1)), 14)]


def find_interpreter(version):
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")),
                        key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("versions/")[1].split("/")[0])])
    for exe in reversed(candidates):
        if os.access(exe, os.X_OK):
            return exe
    return shutil.which(f"python{version}")


def run(argv, timeout, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        # a nested pytest: its FAILED/ERROR lines first, so the failing test is not buried in the output
        failures = [line for line in r.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
        head = ("failing inside: " + "; ".join(failures) + "\n") if failures else ""
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}\n{head}{r.stdout[-6000:]}\n{r.stderr[-6000:]}")
    return r


@pytest.fixture
def progress(request):
    """say(text): a line on the terminal now, even under -q and output capture (a smoke run takes minutes)."""
    reporter = request.config.pluginmanager.getplugin("terminalreporter")

    def say(text):
        if reporter is not None:
            reporter.write_line(f"  [smoke] {text}")
    return say


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    path = os.environ.get("CREDPROC_WHEEL")
    if path and os.path.exists(path):
        return path
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), ROOT], 600)
    (built,) = glob.glob(os.path.join(str(out), "credproc-*.whl"))
    return built


@pytest.mark.parametrize("version", claimed_versions())
def test_smoke_run_on_every_claimed_python(version, wheel, progress):
    import time

    started = time.monotonic()
    exe = find_interpreter(version)
    if not exe:
        reason = f"Python {version} is claimed by requires-python but not installed here (pyenv install {version})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    venv = os.path.join(ROOT, ".venv-pythons", version)
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        run([exe, "-m", "venv", venv], 300)
    progress(f"Python {version}: installing the wheel and the test dependencies into {venv}")
    pip = [py, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run(pip + ["install", f"{wheel}[test]"], 1200)
    run(pip + ["install", "--force-reinstall", "--no-deps", wheel], 300)  # this build, even at the same version
    r = run([py, "-c", "import sys, credproc; print(sys.version_info[:2], credproc.__file__)"], 60, cwd="/")
    assert f"({version.replace('.', ', ')})" in r.stdout and "site-packages" in r.stdout, r.stdout
    # unit tests, then the cold chain and the cache hit through this venv's console script
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    progress(f"Python {version}: the unit tests (about 4 min on 2 busy cores)")
    run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not integration", "tests"], 1800, cwd=ROOT, env=env)
    progress(f"Python {version}: the cold chain and the cache hit against moto")
    run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SMOKE_MOTO], 600, cwd=ROOT, env=env)
    progress(f"Python {version}: passed ({time.monotonic() - started:.0f} s)")
