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
    with open(path, "rb") as f:
        data = f.read()
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


def profile_files(profile):
    """[(path, section header regex)] where `profile`'s keys may be (credentials file, config file)."""
    from ..core.awsfiles import shared_files

    creds, config = shared_files()
    name = re.escape(profile)
    in_config = "default" if profile == "default" else f"profile\\s+{name}"
    return [(creds, re.compile(rf"^\s*\[\s*{name}\s*\]\s*([#;].*)?$")),
            (config, re.compile(rf"^\s*\[\s*{in_config}\s*\]\s*([#;].*)?$"))]


def remove_keys(profile, key_id):
    """Take aws_access_key_id/aws_secret_access_key (with that key id) out of `profile` in the
    shared AWS files; a section left empty goes too. Returns [(path, backup path)] edited. The
    backup keeps everything but the secret (it says where the secret went instead): a backup with
    the secret in it would defeat the move."""
    edited = []
    for path, header_re in profile_files(profile):
        if not os.path.isfile(path):
            continue
        data, lines = _lines(path)
        span = _section(lines, header_re)
        if span is None:
            continue
        start, end = span
        values = {}
        for line in lines[start + 1:end]:
            k, eq, v = line.partition("=")
            if eq:
                values[k.strip()] = v.strip()
        if values.get("aws_access_key_id") != key_id:
            continue
        kept = [line for line in lines[start + 1:end] if line.partition("=")[0].strip() not in _KEY_LINES
                or "=" not in line]
        if any(line.strip() and not line.lstrip().startswith(("#", ";")) for line in kept):
            new_lines = lines[:start + 1] + kept + lines[end:]
        else:
            new_lines = lines[:start] + lines[end:]
        redacted = lines[:start + 1] + [
            (line.split("=", 1)[0] + "= " + REDACTED + "\n") if line.partition("=")[0].strip() == "aws_secret_access_key"
            else line for line in lines[start + 1:end]] + lines[end:]
        backup = _write(path, data, "".join(new_lines).encode("utf-8"), "".join(redacted).encode("utf-8"))
        edited.append((path, backup))
    return edited
