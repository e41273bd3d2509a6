import subprocess
import sys

import pytest

from credproc import __version__, commands
from credproc.cli import build_parser, main


def test_python_dash_m_and_version():
    r = subprocess.run([sys.executable, "-m", "credproc", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"credproc {__version__}"


@pytest.mark.parametrize("name", commands.NAMES)
def test_every_command_has_help_with_an_example(name, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    examples = commands.load(name).EXAMPLES
    assert f"credproc {name} " in examples  # a real, copy-pasteable example of this command
    assert "examples:\n" + examples in out


def test_no_role_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "pass --role NAME" in capsys.readouterr().err


def test_main_help_lists_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out and "login required" in out


def test_the_readme_documents_every_exit_code():
    import os

    from credproc.core.errors import EXIT_CODES

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    for code, text in EXIT_CODES:
        assert f"| {code} | {text} |" in readme


def test_the_fast_path_exit_code_for_a_closed_stdout_is_the_documented_one():
    from credproc import _entry
    from credproc.core.errors import OutputClosed

    assert _entry.OUTPUT_CLOSED == OutputClosed.exit_code


def test_a_trailing_comment_on_the_credential_process_line_is_named(capsys):
    """botocore shlex-splits `credproc --role admin # mine` into ['--role', 'admin', '#', 'mine']."""
    from credproc import cli

    assert cli.main(["--role", "admin", "#", "mine"]) == 2
    err = capsys.readouterr().err
    assert "'# mine' looks like a trailing comment on the credential_process line" in err
    assert cli._comment_words(["exec", "admin", "--", "sh", "-c", "# not ours"]) == []
