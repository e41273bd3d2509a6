"""Every registered identity source passes tests/idp_contract.py; nothing outside credproc/sources/
names a source type; the README's idp key tables are generated."""

import os
import re

import pytest

from credproc import sources as registry
from credproc.sources import readme

from .idp_contract import IdentitySourceContract

ROOT = os.path.join(os.path.dirname(__file__), "..")


class TestEverySource(IdentitySourceContract):
    @pytest.fixture(params=registry.names())
    def source(self, request):
        return registry.get(request.param)


def test_the_registry_lists_the_three_first_sources():
    assert {"iam", "cas", "oidc"} <= set(registry.names())


def test_no_code_outside_the_sources_package_names_a_source_type():
    """Branching on idp["type"] elsewhere is how a new source gets forgotten (a logout that leaves
    its token behind): ask the source's hooks instead."""
    pattern = re.compile("|".join(f'"{re.escape(n)}"|\'{re.escape(n)}\'' for n in registry.names()))
    package = os.path.join(ROOT, "credproc")
    offenders = []
    for folder, _, files in os.walk(package):
        if os.path.abspath(folder).startswith(os.path.abspath(os.path.join(package, "sources"))):
            continue
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        # a word that merely shares a type's name (the botocore service and the command
                        # of Identity Center are "sso" too) says so on its line
                        if pattern.search(line) and "# not an idp type" not in line:
                            offenders.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_readme_tool_reports_and_rewrites_a_table_out_of_step(tmp_path, monkeypatch, capsys):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert readme.update(text) == (text, [])
    start, end = readme.markers("cas")
    broken = text.replace(start + "\n", start + "\n| `stale` | string | none | a row nobody generated |\n", 1)
    assert broken != text
    copy = tmp_path / "README.md"
    copy.write_text(broken, encoding="utf-8")
    monkeypatch.setattr(readme, "README", str(copy))
    assert readme.main([]) == 1
    assert "python -m credproc.sources.readme --write" in capsys.readouterr().out
    assert readme.main(["--write"]) == 0
    assert copy.read_text(encoding="utf-8") == text
    copy.write_text(text.replace(start, "").replace(end, ""), encoding="utf-8")
    assert readme.main([]) == 1
    assert "README.md has no table for type 'cas'" in capsys.readouterr().err
