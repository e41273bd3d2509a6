"""Prompts through a real pseudo-terminal, with stdout and stderr captured as the SDKs do."""

import json

from tests.integration.test_iam_moto import iam_config
from tests.pty_helper import PtyProcess
from tests.sandbox import caller_arn, credproc_exe


def test_the_mfa_code_is_read_from_the_terminal_not_stdin(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url))  # MFA without mfa_command: prompt
    p = PtyProcess([credproc_exe(), "--role", "admin"], sandbox.env)
    p.expect("MFA code for arn:aws:iam::123456789012:mfa/alice: ")
    p.send("12345")  # too short: asked again
    p.expect("An MFA code is 6 digits.")
    p.send("123456")
    code, out, err = p.finish()
    assert code == 0, err
    doc = json.loads(out)  # stdout holds the document and nothing else
    assert err == b""
    # STS is checked (GetCallerIdentity with the keys) before the MFA prompt (issue 20, item 17)
    assert sts.actions == ["GetCallerIdentity", "GetSessionToken", "AssumeRole"]
    assert caller_arn(doc, sts.url) == "arn:aws:sts::111111111111:assumed-role/Admin/alice"


def test_login_prompts_once_and_later_calls_need_no_terminal(sandbox, sts):
    sandbox.write_static_keys()
    sandbox.write_config(iam_config(sts.url))
    p = PtyProcess([credproc_exe(), "login", "--role", "admin"], sandbox.env)
    p.expect("MFA code for")
    p.send("654321")
    code, out, err = p.finish()
    assert code == 0 and out.decode().startswith("role admin (account 111111111111): credentials valid until")
    # no terminal now: the MFA session and the role are cached, and another role reuses the session
    assert sandbox.run("--role", "admin").returncode == 0
    assert sandbox.run("--role", "readonly").returncode == 0
    assert sts.count("GetSessionToken") == 1
