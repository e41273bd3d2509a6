"""The two file edits of `credproc keys import`: switching an [idp.NAME] table to keys = "keyring"
in credproc's config, and taking the keys out of a profile of the shared AWS files. Each edit keeps
every other byte, is backed up first (mode 0600), checked before it is written, and written
atomically (refused if the file changed meanwhile)."""

import os
import re

from ..core.errors import ConfigError

_HEADER = re.compile(r"^\s*\[")
_KEY_LINES = ("aws_access_key_id", "aws_secret_access_key")
REDACTED = "<moved to the OS keyring by credproc keys import>"


def _lines(path):
    from ..core.awsfiles import read_file

    data = read_file(path)
    if data is None:
        raise ConfigError(f"{path} is gone")
    return data, data.decode("utf-8").splitlines(keepends=True)


def _section(lines, header_re):
    """(start, end) line indexes of the section whose header matches: start is the header line."""
    for i, line in enumerate(lines):
        if header_re.match(line):
            end = i + 1
            while end < len(lines) and not _HEADER.match(lines[end]):
                end += 1
            return i, end
    return None


def _write(path, current, new, backup_data=None):
    """Back up (backup_data, default the current bytes), then replace current with new."""
    from ..core.awsfiles import backup, write_atomic

    mode = os.stat(path).st_mode & 0o700 or 0o600  # never wider than the owner's
    saved = backup(path, current if backup_data is None else backup_data)
    write_atomic(path, new, mode, current)
    return saved


def switch_to_keyring(config_path, idp_name):
    """Set keys = "keyring" in [idp.NAME] (replacing profile/keys/keys_command, left as a comment).
    Returns the backup's path. The result must parse and give that idp keys = "keyring"."""
    from .. import config as config_mod

    data, lines = _lines(config_path)
    name = re.escape(idp_name)
    span = _section(lines, re.compile(rf'^\s*\[\s*idp\s*\.\s*(?:{name}|"{name}"|\'{name}\')\s*\]\s*(#.*)?$'))
    if span is None:
        raise ConfigError(f"{config_path}: cannot find the [idp.{idp_name}] table to edit",
                          hint=f'set keys = "keyring" in [idp.{idp_name}] yourself')
    start, end = span
    nl = "\r\n" if lines[start].endswith("\r\n") else "\n"
    header = lines[start] if lines[start].endswith(("\n", "\r")) else lines[start] + nl
    setting = f'keys = "keyring"{nl}'
    body = []
    for line in lines[start + 1:end]:
        key = line.split("=", 1)[0].strip()
        if "=" in line and key in ("profile", "keys", "keys_command"):
            # the new setting takes the place of the first line it replaces
            body += [setting] if setting not in body else []
            body.append(f"# {line.rstrip()}  (replaced by credproc keys import){nl}")
        else:
            body.append(line)
    if setting not in body:
        body.insert(0, setting)
    new_lines = lines[:start] + [header] + body + lines[end:]
    new = "".join(new_lines).encode("utf-8")
    try:
        cfg = config_mod.parse(config_path, new)
    except ConfigError as e:
        raise ConfigError(f"{config_path}: switching [idp.{idp_name}] to the keyring automatically would make the "
                          f"config invalid ({e.message.splitlines()[-1].strip()})",
                          hint=f'set keys = "keyring" in [idp.{idp_name}] yourself') from None
    if cfg.idps.get(idp_name, {}).get("keys") != "keyring" or cfg.idps[idp_name].get("keys_command"):
        raise ConfigError(f"{config_path}: could not switch [idp.{idp_name}] to the keyring automatically",
                          hint=f'set keys = "keyring" in [idp.{idp_name}] yourself')
    return _write(config_path, data, new)


def profile_sections(path, profile):
    """Whether a section name of `path` (as configparser reads it) is `profile`'s, as botocore reads them."""
    from ..core.awsfiles import profile_of_section, shared_files

    creds, _ = shared_files()
    if os.path.abspath(path) == os.path.abspath(creds):
        return lambda name: name == profile
    return lambda name: profile_of_section(name) == profile or (profile == "default" and name == "default")


def remove_keys(profile, key_id):
    """Take aws_access_key_id/aws_secret_access_key (with that key id) out of `profile` in the
    shared AWS files, in any spelling botocore reads (any case, `=` or `:`, continuation lines); a
    section left empty goes too. Returns [(path, backup path)] edited. The backup keeps everything
    but the secret (it says where the secret went instead): a backup with the secret in it would
    defeat the move. Before anything is written, botocore's own parser reads both results: each must
    be the file as before less the keys (the backup: the secret replaced), and neither may hold the
    secret anywhere; else nothing is written and the error says so."""
    from ..core.awsfiles import classify_lines, parse_text, shared_files

    edited = []
    for path in shared_files():
        if not os.path.isfile(path):
            continue
        data, lines = _lines(path)
        before = parse_text(data)
        if before is None:
            continue
        ours = profile_sections(path, profile)
        names = [n for n in before if ours(n)]
        if not any((before[n].get("aws_access_key_id") or "").strip() == key_id for n in names):
            continue
        secrets = {before[n]["aws_secret_access_key"].strip() for n in names if before[n].get("aws_secret_access_key")}
        kinds = classify_lines(lines)
        new_lines, redacted = [], []
        for line, (section, option, kind) in zip(lines, kinds):
            if section is not None and ours(section) and option in _KEY_LINES and kind in ("option", "continuation"):
                if option == "aws_secret_access_key" and kind == "option":
                    indent = line[:len(line) - len(line.lstrip())]
                    redacted.append(f"{indent}aws_secret_access_key = {REDACTED}\n")
                elif option == "aws_access_key_id":
                    redacted.append(line)
                continue
            new_lines.append(line)
            redacted.append(line)
        new_lines = _drop_empty_sections(new_lines, ours)
        new, backup_data = "".join(new_lines).encode("utf-8"), "".join(redacted).encode("utf-8")
        _check_removed(path, before, new, backup_data, names, secrets)
        edited.append((path, _write(path, data, new, backup_data)))
    return edited


def _drop_empty_sections(lines, ours):
    """The profile's sections that hold nothing but comments and blank lines now go entirely."""
    from ..core.awsfiles import classify_lines

    kinds = classify_lines(lines)
    keep = [True] * len(lines)
    i = 0
    while i < len(lines):
        section, _, kind = kinds[i]
        if kind == "header" and ours(section):
            end = i + 1
            while end < len(lines) and kinds[end][2] != "header":
                end += 1
            if all(k in ("comment", "blank") for _, _, k in kinds[i + 1:end]):
                keep[i:end] = [False] * (end - i)
            i = end
        else:
            i += 1
    return [line for line, k in zip(lines, keep) if k]


def _check_removed(path, before, new, backup_data, names, secrets):
    """Refuse (nothing written) unless botocore reads `new` as `before` less the keys, the backup as
    `before` with the secret replaced, and no secret is left in either, in bytes or in a value."""
    from ..core.awsfiles import parse_text

    def less_keys(redact):
        out = {}
        for name, options in before.items():
            options = dict(options)
            if name in names and redact:
                if "aws_secret_access_key" in options:
                    options["aws_secret_access_key"] = REDACTED
            elif name in names:
                options.pop("aws_access_key_id", None)
                options.pop("aws_secret_access_key", None)
                if not options:
                    continue
            out[name] = options
        return out

    def holds_secret(blob, parsed):
        text = blob.decode("utf-8", "replace")
        pieces = {p for s in secrets for p in [s, *s.split()] if len(p) >= 8}
        return any(p in text for p in pieces) or any(
            p in v for options in (parsed or {}).values() for v in options.values() for p in pieces)

    after, saved = parse_text(new), parse_text(backup_data)
    if (after != less_keys(False) or saved != less_keys(True) or holds_secret(new, after)
            or holds_secret(backup_data, saved)):
        raise ConfigError(f"{path}: could not take the keys out of it safely (the secret would still be read from "
                          "it, or other settings would change); it was left as it is, and no backup was made",
                          hint=f"the keys are in the OS keyring now: remove aws_access_key_id and "
                               f"aws_secret_access_key from {path} yourself (check [DEFAULT] too)")
