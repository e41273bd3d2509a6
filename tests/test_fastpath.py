import io
import os
import subprocess
import sys

import pytest

from credproc import fastpath
from credproc.core import cache, paths
from credproc.core.store import EncryptedFileCache


@pytest.fixture
def home(tmp_path, monkeypatch):
    for var, sub in (("XDG_CACHE_HOME", "c"), ("XDG_DATA_HOME", "d"), ("XDG_CONFIG_HOME", "g")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
    cfg = tmp_path / "credproc.toml"
    cfg.write_bytes(b"[role.admin]\n")
    monkeypatch.setenv("CREDPROC_CONFIG", str(cfg))
    return tmp_path


def put(refresh_in=600, config_bytes=b"[role.admin]\n", identity="role:admin", body=b'{"Version":1}\n'):
    store = EncryptedFileCache(paths.cache_dir(), paths.key_file(), scope=paths.config_file())
    now = cache.now()
    store.put(identity, cache.Entry(now + 3600, now + refresh_in, cache.digest(config_bytes), "fp", body))


class Stdout:
    def __init__(self):
        self.buffer = io.BytesIO()


@pytest.mark.parametrize("argv, expected", [
    (["--role", "admin"], ("admin", None)),
    (["--role=admin"], ("admin", None)),
    (["--config", "/c.toml", "--role", "admin"], ("admin", "/c.toml")),
    (["--role", "admin", "--debug"], None),
    (["login", "--role", "admin"], None),
    (["--role"], None),
    (["--role", "a", "--role", "b"], None),
    ([], None),
])
def test_only_the_plain_invocation_takes_the_fast_path(argv, expected):
    assert fastpath._parse(argv) == expected


def test_serves_a_valid_entry_verbatim(home, monkeypatch):
    put()
    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    assert fastpath.try_serve(["--role", "admin"]) is True
    assert out.buffer.getvalue() == b'{"Version":1}\n'


@pytest.mark.parametrize("case", ["refresh_due", "config_changed", "other_role", "no_key", "debug"])
def test_falls_through_whenever_anything_is_off(home, monkeypatch, case):
    put(refresh_in=-1 if case == "refresh_due" else 600)
    if case == "config_changed":
        (home / "credproc.toml").write_bytes(b"[role.admin]\n# edited\n")
    if case == "no_key":
        os.unlink(paths.key_file())
    if case == "debug":
        monkeypatch.setenv("CREDPROC_DEBUG", "1")
    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    role = "other" if case == "other_role" else "admin"
    assert fastpath.try_serve(["--role", role]) is False
    assert out.buffer.getvalue() == b""


def test_a_cache_hit_imports_nothing_heavy(home):
    """The whole point of the fast path: measured in a fresh interpreter."""
    put()
    code = ("import sys; from credproc._entry import main; rc = main(['--role', 'admin']); "
            "heavy = [m for m in ('json', 'argparse', 'tomllib', 'tomli', 'platformdirs', 'boto3', 'botocore', "
            "'urllib3', 'requests', 'http.client', 'cryptography.hazmat.primitives', 'credproc.cli', 'credproc.config') "
            "if m in sys.modules]; heavy += [m for m in sys.modules if m.startswith(('credproc.sources', "
            "'credproc.commands', 'credproc.app', 'credproc.chain'))]; sys.stderr.write(repr((rc, heavy)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=os.environ.copy())
    assert r.stdout == b'{"Version":1}\n'
    assert r.stderr.decode() == "(0, [])"
