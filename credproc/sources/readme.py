"""The README's `[idp.NAME]` key tables, generated from each source's Key table.

Each table sits in README.md between `<!-- idp-keys:TYPE -->` and `<!-- /idp-keys:TYPE -->`;
tests/test_idp_contract.py fails when one is missing or differs from what is generated here.
After changing a source's keys, run:  python -m credproc.sources.readme --write
(Not imported by credproc at run time.)
"""

import os
import re
import sys

from . import all_sources

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def _cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(source):
    """The Markdown key table of one IdentitySource."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|",
            f'| `type` | `"{source.type_name}"` | required | |']
    for key in source.keys:
        rows.append(f"| `{key.name}` | {_cell(key.readme_type())} | {_cell(key.readme_default())} | {_cell(key.doc)} |")
    return "\n".join(rows)


def markers(type_name):
    return f"<!-- idp-keys:{type_name} -->", f"<!-- /idp-keys:{type_name} -->"


def block_pattern(type_name):
    start, end = markers(type_name)
    return re.compile(re.escape(start) + r"\n(.*?)\n?" + re.escape(end), re.S)


def current_table(text, type_name):
    """The table between the markers in README text, or None without the markers."""
    m = block_pattern(type_name).search(text)
    return m.group(1).strip() if m else None


def update(text):
    """README text with every source's table regenerated; (text, missing type names)."""
    missing = []
    for source in all_sources():
        pattern = block_pattern(source.type_name)
        if not pattern.search(text):
            missing.append(source.type_name)
            continue
        start, end = markers(source.type_name)
        text = pattern.sub(lambda m, s=source, a=start, b=end: f"{a}\n{render_table(s)}\n{b}", text, count=1)
    return text, missing


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(README, encoding="utf-8") as f:
        text = f.read()
    new, missing = update(text)
    for name in missing:
        start, end = markers(name)
        sys.stderr.write(f"README.md has no table for type {name!r}: put the lines {start} and {end} where it goes "
                         "(in its own section), then run this again\n")
    if "--write" in argv:
        if new != text:
            with open(README, "w", encoding="utf-8") as f:
                f.write(new)
            print("README.md: idp key tables updated")
    elif new != text:
        print("README.md's idp key tables differ from the sources' Key tables: run python -m credproc.sources.readme --write")
        return 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
