"""The user's shared AWS files (~/.aws/config and ~/.aws/credentials): where they are, reading
them as botocore does, and changing them safely (a backup first, then an atomic replace that
refuses when the file changed meanwhile). Used by setup, doctor, `keys import` and serve."""

import os
import re
import time

from .errors import ConfigError, LocalFileError
from .store import atomic_write

_SECTION = re.compile(r"\[(.+)\]")


def config_path():
    """~/.aws/config (or $AWS_CONFIG_FILE), absolute."""
    return os.path.abspath(os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"))


def shared_files():
    """(credentials file, config file) as botocore finds them."""
    creds = os.path.expanduser(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials")
    config = os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    return creds, config


def sections(path):
    """{section: {key: value}} of a shared AWS file, parsed by botocore itself ({} when it is missing)."""
    from botocore.configloader import raw_config_parse
    from botocore.exceptions import ConfigParseError

    if not os.path.isfile(path):
        return {}
    try:
        return raw_config_parse(path, parse_subsections=False)
    except ConfigParseError as e:
        raise ConfigError(f"cannot parse {path}: {e}") from None


def profile_of_section(header):
    """The profile a section header names, as botocore reads it, or None (sso-session, services...)."""
    header = header.strip()
    if header == "default":
        return "default"
    parts = header.split(None, 1)
    if len(parts) == 2 and parts[0] == "profile":
        return parts[1].strip()
    return None


def section_headers(text):
    """Every section header of an AWS config file's text, as written between the brackets."""
    return {m.group(1).strip() for m in (_SECTION.match(line.strip()) for line in text.splitlines()) if m}


def parse_sections(text):
    """[(header, {key: value})] of every section of an AWS config file's text, in file order, with
    parse_profiles' rules (headers as written between the brackets: "profile x", "sso-session y")."""
    result = []
    current = None
    key = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[:1] in (" ", "\t") and current is not None and key is not None:
            current[key] += "\n" + stripped
            continue
        m = _SECTION.match(stripped)
        if m:
            current = {}
            result.append((m.group(1).strip(), current))
            key = None
            continue
        if current is None:
            continue
        k, sep, v = _split_option(stripped)
        if sep:
            key = k.strip().lower()
            current[key] = v.strip()
    return result


def parse_profiles(text):
    """{profile: {key: value}} of an AWS config file's text (configparser's rules, as botocore:
    '#'/';' comment lines, key = value or key: value, indented continuation lines, keys lowercased)."""
    profiles = {}
    current = None
    key = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[:1] in (" ", "\t") and current is not None and key is not None:
            current[key] += "\n" + stripped
            continue
        m = _SECTION.match(stripped)
        if m:
            name = profile_of_section(m.group(1))
            current = profiles.setdefault(name, {}) if name is not None else None
            key = None
            continue
        if current is None:
            key = None
            continue
        k, sep, v = _split_option(stripped)
        if sep:
            key = k.strip().lower()
            current[key] = v.strip()
    return profiles


def _split_option(line):
    i = min((p for p in (line.find("="), line.find(":")) if p >= 0), default=-1)
    if i < 0:
        return line, "", ""
    return line[:i], line[i], line[i + 1:]


def backup(path, data, mode=0o600):
    """A new `path.bak-STAMP` file (never an existing one) holding data; its name."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    base = f"{path}.bak-{stamp}"
    for n in range(100):
        candidate = base if n == 0 else f"{base}-{n}"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        except FileExistsError:
            continue
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return candidate
    raise LocalFileError(f"cannot pick a backup name for {path}")


def write_atomic(path, data, mode, expected_old):
    """Replace path with data atomically, unless it changed from expected_old (None: absent) meanwhile."""
    def unchanged():
        if read_file(path) != expected_old:
            raise LocalFileError(f"{path} changed while credproc was updating it; nothing was written",
                                 hint="run credproc setup again")

    atomic_write(path, data, mode, before_replace=unchanged)


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
