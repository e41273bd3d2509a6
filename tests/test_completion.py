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


OTHER = b'[idp.corp]\ntype = "iam"\nprofile = "p"\n[role.sandbox]\nidp = "corp"\n[role.prod]\nidp = "corp"\n'


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_completion_offers_the_roles_of_the_config_named_by_dash_dash_config(tmp_path):
    other = tmp_path / "work.toml"
    other.write_bytes(OTHER)
    assert complete(tmp_path, ["credproc", "--config", str(other), "--role", ""]) == ["prod", "sandbox"]
    assert complete(tmp_path, ["credproc", "export", "--config", str(other), "--role", "s"]) == ["sandbox"]
    assert complete(tmp_path, ["credproc", "--config", "=", str(other), "--role", ""]) == ["prod", "sandbox"]
    (tmp_path / "home-config.toml").write_bytes(OTHER)  # ~ is expanded as the shell would
    assert complete(tmp_path, ["credproc", "--config", "~/home-config.toml", "--role", ""]) == ["prod", "sandbox"]
    assert complete(tmp_path, ["credproc", "--role", ""]) == ["admin", "audit"]  # without it: $CREDPROC_CONFIG


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_completion_offers_roles_for_the_positional_role_argument(tmp_path):
    assert complete(tmp_path, ["credproc", "login", "a"]) == ["admin", "audit"]
    assert complete(tmp_path, ["credproc", "login", "admin", "a"]) == []  # one role only
    assert complete(tmp_path, ["credproc", "export", "--format", "env", "au"]) == ["audit"]
    assert complete(tmp_path, ["credproc", "status", "a"]) == []  # status takes no role


def fish_complete(tmp_path, line):
    if not shutil.which("fish"):
        if os.environ.get("CI"):  # scripts/test installs fish on CI: a skip would hide a gap
            pytest.fail("fish is not installed (apt-get install fish)")
        pytest.skip("needs fish (apt-get install fish)")
    exe_dir = os.path.dirname(shutil.which("credproc", path=os.path.dirname(sys.executable)))
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(CFG)
    script = tmp_path / "credproc.fish"
    env = {"PATH": exe_dir + os.pathsep + os.environ.get("PATH", ""), "HOME": str(tmp_path), "CREDPROC_CONFIG": str(cfg)}
    r = subprocess.run(["credproc", "completion", "fish"], capture_output=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    script.write_bytes(r.stdout)
    r = subprocess.run(["fish", "--no-config", "-c", 'source $argv[1]; complete -C "$argv[2]"', str(script), line],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return sorted(line.split("\t")[0] for line in r.stdout.splitlines())


def test_fish_completion_of_commands_options_formats_and_roles(tmp_path):
    other = tmp_path / "work.toml"
    other.write_bytes(OTHER)
    assert fish_complete(tmp_path, "credproc lo") == ["login", "logout"]
    assert fish_complete(tmp_path, "credproc --role ") == ["admin", "audit"]
    assert fish_complete(tmp_path, f"credproc --config {other} --role ") == ["prod", "sandbox"]
    assert fish_complete(tmp_path, f"credproc login --config {other} ") == ["prod", "sandbox"]
    assert fish_complete(tmp_path, "credproc login a") == ["admin", "audit"]
    assert fish_complete(tmp_path, "credproc login admin a") == []
    assert fish_complete(tmp_path, "credproc export --format env") == ["env", "env-no-export"]
    assert "--force" in fish_complete(tmp_path, "credproc login --")
    assert fish_complete(tmp_path, "credproc completion ") == ["bash", "fish", "zsh"]
