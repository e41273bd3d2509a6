import os
import sys

import pytest

from credproc.core.errors import AuthenticationFailed, ConfigError, LoginRequired
from credproc.core.prompt import Terminal, run_secret_command


def test_no_terminal_means_login_required_with_the_command(monkeypatch):
    monkeypatch.setenv("CREDPROC_NO_PROMPT", "1")
    t = Terminal("credproc login --role admin")
    assert not t.available()
    with pytest.raises(LoginRequired) as e:
        t.ask("MFA code: ", what="an MFA code")
    # first-hour.md item 15: at a real terminal too, the reason is the variable, not "no terminal"
    assert str(e.value) == ("an MFA code is needed and prompts are turned off by CREDPROC_NO_PROMPT; "
                            "unset CREDPROC_NO_PROMPT and run: credproc login --role admin")


def test_a_terminal_that_is_not_interactive_says_there_is_no_terminal(monkeypatch):
    monkeypatch.setenv("CREDPROC_NO_PROMPT", "1")
    t = Terminal("credproc login --role admin", interactive=False)
    with pytest.raises(LoginRequired) as e:
        t.ask("MFA code: ", what="an MFA code")
    assert str(e.value) == "an MFA code is needed and there is no terminal to ask on; run in a terminal: credproc login --role admin"


def test_secret_command_returns_its_first_line():
    assert run_secret_command(f"{sys.executable} -c \"print('123456'); print('x')\"", "code", "idp.x.mfa_command") == "123456"


def test_secret_command_failure_is_clear_and_does_not_echo_its_output():
    cmd = f"{sys.executable} -c \"import sys; print('hunter2'); sys.stderr.write('no YubiKey detected\\n'); sys.exit(3)\""
    with pytest.raises(AuthenticationFailed) as e:
        run_secret_command(cmd, "code", "idp.x.mfa_command")
    assert "exit code 3: no YubiKey detected" in str(e.value) and "hunter2" not in str(e.value)


def test_missing_secret_command_is_a_config_error():
    with pytest.raises(ConfigError, match="command not found: /nonexistent/ykman"):
        run_secret_command("/nonexistent/ykman oath", "code", "idp.x.mfa_command")


def test_secret_command_runs_with_the_recursion_guard_and_no_stdin():
    code = "import os, sys; print(os.environ.get('CREDPROC_ACTIVE', '-') + ':' + repr(sys.stdin.read()))"
    out = run_secret_command(f"{sys.executable} -c \"{code}\"", "code", "k")
    assert out == f"{os.getpid()}:''"
