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
