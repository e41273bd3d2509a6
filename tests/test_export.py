"""credproc export: every format for STS-shaped values (exactly the AWS CLI's shapes), and values no
STS sends, read back by the real shells: the very same bytes, and nothing run."""

import configparser
import json
import os
import shutil
import subprocess

import pytest

from credproc import app, cli
from credproc.core.credentials import Credentials

EXP = 1795264496  # 2026-11-21T12:34:56Z
KEY_ID = "ASIAEXAMPLEKEYID1234"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY=EXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEFAaCXVzLWVhc3QtMSJHMEUCIQD/7+xyz=="

STS_CREDS = Credentials(KEY_ID, SECRET, TOKEN, EXP, "111111111111")

# Values no STS sends but a custom identity provider might: each must come back byte for byte, and
# none may run anything (the $(...) and `...` would create MARKER).
TRICKY = [
    "it's \"quoted\"",
    "dollar $HOME and ${HOME} and $(touch MARKER) and `touch MARKER`",
    "  spaces  and\ttab ; & | < > * ? ~ # ( ) { } [ ] !x ^ %PATH% \\ back\\\\slash",
    "smart \u2019quotes\u2018 \u201cdouble\u201d and unicode \u00e9\u4e2d",
    "trailing backslash \\",
    "'",
    "",
]
NEWLINE = "line one\nline two"


class FakeTerminal:
    def close(self):
        pass


class FakeContext:
    terminal = FakeTerminal()


class FakeConfig:
    """The role's and [settings]' region, as export reads them (none unless a test sets one)."""

    def __init__(self, region=None):
        self.settings = {"region": region}

    def role(self, name):
        return {"name": name, "region": None}

    def region_for(self, role):
        return self.settings["region"]


@pytest.fixture
def export(monkeypatch, capsys):
    """export(creds, *args) -> (exit code, stdout, stderr) of `credproc export --role admin *args`,
    with `creds` standing for what the role's chain returns."""

    def run(creds, *args, region=None):
        monkeypatch.setattr(app, "load_config", lambda args: FakeConfig(region))
        monkeypatch.setattr(app, "context", lambda *a, **kw: FakeContext())
        monkeypatch.setattr(app, "credentials", lambda ctx, role: creds)
        code = cli.main(["export", "--role", "admin", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_process_is_the_credential_process_document_pretty_printed(export):
    code, out, err = export(STS_CREDS)
    assert code == 0 and err == ""
    assert json.loads(out) == STS_CREDS.to_process_dict()
    assert out == json.dumps(STS_CREDS.to_process_dict(), indent=4) + "\n"
    assert out.startswith('{\n    "Version": 1,\n    "AccessKeyId": "ASIA')


EXPECTED = {
    "env": [f"export AWS_ACCESS_KEY_ID={KEY_ID}", f"export AWS_SECRET_ACCESS_KEY={SECRET}",
            f"export AWS_SESSION_TOKEN={TOKEN}", "export AWS_CREDENTIAL_EXPIRATION=2026-11-21T12:34:56Z"],
    "env-no-export": [f"AWS_ACCESS_KEY_ID={KEY_ID}", f"AWS_SECRET_ACCESS_KEY={SECRET}",
                      f"AWS_SESSION_TOKEN={TOKEN}", "AWS_CREDENTIAL_EXPIRATION=2026-11-21T12:34:56Z"],
    "powershell": [f'$Env:AWS_ACCESS_KEY_ID="{KEY_ID}"', f'$Env:AWS_SECRET_ACCESS_KEY="{SECRET}"',
                   f'$Env:AWS_SESSION_TOKEN="{TOKEN}"', '$Env:AWS_CREDENTIAL_EXPIRATION="2026-11-21T12:34:56Z"'],
    "windows-cmd": [f"set AWS_ACCESS_KEY_ID={KEY_ID}", f"set AWS_SECRET_ACCESS_KEY={SECRET}",
                    f"set AWS_SESSION_TOKEN={TOKEN}", "set AWS_CREDENTIAL_EXPIRATION=2026-11-21T12:34:56Z"],
    "fish": [f'set -gx AWS_ACCESS_KEY_ID "{KEY_ID}"', f'set -gx AWS_SECRET_ACCESS_KEY "{SECRET}"',
             f'set -gx AWS_SESSION_TOKEN "{TOKEN}"', 'set -gx AWS_CREDENTIAL_EXPIRATION "2026-11-21T12:34:56Z"'],
}


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_shell_formats_have_the_aws_cli_shape_for_sts_values(export, fmt):
    code, out, err = export(STS_CREDS, "--format", fmt)
    assert code == 0 and err == ""
    assert out == "\n".join(EXPECTED[fmt]) + "\n"


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_without_token_or_expiry_only_the_keys_are_printed(export, fmt):
    code, out, _ = export(Credentials(KEY_ID, SECRET), "--format", fmt)
    assert code == 0
    assert out == "\n".join(EXPECTED[fmt][:2]) + "\n"


def test_credentials_block_defaults_to_the_role_name_and_botocore_reads_it(export, tmp_path):
    code, out, err = export(STS_CREDS, "--format", "credentials")
    assert code == 0 and err == ""
    assert out == (f"[admin]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
                   f"aws_session_token = {TOKEN}\n")
    code, out, _ = export(STS_CREDS, "--format", "credentials", "--profile-name", "admin-static")
    assert out.startswith("[admin-static]\n")
    from botocore.configloader import raw_config_parse

    path = tmp_path / "credentials"
    path.write_text(out)
    assert raw_config_parse(str(path))["admin-static"] == {
        "aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET, "aws_session_token": TOKEN}


def test_credentials_block_carries_quotes_and_dollars_verbatim(export, tmp_path):
    secret = "a'b\"c$d%e;f#g"
    code, out, _ = export(Credentials(KEY_ID, secret, TOKEN, EXP), "--format", "credentials")
    assert code == 0
    parser = configparser.RawConfigParser()  # what botocore uses: no interpolation, no inline comments
    parser.read_string(out)
    assert parser["admin"]["aws_secret_access_key"] == secret


@pytest.mark.parametrize("bad_value", [NEWLINE, " leading space", "nul\x00"])
def test_credentials_block_refuses_what_an_ini_line_cannot_hold(export, bad_value):
    code, out, err = export(Credentials(KEY_ID, bad_value, TOKEN, EXP), "--format", "credentials")
    assert code == 2 and out == ""
    assert err.startswith("credproc: the aws_secret_access_key value has") and err.count("\n") == 1
    assert bad_value.strip() not in err


@pytest.mark.parametrize("name", ["a]b", "a\nb", "", " x"])
def test_credentials_block_refuses_an_unusable_profile_name(export, name):
    code, out, err = export(STS_CREDS, "--format", "credentials", "--profile-name", name)
    assert code == 2 and out == ""


# --------------------------------------------------------------------------------------------
# tricky values, read back by the shells themselves


def _secret_as_read_by(shell_argv, fmt, export, tmp_path, value):
    creds = Credentials(KEY_ID, value, TOKEN, EXP)
    code, out, err = export(creds, "--format", fmt)
    assert code == 0 and err == ""
    script = tmp_path / f"creds.{fmt}"
    script.write_bytes(out.encode())
    marker = tmp_path / "MARKER"
    r = subprocess.run(shell_argv(str(script)), cwd=tmp_path, capture_output=True, timeout=30,
                       env={"PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path), "LANG": "C.UTF-8"})
    assert r.returncode == 0, r.stderr.decode()
    assert not marker.exists(), "the exported value ran a command"
    return r.stdout.decode()


def _bash(script):
    return ["bash", "--norc", "--noprofile", "-c", 'source "$1"; printf %s "$AWS_SECRET_ACCESS_KEY"', "bash", script]


def _fish(script):
    return ["fish", "--no-config", "-c", "source $argv[1]; printf %s \"$AWS_SECRET_ACCESS_KEY\"", script]


# PowerShell is not in Debian's archive and cannot be installed here: its quoting is checked against
# the exact expected text (test_tricky_values_are_quoted_in_each_shells_own_way), not run.
INSTALL = {"bash": "apt-get install bash", "fish": "apt-get install fish"}


def need(program):
    if not shutil.which(program):
        if os.environ.get("CI"):  # scripts/test installs fish on CI: a skip would hide a gap
            pytest.fail(f"{program} is not installed ({INSTALL[program]})")
        pytest.skip(f"{program} is not installed ({INSTALL[program]})")


@pytest.mark.parametrize("fmt", ["env", "env-no-export"])
@pytest.mark.parametrize("value", TRICKY + [NEWLINE], ids=range(len(TRICKY) + 1))
def test_bash_reads_back_exactly_the_value(export, tmp_path, fmt, value):
    need("bash")
    assert _secret_as_read_by(_bash, fmt, export, tmp_path, value) == value


@pytest.mark.parametrize("value", TRICKY + [NEWLINE], ids=range(len(TRICKY) + 1))
def test_fish_reads_back_exactly_the_value(export, tmp_path, value):
    need("fish")
    assert _secret_as_read_by(_fish, "fish", export, tmp_path, value) == value


def test_tricky_values_are_quoted_in_each_shells_own_way(export):
    creds = Credentials(KEY_ID, "a'b $c `d` \u2019e", TOKEN, EXP)
    lines = {fmt: export(creds, "--format", fmt)[1].splitlines()[1] for fmt in EXPECTED if fmt != "windows-cmd"}
    assert lines["env"] == "export AWS_SECRET_ACCESS_KEY='a'\"'\"'b $c `d` \u2019e'"
    assert lines["env-no-export"] == "AWS_SECRET_ACCESS_KEY='a'\"'\"'b $c `d` \u2019e'"
    assert lines["fish"] == "set -gx AWS_SECRET_ACCESS_KEY 'a\\'b $c `d` \u2019e'"
    assert lines["powershell"] == "$Env:AWS_SECRET_ACCESS_KEY='a''b $c `d` \u2019\u2019e'"
    creds = Credentials(KEY_ID, "a b&c|d<e>f^g(h)'i", TOKEN, EXP)
    assert export(creds, "--format", "windows-cmd")[1].splitlines()[1] == 'set "AWS_SECRET_ACCESS_KEY=a b&c|d<e>f^g(h)\'i"'


@pytest.mark.parametrize("value", [NEWLINE, "100%", "%PATH%", 'a"b', "a!b", "caf\u00e9", "tab\there"])
def test_windows_cmd_refuses_what_it_cannot_carry(export, value):
    code, out, err = export(Credentials(KEY_ID, value, TOKEN, EXP), "--format", "windows-cmd")
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and "AWS_SECRET_ACCESS_KEY contains" in lines[0] and "--format powershell" in lines[0]


@pytest.mark.parametrize("fmt", ["env", "fish", "powershell"])
def test_a_nul_is_refused_everywhere(export, fmt):
    code, out, err = export(Credentials(KEY_ID, "a\x00b", TOKEN, EXP), "--format", fmt)
    assert code == 2 and out == "" and "NUL" in err


def test_an_unknown_format_is_a_usage_error(export):
    with pytest.raises(SystemExit) as e:
        export(STS_CREDS, "--format", "yaml")
    assert e.value.code == 2


@pytest.mark.parametrize("fmt", ["env", "env-no-export", "fish", "powershell", "windows-cmd"])
def test_shell_formats_add_the_configured_region_as_exec_does_unless_no_region(export, fmt):
    code, out, _ = export(STS_CREDS, "--format", fmt, region="eu-west-1")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 6 and "AWS_REGION" in lines[4] and "AWS_DEFAULT_REGION" in lines[5]
    assert all("eu-west-1" in line for line in lines[4:])
    code, out, _ = export(STS_CREDS, "--format", fmt, "--no-region", region="eu-west-1")
    assert code == 0 and "REGION" not in out


def test_process_and_credentials_formats_never_carry_the_region(export):
    for fmt in ("process", "credentials"):
        code, out, _ = export(STS_CREDS, "--format", fmt, region="eu-west-1")
        assert code == 0 and "eu-west-1" not in out
