"""credproc import: adopt the profiles a user already has in ~/.aws/config (and ~/.aws/credentials).

`propose` is pure (text in, proposal out); `run` shows the diff, asks, backs every file up, writes
atomically and records what it wrote so that `--undo` can put the files back (only while they are
still what import wrote).
"""

import difflib
import json
import os
import re
import shlex
import time

from ..core import paths
from ..core.awsfiles import (parse_sections, profile_of_section, read_file, replace_backed_up, sections,
                             shared_files, write_atomic)
from ..core.errors import ConfigError, LocalFileError, UsageError
from ..core.names import config_name, toml_key

HELP = "propose a credproc config for the profiles already in ~/.aws/config, and switch them over"
DESCRIPTION = """\
Read ~/.aws/config ($AWS_CONFIG_FILE) and ~/.aws/credentials ($AWS_SHARED_CREDENTIALS_FILE) and
propose the credproc configuration for the profiles in them:

  sso_session / sso_start_url profiles (and granted's granted_sso_* ones)
      -> an IAM Identity Center [idp.*] per portal, a [role.*] per account and permission set
  role_arn + source_profile (+ mfa_serial, external_id, duration_seconds, role_session_name)
      -> an IAM-keys [idp.*] over the source profile's keys, a [role.*] per role
         (source_role for a chain of roles)
  credential_process lines of aws-vault, saml2aws and others
      -> recognised and explained (they keep working as they are)

It shows the changes to config.toml and ~/.aws/config as a diff and writes only after you say yes
(or --yes). Each converted profile keeps its name, region and other settings; its credential
settings become one credential_process line that runs credproc. Every file is backed up first
(FILE.bak-YYYYmmddTHHMMSS, mode 0600) and replaced atomically; `credproc import --undo` restores
them. Profiles it cannot express are listed with the reason and left exactly as they are."""
EXAMPLES = """\
  credproc import --dry-run       # show what would change, write nothing
  credproc import                 # show it, ask, write
  credproc import --yes           # no question (scripts)
  credproc import --undo          # put back the files the last import changed"""

# the profile keys a converted profile loses (their meaning moves into credproc's config)
_MOVED = {"role_arn", "source_profile", "mfa_serial", "external_id", "duration_seconds", "role_session_name",
          "sso_session", "sso_start_url", "sso_region", "sso_account_id", "sso_role_name",
          "sso_registration_scopes", "credential_process", "granted_sso_start_url", "granted_sso_region",
          "granted_sso_account_id", "granted_sso_role_name", "granted_sso_registration_scopes",
          "common_fate_generated_from", "credential_source"}
_KEYS = ("aws_access_key_id", "aws_secret_access_key")
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z")
_ACCOUNT = re.compile(r"^\d{12}\Z")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
_CHAINED_MAX = 3600


def add_arguments(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--dry-run", action="store_true", help="show the proposal and the diff, write nothing")
    group.add_argument("--yes", action="store_true", help="write without asking")
    group.add_argument("--undo", action="store_true", help="restore the files the last import changed")


# -- the proposal (pure) ---------------------------------------------------------------------------
class Proposal:
    def __init__(self):
        self.idps = {}       # name -> {key: value} (type first)
        self.roles = {}      # name -> {key: value}
        self.profiles = {}   # AWS profile -> role name (the profile becomes credproc --role NAME)
        self.notes = []      # (profile, what was done or why not); every profile appears once
        self.keys_offer = []  # (idp name, profile holding plain-text keys)
        self.settings = {}

    @property
    def converted(self):
        return list(self.profiles)


def _tool(command):
    """('aws-vault'|'granted'|'saml2aws'|'credproc'|None, the profile it names or None)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words:
        return None, None
    prog = os.path.basename(words[0])
    named = None
    for i, w in enumerate(words):
        for opt in ("--profile", "-p", "--role"):
            if w == opt and i + 1 < len(words):
                named = words[i + 1]
            elif w.startswith(opt + "="):
                named = w.split("=", 1)[1]
    if prog in ("aws-vault", "granted", "saml2aws", "credproc", "assumego"):
        if prog == "aws-vault" and named is None and len(words) > 2 and words[1] in ("export", "exec"):
            named = next((w for w in words[2:] if not w.startswith("-")), None)
        return ("granted" if prog == "assumego" else prog), named
    return None, None


class AwsFiles:
    """What the sources' adopt_profile hooks get to see of the user's AWS files."""

    def __init__(self, profiles, sso_sessions, credentials):
        self.profiles = profiles
        self.sso_sessions = sso_sessions
        self.credentials = credentials

    def has_static_keys(self, name):
        v = self.profiles.get(name)
        c = self.credentials.get(name, {})
        if v is None:
            return False
        return all(k in v or k in c for k in _KEYS) and not any(
            k in v for k in ("role_arn", "credential_process", "sso_session", "sso_start_url", "credential_source"))


def _explain_tool(tool, named):
    if tool == "credproc":
        return "already runs credproc: left as it is"
    if tool == "aws-vault":
        return (f"aws-vault ({'profile ' + named if named else 'its own profile'}): aws-vault keeps the IAM keys in "
                "its own keyring, which credproc does not read. To switch: put the source profile's keys (`aws-vault "
                "export`) into the OS keyring once with `credproc keys add --idp NAME`, then describe the role in "
                "config.toml (examples/config.toml, the IAM block)")
    if tool == "saml2aws":
        return ("saml2aws: its IdP account is in ~/.saml2aws, not here. A credproc SAML idp (examples/config.toml) "
                "takes that account's url (flow ecp for Shibboleth/SimpleSAMLphp, form for an IdP-initiated sign-on "
                "page) and username; see the README's SAML 2.0 section")
    if tool == "granted":
        return "granted credential-process without granted_sso_* settings: describe the role by hand"
    return "runs another credential_process (not recognised): left as it is"


def propose(config_text, credentials, taken_idps=(), taken_roles=()):
    """What import would do. config_text: ~/.aws/config's text; credentials: {profile: {key: value}}
    of ~/.aws/credentials; taken_*: names already in credproc's config (new ones avoid them)."""
    from .. import sources as idp_registry

    p = Proposal()
    sso_sessions = {}
    profiles = {}
    for header, values in parse_sections(config_text):
        words = header.split(None, 1)
        if words[0] == "sso-session" and len(words) == 2:
            sso_sessions[words[1].strip()] = values
            continue
        name = profile_of_section(header)
        if name is not None:
            profiles.setdefault(name, {}).update(values)
    for name in credentials:
        profiles.setdefault(name, {})
    aws = AwsFiles(profiles, sso_sessions, credentials)
    default_region = profiles.get("default", {}).get("region")
    if default_region and _REGION.match(default_region):
        p.settings["region"] = default_region
    taken_i, taken_r = set(taken_idps), set(taken_roles)
    adopted_idps = {}  # a source's idp key -> idp name
    state = {}         # profile -> role name, False (not convertible) or None (being converted)
    reasons = {}

    def fail(name, why):
        state[name] = False
        reasons[name] = why
        return False

    def idp_for(source, adopted):
        if adopted["key"] not in adopted_idps:
            idp_name = config_name(adopted["idp_name"], taken_i, source.type_name)
            taken_i.add(idp_name)
            adopted_idps[adopted["key"]] = idp_name
            p.idps[idp_name] = {"type": source.type_name, **adopted["idp"]}
            if adopted.get("keys_profile") and source.holds_user_keys and any(
                    k in credentials.get(adopted["keys_profile"], {}) or k in profiles.get(adopted["keys_profile"], {})
                    for k in _KEYS):
                p.keys_offer.append((idp_name, adopted["keys_profile"]))
        return adopted_idps[adopted["key"]]

    def role_arn_keys(name, v, table, chained):
        """The role keys of a role_arn profile; a str when one cannot be expressed."""
        arn = v["role_arn"]
        if not _ROLE_ARN.match(arn):
            return f"role_arn {arn!r} is not an IAM role ARN credproc can assume"
        table["arn"] = arn
        note = ""
        if v.get("duration_seconds"):
            try:
                table["duration"] = int(v["duration_seconds"])
            except ValueError:
                return f"duration_seconds {v['duration_seconds']!r} is not a number"
            if chained and table["duration"] > _CHAINED_MAX:
                table["duration"] = _CHAINED_MAX
                note = " (duration capped at 3600: AWS allows no more for a chained role)"
        if v.get("role_session_name"):
            table["session_name"] = v["role_session_name"]
        if v.get("external_id"):
            table["external_id"] = v["external_id"]
        if chained and v.get("mfa_serial"):
            note += " (its mfa_serial is not needed: the source role's session carries the MFA)"
        return table, note

    def new_role(name, table, what, note=""):
        role_name = config_name(name, taken_r, "role")
        taken_r.add(role_name)
        p.roles[role_name] = table
        state[name] = role_name
        over = f"[idp.{table['idp']}]" if "idp" in table else f"[role.{table['source_role']}]"
        p.notes.append((name, f"{what} -> [role.{role_name}] over {over}{note}"))
        return role_name

    def convert(name, depth=0):
        if name in state:
            return state[name] or (fail(name, "its source_profile chain loops") if state[name] is None else False)
        if name not in profiles:
            return False
        state[name] = None
        v = profiles[name]
        tool, named = _tool(v["credential_process"]) if v.get("credential_process") else (None, None)
        if tool == "credproc":
            return fail(name, _explain_tool(tool, named))
        for source in idp_registry.all_sources():
            adopted = source.adopt_profile(name, v, aws)
            if adopted is None:
                continue
            if isinstance(adopted, str):
                return fail(name, adopted)
            idp_name = idp_for(source, adopted)
            if adopted["role"] is None:
                return fail(name, f"a sign-in only profile: [idp.{idp_name}] covers it (list its roles with "
                                  f"`credproc sso roles --idp {idp_name}`)")
            table = {"idp": idp_name, **adopted["role"]}
            note = ""
            if v.get("role_arn"):
                done = role_arn_keys(name, v, table, chained=False)
                if isinstance(done, str):
                    return fail(name, done)
                table, note = done
            return new_role(name, table, source.title, note)
        proc = v.get("credential_process")
        if proc:
            return fail(name, _explain_tool(tool, named))
        if v.get("role_arn"):
            if v.get("credential_source"):
                return fail(name, f"credential_source = {v['credential_source']} (keys of the machine or the "
                                  "environment): credproc has no such source")
            if v.get("web_identity_token_file"):
                return fail(name, "web_identity_token_file: a workload's token, not a person's sign-in")
            src = v.get("source_profile")
            if not src:
                return fail(name, "role_arn without source_profile")
            if src == name:
                return fail(name, "it is its own source_profile: move its keys to a profile of their own first")
            if src not in profiles:
                return fail(name, f"source_profile {src!r} is not in the files")
            source_role = convert(src, depth + 1) if depth < 20 else False
            if not source_role:
                return fail(name, f"source_profile {src!r} cannot be converted ({reasons.get(src, 'a chain too long')})")
            done = role_arn_keys(name, v, {"source_role": source_role}, chained=True)
            if isinstance(done, str):
                return fail(name, done)
            table, note = done
            return new_role(name, table, f"a role assumed from profile {src}", note)
        if any(k in v or k in credentials.get(name, {}) for k in _KEYS):
            return fail(name, "static keys: left as they are (an IAM idp reads them)")
        return fail(name, "no credential settings: left as it is")

    for name in profiles:
        convert(name)
    for name in profiles:
        if state.get(name):
            p.profiles[name] = state[name]
        else:
            p.notes.append((name, "not converted: " + reasons.get(name, "no credential settings")))
    return p


def toml_text(p, header=True):
    """The proposal's idps and roles as commented TOML."""
    from .. import sources as idp_registry

    def value(v):
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(json.dumps(x) for x in v) + "]"
        return json.dumps(v)

    out = []
    if header:
        out += [f"# Written by `credproc import` on {time.strftime('%Y-%m-%d %H:%M')} from your AWS profiles.",
                "# Every key is described in the README's configuration reference; `credproc doctor` checks it.", ""]
        if p.settings:
            out += ["[settings]"] + [f"{k} = {value(v)}" for k, v in p.settings.items()] + [""]
    for name, table in p.idps.items():
        comment = idp_registry.get(table["type"]).title
        out.append(f"[idp.{toml_key(name)}]" + (f"  # {comment}" if comment else ""))
        out += [f"{k} = {value(v)}" for k, v in table.items()] + [""]
    for name, table in p.roles.items():
        profile = next((prof for prof, r in p.profiles.items() if r == name), name)
        out.append(f"[role.{toml_key(name)}]  # AWS profile {profile}")
        out += [f"{k} = {value(v)}" for k, v in table.items()] + [""]
    return "\n".join(out)


def rewrite_aws_config(text, changes):
    """text with each [profile P] of `changes` ({profile: credential_process command}) keeping its
    other lines (region, output, comments) and losing the credential settings credproc now holds."""
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    out = []
    current = None
    dropping = False
    for line in lines:
        stripped = line.strip()
        m = re.match(r"\[(.+)\]", stripped)
        if m:
            current = profile_of_section(m.group(1))
            dropping = False
            out.append(line if line.endswith(("\n", "\r")) else line + nl)
            if current in changes:
                out.append(f"credential_process = {changes[current]}{nl}")
            continue
        if current in changes:
            if line[:1] in (" ", "\t") and stripped and dropping:
                continue  # a continuation of a dropped key
            if stripped and stripped[0] not in "#;":
                key = re.split(r"[=:]", stripped, 1)[0].strip().lower()
                dropping = key in _MOVED
                if dropping:
                    continue
        out.append(line)
    return "".join(out)


# -- the command -------------------------------------------------------------------------------------
def _undo_file():
    return os.path.join(paths.user_dir("data"), "import-undo.json")


def _digest(data):
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _diff(path, old, new):
    a = (old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    b = new.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, f"{path} (now)" if old is not None else "/dev/null",
                                        f"{path} (after import)"))


def run(args):
    from .setup import command_for, executable

    config_path = os.path.abspath(paths.config_file(getattr(args, "config", None)))
    if args.undo:
        return _undo()
    creds_path, aws_shown = shared_files()
    aws_path = os.path.realpath(aws_shown)
    aws_old = read_file(aws_path)
    if aws_old is None:
        raise ConfigError(f"no AWS config file at {aws_shown}: nothing to import",
                          hint="start with `credproc init` or examples/config.toml")
    aws_text = aws_old.decode("utf-8", errors="surrogateescape")
    credentials = sections(creds_path)
    cfg_old = read_file(config_path)
    taken_idps, taken_roles = (), ()
    if cfg_old is not None:
        from .. import config as config_mod

        existing = config_mod.parse(config_path, cfg_old)  # a broken config is reported, not extended
        taken_idps, taken_roles = existing.idps, existing.roles
    p = propose(aws_text, credentials, taken_idps, taken_roles)
    total = len({n for n, _ in p.notes})
    print(f"{len(p.converted)} of {total} profiles in {aws_shown} can be converted:")
    for profile, what in p.notes:
        print(f"  {profile}: {what}")
    if not p.converted:
        print("nothing to convert; nothing was written")
        return 0
    exe = executable()
    cfg_text = toml_text(p, header=cfg_old is None)
    if cfg_old is None:
        cfg_new = cfg_text.encode()
    else:
        sep = b"" if cfg_old.endswith(b"\n\n") or not cfg_old else (b"\n" if cfg_old.endswith(b"\n") else b"\n\n")
        cfg_new = cfg_old + sep + f"# added by `credproc import` on {time.strftime('%Y-%m-%d %H:%M')}\n".encode() + cfg_text.encode()
    from .. import config as config_mod

    try:
        config_mod.parse(config_path, cfg_new)
    except ConfigError as e:
        raise ConfigError(f"the proposed configuration does not validate (a credproc bug; nothing was written): {e}") from None
    commands = {profile: command_for(exe, role, config_path) for profile, role in p.profiles.items()}
    aws_new = rewrite_aws_config(aws_text, commands).encode("utf-8", errors="surrogateescape")
    print()
    print(_diff(config_path, cfg_old, cfg_new), end="")
    print(_diff(aws_shown, aws_old, aws_new), end="")
    if args.dry_run:
        print("(dry run: nothing was written)")
        return 0
    if not args.yes:
        from ..core.prompt import Terminal

        terminal = Terminal("credproc import --yes")
        try:
            if not terminal.available():
                raise UsageError("confirmation needed and there is no terminal to ask on",
                                 hint="run it in a terminal, or add --yes (see the diff above)")
            answer = terminal.ask("Write these changes (every file is backed up first)? [y/N] ", "a confirmation")
        finally:
            terminal.close()
        if answer.strip().lower() not in ("y", "yes"):
            print("cancelled; nothing was written")
            return 0
    record = []
    try:
        for path, old, new, private in ((config_path, cfg_old, cfg_new, True), (aws_path, aws_old, aws_new, False)):
            saved = replace_backed_up(path, old, new)
            record.append({"path": path, "backup": saved, "written": _digest(new)})
            print(f"wrote {path}" + (f" (backup: {saved})" if saved else " (new file)"))
    finally:
        if record:
            _save_undo(record)
    for idp_name, holder in p.keys_offer:
        print(f"the keys of profile {holder} are plain text: move them into the OS keyring with "
              f"`credproc keys import --idp {idp_name} --from-profile {holder}`")
    first = next(iter(p.profiles))
    print(f"next: credproc doctor, then aws sts get-caller-identity --profile {first}; undo: credproc import --undo")
    return 0


def _save_undo(record):
    from ..core.store import atomic_write

    path = _undo_file()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, json.dumps({"time": int(time.time()), "files": record}).encode(), 0o600)


def _undo():
    path = _undo_file()
    try:
        with open(path, "rb") as f:
            record = json.load(f)
        files = record["files"]
    except FileNotFoundError:
        raise UsageError("no import to undo (credproc import --undo restores the files of the last import)") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise LocalFileError(f"{path} is unreadable; restore the files from their .bak- copies by hand") from None
    changed = [f["path"] for f in files if _digest(read_file(f["path"]) or b"") != f["written"]]
    if changed:
        raise LocalFileError(f"{', '.join(changed)} changed since credproc import wrote it; nothing was restored",
                             hint="restore it from its .bak- copy by hand (the import's backups are listed in " + path + ")")
    for f in files:
        current = read_file(f["path"])
        if f["backup"]:
            old = read_file(f["backup"])
            if old is None:
                raise LocalFileError(f"the backup {f['backup']} is gone; nothing more was restored")
            import stat

            write_atomic(f["path"], old, stat.S_IMODE(os.stat(f["path"]).st_mode), current)
            print(f"restored {f['path']} from {f['backup']}")
        else:
            os.unlink(f["path"])
            print(f"removed {f['path']} (it did not exist before the import)")
    os.unlink(path)
    return 0
