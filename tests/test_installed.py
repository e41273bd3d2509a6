"""What users install is what we test: the sdist and the wheel are complete, and this test run uses
the installed wheel (site-packages and its console script), not the checkout.

A hand-kept package list once left credproc.commands and credproc.providers out of the wheel while
every test passed against an editable install."""

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from importlib import metadata

import pytest

import credproc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_modules():
    """Every module under credproc/ in the checkout, as 'credproc/x/y.py'."""
    found = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "credproc")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith(".py"):
                found.append(os.path.relpath(os.path.join(dirpath, name), ROOT).replace(os.sep, "/"))
    return sorted(found)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A fresh sdist and wheel built from the checkout with the PyPA front end (the wheel from the sdist,
    as pip does for an sdist from PyPI)."""
    out = tmp_path_factory.mktemp("dist")
    # build from a copy without build/ and *.egg-info leftovers, which could mask a missing module
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv*", "node_modules", "build", "dist",
                                                             "*.egg-info", "__pycache__", ".pytest_cache"))
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (sdist,) = out.glob("credproc-*.tar.gz")
    (wheel,) = out.glob("credproc-*-py3-none-any.whl")
    return sdist, wheel


def test_the_package_list_is_discovered_not_hand_kept():
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        text = f.read()
    assert "[tool.setuptools.packages.find]" in text
    assert "packages = [" not in text


def test_the_wheel_holds_every_module_the_license_and_the_readme(artifacts):
    _, wheel = artifacts
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        missing = [m for m in source_modules() if m not in names]
        assert not missing, f"modules missing from the wheel: {missing}"
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_string(z.read(meta_name).decode("utf-8"))
        assert any(n.endswith("LICENSE") and ".dist-info/" in n for n in names), sorted(names)
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert meta.get_payload().strip() == readme.strip()  # the README is the long description
    assert meta["License-Expression"] == "Apache-2.0"


def test_the_sdist_holds_every_module_the_license_and_the_readme(artifacts):
    sdist, _ = artifacts
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    missing = [m for m in source_modules() if m not in names]
    assert not missing, f"modules missing from the sdist: {missing}"
    for f in ("LICENSE", "README.md", "pyproject.toml"):
        assert f in names


def test_credproc_is_imported_from_site_packages_not_the_checkout():
    where = os.path.realpath(os.path.dirname(credproc.__file__))
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    assert where == os.path.join(site, "credproc"), f"credproc imported from {where}, not the installed wheel"
    # not an editable install (pip records those in direct_url.json as dir_info.editable)
    direct = metadata.distribution("credproc").read_text("direct_url.json") or "{}"
    assert not json.loads(direct).get("dir_info", {}).get("editable"), direct


def test_the_console_script_runs_the_installed_package():
    exe = shutil.which("credproc", path=os.path.dirname(sys.executable))
    assert exe, "no credproc console script beside this interpreter"
    with open(exe) as f:
        assert os.path.dirname(sys.executable) in f.readline()  # its shebang is this venv's interpreter
    # from / (no checkout on the path): the full CLI loads every command module
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, cwd="/", timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-c", "import credproc.commands, credproc.sources, credproc.core, credproc; "
                        "print(credproc.__file__)"], capture_output=True, text=True, cwd="/", timeout=60)
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(r.stdout.strip()).startswith(os.path.realpath(sysconfig.get_paths()["purelib"]))


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_comes_from_the_installed_metadata(flag):
    exe = shutil.which("credproc", path=os.path.dirname(sys.executable))
    r = subprocess.run([exe, flag], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"credproc {metadata.version('credproc')}"
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "-V, --version" in help_text
