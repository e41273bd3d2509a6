"""The bash completion script, run by a real bash against the real credproc."""

import os
import shutil
import subprocess
import sys

import pytest

CFG = b'[idp.corp]\ntype = "iam"\nprofile = "p"\n[role.admin]\nidp = "corp"\n[role.audit]\nsource_role = "admin"\narn = "arn:aws:iam::111111111111:role/A"\n'


def complete(tmp_path, words):
    exe_dir = os.path.dirname(shutil.which("credproc", path=os.path.dirname(sys.executable)))
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(CFG)
    script = ("source <(credproc completion bash)\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
              "_credproc_complete; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = {"PATH": exe_dir + os.pathsep + os.environ.get("PATH", ""), "HOME": str(tmp_path), "CREDPROC_CONFIG": str(cfg)}
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(r.stdout.split())


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_commands_roles_formats_and_options_complete(tmp_path):
    assert complete(tmp_path, ["credproc", "lo"]) == ["login", "logout"]
    assert complete(tmp_path, ["credproc", "--role", ""]) == ["admin", "audit"]
    assert complete(tmp_path, ["credproc", "export", "--format", "env"]) == ["env", "env-no-export"]
    assert "--force" in complete(tmp_path, ["credproc", "login", "--"])
    assert complete(tmp_path, ["credproc", "export", "--role", "au"]) == ["audit"]
