"""`credproc sso sync`'s file edits: the generated [role.*] tables of one IAM Identity Center idp,
kept between two marker comments in config.toml, and their profiles in ~/.aws/config. Everything
outside the marked region, and every profile that does not run exactly the command sync writes, is
left byte for byte. Both files: diff first, backup, atomic replace refused if the file changed."""

import difflib
import os
import re
import stat

from ..core.awsfiles import backup, config_path as aws_config_path, parse_profiles, read_file, write_atomic
from ..core.errors import ConfigError, UsageError
from ..core.names import config_name, toml_key

_ROLE_HEADER = re.compile(r'^\[role\.(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_-]+))\]')


def markers(idp_name):
    return (f"# >>> credproc sso sync --idp {idp_name}: generated; the next sync rewrites everything down to the "
            "closing marker (hand-written roles go outside it)",
            f"# <<< credproc sso sync --idp {idp_name}")


def generated_span(lines, idp_name):
    """(start, end) line indexes of the marked region (end: the closing marker line), or None."""
    begin, end = markers(idp_name)
    start = next((i for i, line in enumerate(lines) if line.rstrip("\r\n") == begin), None)
    if start is None:
        return None
    stop = next((i for i in range(start + 1, len(lines)) if lines[i].rstrip("\r\n") == end), None)
    if stop is None:
        raise ConfigError(f"the sso sync region of idp {idp_name} has no closing marker {end!r}",
                          hint="put the line back (or delete the region's opening marker) and sync again")
    return start, stop


def role_names_in(lines):
    found = []
    for line in lines:
        m = _ROLE_HEADER.match(line.strip())
        if m:
            found.append(m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m.group(1) is not None else m.group(2))
    return found


def plan(cfg, idp_name, grants, template, old_generated):
    """[(role name, account_id, account_name, role_name)] to generate. grants: [(account_id, account
    name, role name)]; a grant a hand-written role over the idp already covers is left out, and no
    name is one of a hand-written role."""
    hand = {n: r for n, r in cfg.roles.items() if n not in old_generated}
    covered = {(r.get("account_id"), r.get("role_name")) for r in hand.values() if r.get("idp") == idp_name}
    taken = set(hand)
    result = []
    for account_id, account_name, role_name in sorted(grants):
        if (account_id, role_name) in covered:
            continue
        text = template.format(account_name=account_name or account_id, account_id=account_id, role_name=role_name)
        name = config_name(text.lower(), taken, "role")
        taken.add(name)
        result.append((name, account_id, account_name, role_name))
    return result


def region_text(idp_name, roles, nl="\n"):
    from ..core.text import clean

    begin, end = markers(idp_name)
    out = [begin, ""]
    for name, account_id, account_name, role_name in roles:
        comment = clean(account_name).replace("\n", " ") if account_name else "account"
        out += [f"# {comment} ({account_id})", f"[role.{toml_key(name)}]", f'idp = "{idp_name}"',
                f'account_id = "{account_id}"', f'role_name = "{role_name}"', ""]
    out.append(end)
    return nl.join(out) + nl


def _without_profiles(text, names):
    """text without the [profile NAME] sections of `names` (each up to the next section header)."""
    lines = text.splitlines(keepends=True)
    out, skipping = [], False
    for line in lines:
        m = re.match(r"\s*\[(.+)\]", line)
        if m:
            header = m.group(1).strip()
            skipping = header.startswith("profile ") and header[len("profile "):].strip() in names
        if not skipping:
            out.append(line)
    return "".join(out)


def _diff(path, old, new):
    return "".join(difflib.unified_diff((old or b"").decode("utf-8", "replace").splitlines(keepends=True),
                                        new.decode("utf-8", "replace").splitlines(keepends=True),
                                        f"{path} (now)", f"{path} (after sync)"))


def sync(args, cfg, idp, grants, terminal):
    from .. import config as config_mod
    from .setup import command_for, executable, stanza

    idp_name = idp["name"]
    path = cfg.path
    old = read_file(path)
    text = old.decode("utf-8")
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    span = generated_span(lines, idp_name)
    old_generated = set(role_names_in(lines[span[0]:span[1]])) if span else set()
    roles = plan(cfg, idp_name, grants, args.template, old_generated)
    new_generated = {r[0] for r in roles}
    region = region_text(idp_name, roles, nl)
    if span:
        new_text = "".join(lines[:span[0]]) + region + "".join(lines[span[1] + 1:])
    else:
        sep = "" if not text or text.endswith(nl + nl) else (nl if text.endswith(("\n", "\r")) else nl + nl)
        new_text = text + sep + region
    new = new_text.encode("utf-8")
    config_mod.parse(path, new)  # a bug, or a broken region edited by hand: nothing is written
    added, pruned = sorted(new_generated - old_generated), sorted(old_generated - new_generated)
    # ~/.aws/config: a profile for each added role; a pruned role's profile goes if it runs exactly our command
    exe = executable()
    shown = aws_config_path()
    aws_path = os.path.realpath(shown)
    aws_old = read_file(aws_path)
    aws_text = (aws_old or b"").decode("utf-8", errors="surrogateescape")
    profiles = parse_profiles(aws_text)
    ours = {n for n in pruned if profiles.get(n, {}).get("credential_process", "").strip() == command_for(exe, n, path)}
    aws_new_text = _without_profiles(aws_text, ours) if ours else aws_text
    skipped = []
    stanzas = []
    for name in sorted(new_generated):
        have = profiles.get(name)
        command = command_for(exe, name, path)
        if have is None:
            stanzas.append("\n".join(stanza(name, command, cfg.settings.get("region"))))
        elif have.get("credential_process", "").strip() != command:
            skipped.append(name)
    if stanzas:
        if aws_new_text and not aws_new_text.endswith("\n"):
            aws_new_text += "\n"
        if aws_new_text.strip():
            aws_new_text += "\n"
        aws_new_text += "\n\n".join(stanzas) + "\n"
    aws_new = aws_new_text.encode("utf-8", errors="surrogateescape")
    kept = len(new_generated & old_generated)
    print(f"idp {idp_name}: {len(roles)} generated roles ({len(added)} new, {len(pruned)} pruned, {kept} kept); "
          f"{len(grants) - len(roles)} granted roles already written by hand")
    for name in skipped:
        print(f"  profile {name} already exists in {shown} and runs something else: left as it is")
    diff = _diff(path, old, new) + (_diff(shown, aws_old, aws_new) if aws_new != (aws_old or b"") else "")
    if not diff:
        print("nothing to change")
        return 0
    print(diff, end="")
    if args.dry_run:
        print("(dry run: nothing was written)")
        return 0
    if not args.yes:
        if not terminal.available():
            raise UsageError("confirmation needed and there is no terminal to ask on", hint="add --yes (see the diff above)")
        if terminal.ask("Write these changes (both files are backed up first)? [y/N] ", "a confirmation").strip().lower() \
                not in ("y", "yes"):
            print("cancelled; nothing was written")
            return 0
    for target, before, after in ((path, old, new), (aws_path, aws_old, aws_new)):
        if after == (before or b""):
            continue
        if before is not None:
            saved = backup(target, before)
            write_atomic(target, after, stat.S_IMODE(os.stat(target).st_mode), before)
            print(f"wrote {target} (backup: {saved})")
        else:
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            write_atomic(target, after, 0o600, None)
            print(f"wrote {target} (new file)")
    return 0
