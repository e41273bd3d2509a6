"""credproc sso sync against the Identity Center emulator: generated, marked roles and profiles;
a dry run first; a later sync adds what was granted since and prunes what no longer is, leaving
hand-written roles and other profiles alone."""

from credproc import config
from tests.integration.test_sso import device_login, em, sso_config  # noqa: F401 (em: a fixture)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_sync_dry_run_then_writes_then_adds_and_prunes_only_generated_roles(sandbox, em):  # noqa: F811
    sandbox.write_config(sso_config(em))  # hand-written: prod-admin (111111111111 AdministratorAccess), sandbox-dev
    device_login(sandbox)
    before = read(sandbox.config_path)
    r = sandbox.run("sso", "sync", "--idp", "corp-sso", "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "dry run" in out and "+[role.production-readonly]" in out
    assert "+[role.production-administratoraccess]" not in out  # the hand-written prod-admin covers it
    assert read(sandbox.config_path) == before
    r = sandbox.run("sso", "sync", "--idp", "corp-sso")
    assert r.returncode == 2 and b"--yes" in r.stderr and read(sandbox.config_path) == before
    r = sandbox.run("sso", "sync", "--idp", "corp-sso", "--yes")
    assert r.returncode == 0, r.stderr
    cfg = config.load(sandbox.config_path)
    generated = sorted(set(cfg.roles) - {"prod-admin", "sandbox-dev"})
    assert generated and read(sandbox.config_path).startswith(before)  # hand-written part kept byte for byte
    assert all(cfg.roles[n]["idp"] == "corp-sso" for n in generated)
    aws = read(sandbox.aws_config).decode()
    assert all(f"[profile {n}]" in aws for n in generated)
    assert sandbox.run("--role", generated[0]).returncode == 0  # a generated role works
    # the portal changes: one new grant, one taken away
    em.accounts["333333333333"] = {"name": "Data Lake", "email": "d@example.com", "roles": ["Analyst"]}
    gone = generated[0]
    account = cfg.roles[gone]["account_id"]
    em.accounts[account]["roles"].remove(cfg.roles[gone]["role_name"])
    with open(sandbox.aws_config, "a") as f:
        f.write("\n[profile mine]\nregion = us-east-1\n")
    r = sandbox.run("sso", "sync", "--idp", "corp-sso", "--yes")
    assert r.returncode == 0, r.stderr
    cfg = config.load(sandbox.config_path)
    assert "data-lake-analyst" in cfg.roles and gone not in cfg.roles
    assert {"prod-admin", "sandbox-dev"} <= set(cfg.roles)
    aws = read(sandbox.aws_config).decode()
    assert "[profile data-lake-analyst]" in aws and f"[profile {gone}]" not in aws and "[profile mine]" in aws
    r = sandbox.run("sso", "sync", "--idp", "corp-sso", "--yes")
    assert r.returncode == 0 and b"nothing to change" in r.stdout


def test_sync_names_are_valid_whatever_the_portal_calls_an_account(sandbox, em):  # noqa: F811
    em.accounts["333333333333"] = {"name": "Ünïcode & spaces [x]", "email": "u@example.com", "roles": ["Dev"]}
    sandbox.write_config(sso_config(em))
    device_login(sandbox)
    r = sandbox.run("sso", "sync", "--idp", "corp-sso", "--yes", "--template", "{account_id}.{role_name}")
    assert r.returncode == 0, r.stderr
    assert "333333333333.dev" in config.load(sandbox.config_path).roles
    r = sandbox.run("sso", "sync", "--idp", "corp-sso", "--template", "{nope}")
    assert r.returncode == 2 and b"--template" in r.stderr


def test_sso_commands_name_the_type_of_a_non_sso_idp(sandbox):
    sandbox.write_config('[idp.corp]\ntype = "iam"\nprofile = "corp-user"\n')
    r = sandbox.run("sso", "roles", "--idp", "corp")
    assert r.returncode == 2 and b"idp corp is of type iam" in r.stderr
