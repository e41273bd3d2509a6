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


MAX_FILE_BYTES = 1024 * 1024


def read_bytes(path, follow=True):
    """A shared AWS file's bytes, or None when there is none. Read as credproc reads its own files:
    without waiting (a FIFO or device is refused at once), only a regular file of at most 1 MiB,
    and, with follow=False, not through a symbolic link. Other problems are OSError."""
    from .cache import read_file as read_regular

    try:
        return read_regular(path, MAX_FILE_BYTES, follow=follow)
    except FileNotFoundError:
        return None


def sections(path):
    """{section: {key: value}} of a shared AWS file, parsed as botocore parses it ({} when it is missing)."""
    try:
        data = read_bytes(path)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    if data is None:
        return {}
    parsed = parse_text(data)
    if parsed is None:
        raise ConfigError(f"cannot parse {path} (as an INI file, the way the AWS CLI reads it)")
    return parsed


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
    '#'/';' comment lines, key = value or key: value, indented continuation lines, keys lowercased);
    a profile whose section appears twice has the keys of both, the later winning."""
    profiles = {}
    for header, values in parse_sections(text):
        name = profile_of_section(header)
        if name is not None:
            profiles.setdefault(name, {}).update(values)
    return profiles


# RawConfigParser's documented defaults, as botocore uses it: full-line comments start with these,
# options are `name = value` or `name: value` (its public OPTCRE)
COMMENT_PREFIXES = ("#", ";")


def classify_lines(lines):
    """What each line of a shared AWS file is, read exactly as configparser reads it for botocore
    (RawConfigParser's defaults: `=` or `:`, option names case-insensitive, full-line `#`/`;`
    comments, indented continuation lines, blank lines inside values): a list of (section, option,
    kind) with kind "header", "option", "continuation", "comment", "blank" or "other", option
    lowercased (None outside an option)."""
    import configparser

    cp = configparser.RawConfigParser()
    out = []
    section = option = None
    indent = 0
    for line in lines:
        value = line.strip()
        if value.startswith(COMMENT_PREFIXES):
            out.append((section, None, "comment"))  # belongs to no value and ends none
            continue
        if not value:
            out.append((section, option, "blank"))
            continue
        first = cp.NONSPACECRE.search(line)
        level = first.start() if first else 0
        if section is not None and option and level > indent:
            out.append((section, option, "continuation"))
            continue
        indent = level
        m = cp.SECTCRE.match(value)
        if m:
            section, option = m.group("header"), None
            out.append((section, None, "header"))
            continue
        m = cp.OPTCRE.match(value) if section is not None else None
        if m and m.group("option"):
            option = cp.optionxform(m.group("option").rstrip())
            out.append((section, option, "option"))
        else:
            out.append((section, None, "other"))
    return out


def parse_text(data):
    """{section: {option: value}} of a shared AWS file's bytes, exactly as botocore's
    raw_config_parse(path, parse_subsections=False) reads the file (the same RawConfigParser, in
    memory: the bytes may hold a secret and are never copied to a file), or None when it would fail."""
    import configparser

    cp = configparser.RawConfigParser()
    try:
        cp.read_string(data.decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError):
        return None
    return {section: {option: cp.get(section, option) for option in cp.options(section)} for section in cp.sections()}


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


def replace_backed_up(path, old, new):
    """Write new at path: a backup of old first (None: there was no file, the new one is 0600), the
    same mode kept, the directory made (0700) when missing, and refused if the file changed from old
    meanwhile. Returns the backup's path, or None."""
    import stat

    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    if old is not None:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        saved = backup(path, old)
    else:
        mode, saved = 0o600, None
    write_atomic(path, new, mode, old)
    return saved


def read_file(path):
    """The file's bytes (None: absent); see read_bytes."""
    try:
        return read_bytes(path)
    except OSError as e:
        raise LocalFileError(f"cannot read {path}: {e.strerror or e}",
                             hint="it must be a regular file of at most 1 MiB") from None
