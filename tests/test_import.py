"""credproc import: the proposal for a realistic ~/.aws/config (tests/data/aws-config-realistic, every
kind of profile people have), and the installed command's diff, confirmation, backups and --undo."""

import os
import shutil

import pytest

from credproc import config
from credproc.commands import import_cmd
from credproc.core.awsfiles import parse_sections, sections
from tests.sandbox import Sandbox, credproc_exe

DATA = os.path.join(os.path.dirname(__file__), "data")
AWS_CONFIG = os.path.join(DATA, "aws-config-realistic")
AWS_CREDENTIALS = os.path.join(DATA, "aws-credentials-realistic")


def proposal():
    with open(AWS_CONFIG) as f:
        return import_cmd.propose(f.read(), sections(AWS_CREDENTIALS))


def test_the_realistic_config_converts_seven_of_thirteen_profiles_and_lists_every_other():
    p = proposal()
    assert p.converted == ["admin", "audit", "vendor", "prod-admin", "dev.readonly", "legacy-sso", "granted-dev"]
    listed = [name for name, _ in p.notes]
    assert sorted(listed) == sorted(set(listed))  # each profile once
    assert set(listed) == {"default", "corp-user", "admin", "audit", "vendor", "prod-admin", "dev.readonly",
                           "legacy-sso", "sso-login", "granted-dev", "vault-admin", "saml", "ci"}
    why = dict(p.notes)
    assert "aws-vault" in why["vault-admin"] and "keyring" in why["vault-admin"]
    assert "saml2aws" in why["saml"] and "SAML idp" in why["saml"]
    assert "Ec2InstanceMetadata" in why["ci"]
    assert "sso roles --idp my-org" in why["sso-login"]
    assert why["corp-user"].startswith("not converted: static keys")


def test_the_proposal_maps_each_aws_setting_to_its_credproc_key():
    p = proposal()
    assert p.settings == {"region": "eu-west-1"}  # [default] region
    assert p.idps["corp-user"] == {"type": "iam", "profile": "corp-user",
                                   "mfa_serial": "arn:aws:iam::123456789012:mfa/alice"}
    assert p.idps["corp-user-2"] == {"type": "iam", "profile": "corp-user"}  # vendor: no MFA, same keys
    assert p.roles["admin"] == {"idp": "corp-user", "arn": "arn:aws:iam::111111111111:role/Admin",
                                "duration": 3600, "session_name": "alice"}
    assert p.roles["audit"] == {"source_role": "admin", "arn": "arn:aws:iam::222222222222:role/Audit",
                                "duration": 3600}  # 7200 capped: a chained role gets at most 1 h
    assert p.roles["vendor"]["external_id"] == "7e1f-vendor"
    assert p.idps["my-org"] == {"type": "sso", "start_url": "https://my-org.awsapps.com/start",
                                "region": "eu-west-1", "scopes": ["sso:account:access"]}
    assert p.roles["prod-admin"] == {"idp": "my-org", "account_id": "444444444444", "role_name": "AdministratorAccess"}
    assert p.roles["granted-dev"]["idp"] == "my-org"  # the same portal as the sso-session: one sign-in
    assert p.idps["sso-other-org"]["start_url"] == "https://other-org.awsapps.com/start"
    assert p.keys_offer == [("corp-user", "corp-user"), ("corp-user-2", "corp-user")]
    cfg = config.parse("proposed.toml", import_cmd.toml_text(p).encode())  # valid, "dev.readonly" quoted
    assert set(cfg.roles) == set(p.roles)


def test_names_that_are_taken_or_invalid_become_valid_unique_ones():
    text = "[profile my role!]\nsso_start_url = https://x.awsapps.com/start\nsso_region = eu-west-1\n" \
           "sso_account_id = 111111111111\nsso_role_name = Admin\n"
    p = import_cmd.propose(text, {}, taken_idps={"sso-x"}, taken_roles={"my-role"})
    assert p.profiles == {"my role!": "my-role-2"} and "sso-x-2" in p.idps
    config.parse("c.toml", import_cmd.toml_text(p).encode())


def test_the_rewritten_profile_keeps_its_other_lines_and_comments():
    text = "# top\n[profile a]\n# mine\nrole_arn = arn:aws:iam::111111111111:role/A\nsource_profile = k\n" \
           "region = eu-west-1\ns3 =\n  addressing_style = path\n\n[profile k]\naws_access_key_id = X\n"
    out = import_cmd.rewrite_aws_config(text, {"a": "/bin/credproc --role a"})
    assert out == ("# top\n[profile a]\ncredential_process = /bin/credproc --role a\n# mine\nregion = eu-west-1\n"
                   "s3 =\n  addressing_style = path\n\n[profile k]\naws_access_key_id = X\n")


@pytest.fixture
def box(tmp_path):
    sb = Sandbox(tmp_path)
    shutil.copy(AWS_CONFIG, sb.aws_config)
    shutil.copy(AWS_CREDENTIALS, sb.aws_credentials)
    return sb


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_import_yes_writes_both_files_with_backups_and_undo_restores_them(box):
    before = read(box.aws_config)
    r = box.run("import", "--yes")
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "7 of 13 profiles" in out and "+[role.admin]" in out and "(new file)" in out
    assert "credproc keys import --idp corp-user --from-profile corp-user" in out
    cfg = config.load(box.config_path)
    assert set(cfg.roles) >= {"admin", "audit", "prod-admin"}
    assert oct(os.stat(box.config_path).st_mode & 0o777) == "0o600"
    profiles = parse_sections(read(box.aws_config).decode())
    by_name = {h: v for h, v in profiles}
    assert by_name["profile admin"] == {"credential_process": f"{credproc_exe()} --role admin --config {box.config_path}",
                                        "region": "eu-west-1"}
    assert by_name["profile ci"]["credential_source"] == "Ec2InstanceMetadata"  # not expressible: untouched
    backups = [n for n in os.listdir(os.path.dirname(box.aws_config)) if n.startswith("config.bak-")]
    assert len(backups) == 1 and read(os.path.join(os.path.dirname(box.aws_config), backups[0])) == before
    r = box.run("doctor")
    assert b"configuration" in r.stdout
    r = box.run("import", "--undo")
    assert r.returncode == 0, r.stderr.decode()
    assert read(box.aws_config) == before and not os.path.exists(box.config_path)
    assert box.run("import", "--undo").returncode == 2  # nothing left to undo


def test_import_without_a_terminal_asks_for_yes_and_writes_nothing(box):
    before = read(box.aws_config)
    r = box.run("import")
    assert r.returncode == 2 and b"--yes" in r.stderr and b"Traceback" not in r.stderr
    assert b"+[role.admin]" in r.stdout  # the diff was shown
    assert read(box.aws_config) == before and not os.path.exists(box.config_path)
    r = box.run("import", "--dry-run")
    assert r.returncode == 0 and b"dry run" in r.stdout and read(box.aws_config) == before


def test_undo_refuses_a_file_changed_since_the_import(box):
    assert box.run("import", "--yes").returncode == 0
    with open(box.aws_config, "a") as f:
        f.write("\n[profile later]\nregion = us-east-1\n")
    r = box.run("import", "--undo")
    assert r.returncode == 11 and b"changed since credproc import" in r.stderr
    assert b"[profile later]" in read(box.aws_config)


def test_import_appends_to_an_existing_config_and_avoids_its_names(box):
    box.write_config('[idp.my-org]\ntype = "iam"\nprofile = "corp-user"\n\n[role.admin]\nidp = "my-org"\n')
    old = read(box.config_path)
    r = box.run("import", "--yes")
    assert r.returncode == 0, r.stderr.decode()
    new = read(box.config_path)
    assert new.startswith(old)
    cfg = config.load(box.config_path)
    assert cfg.roles["admin-2"]["arn"] == "arn:aws:iam::111111111111:role/Admin"
    assert cfg.idps["my-org-2"]["type"] == "sso"
    assert b"--role admin-2" in read(box.aws_config)
