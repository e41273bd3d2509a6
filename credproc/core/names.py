"""Names credproc generates from text it does not control (AWS profile names, Identity Center
account and permission set names): valid `[idp.NAME]` / `[role.NAME]` names (config.NAME_RE:
a letter or digit, then letters, digits, '_', '.', '-', at most 64) and how to write them as TOML
keys. One small module so that `credproc import`, `credproc sso roles` and `sso sync` agree."""

import re

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # config.NAME_RE (wiring; not importable here)
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+\Z")


def config_name(text, taken=(), fallback="role"):
    """`text` made a valid config name, unique among `taken` (a suffix -2, -3, ... when needed)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-_.")
    name = re.sub(r"-{2,}", "-", name)[:64].rstrip("-_.") or fallback
    if not name[0].isalnum():
        name = f"{fallback}-{name}"[:64]
    base, n = name, 1
    taken = set(taken)
    while name in taken:
        n += 1
        suffix = f"-{n}"
        name = base[:64 - len(suffix)] + suffix
    assert _NAME_RE.match(name), name
    return name


def toml_key(name):
    """A config name as a TOML key in a table header: bare when it can be ('.' would split it)."""
    return name if _BARE_KEY.match(name) else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
