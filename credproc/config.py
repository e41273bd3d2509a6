"""The TOML configuration: parsed, validated (every problem at once), resolved per role.

Nothing here touches the network. Key names are a contract (README, "Configuration reference").
"""

import json
import os
import re

from . import sources as idp_registry
from .core.cache import digest
from .core.errors import ConfigError
from .sources.checks import CHAINED_MAX_DURATION, MAX_DURATION, MIN_DURATION  # noqa: F401 (re-exported)
from .sources.checks import Checker as _Checker
from .sources.checks import in_range as _range
from .sources.checks import matches as _match
from .sources.checks import secure_url as _secure_url
from .sources.checks import str_list as _str_list

DEFAULT_REGION = "us-east-1"
DEFAULT_REFRESH_MARGIN = 20 * 60
DEFAULT_DURATION = 3600
SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}\Z")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
ROLE_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


def _load_toml(data):
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    return tomllib.loads(data)


def _shaping(idp):
    """The idp's settings that shape credentials: not how long to pause Duo pushes, and not the keys
    its source leaves out at their default value (keys added later, so that configs not using them
    keep their fingerprints and cached sessions; see IdentitySource.unfingerprinted)."""
    from .sources.base import NEVER

    drop = idp_registry.source_for(idp).unfingerprinted
    return {k: v for k, v in idp.items()
            if k != "push_backoff" and (k not in drop or (drop[k] is not NEVER and v != drop[k]))}


class Config:
    def __init__(self, path, raw_bytes, settings, idps, roles):
        self.path = path
        self.digest = digest(raw_bytes)
        self.settings = settings
        self.idps = idps
        self.roles = roles

    def role(self, name):
        if name not in self.roles:
            import difflib

            known = ", ".join(sorted(self.roles)) or "none"
            close = difflib.get_close_matches(name, sorted(self.roles), n=1, cutoff=0.6)
            if not close:  # a different case is closer than any ratio says ("Admin" for "admin")
                close = [r for r in sorted(self.roles) if r.lower() == name.lower()][:1]
            hint = f"did you mean {close[0]}?" if close else f"add a [role.{name}] table"
            raise ConfigError(f"{self.path}: no role named {name!r} (configured roles: {known})", hint=hint)
        return self.roles[name]

    def chain_of(self, name):
        """[role, its source role, ...] ending with the role that names an idp."""
        chain = [self.role(name)]
        while chain[-1].get("source_role"):
            chain.append(self.roles[chain[-1]["source_role"]])
        return chain

    def idp_of(self, name):
        return self.idps[self.chain_of(name)[-1]["idp"]]

    def fingerprint(self, name):
        """A digest of everything that shapes this role's credentials; a cached entry made from
        other settings is not served."""
        chain = [{k: v for k, v in role.items() if k not in CONSOLE_KEYS} for role in self.chain_of(name)]
        material = {"settings": {k: self.settings.get(k) for k in ("region", "sts_endpoint_url")},
                    "chain": chain, "idp": _shaping(self.idps[chain[-1]["idp"]])}
        return digest(json.dumps(material, sort_keys=True, default=str).encode())

    def idp_fingerprint(self, idp_name):
        material = {"settings": {k: self.settings.get(k) for k in ("region", "sts_endpoint_url")},
                    "idp": _shaping(self.idps[idp_name])}
        return digest(json.dumps(material, sort_keys=True, default=str).encode())

    def region_for(self, role):
        return role.get("region") or self.settings.get("region") or DEFAULT_REGION

    def sts_endpoint_for(self, role):
        return role.get("sts_endpoint_url") or self.settings.get("sts_endpoint_url")


# where `credproc console` opens the console: per role or in [settings]; they shape no credentials
CONSOLE_KEYS = ("browser", "browser_profile")
ROLE_KEYS = {"idp", "source_role", "arn", "duration", "session_name", "external_id", "source_identity",
             "tags", "transitive_tag_keys", "policy_arns", "region", "sts_endpoint_url", *CONSOLE_KEYS}
SETTINGS_KEYS = {"region", "sts_endpoint_url", "refresh_margin", "prompt", "federation_url", "cache_key",
                 "cache_key_fallback", "include", *CONSOLE_KEYS}
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


def _browser_check(value):
    if not value.strip():
        return "must not be empty"
    if _CONTROL_RE.search(value):
        return "must not contain control characters"
    return None


def _profile_check(value):
    problem = _browser_check(value)
    if problem:
        return problem
    if value.startswith("-"):
        return "must not start with '-' (it is a profile name, e.g. \"Profile 1\" or \"work\")"
    if len(value) > 255:
        return "must be at most 255 characters"
    return None


def _console_keys(c, table, where, into):
    into["browser"] = c.get(table, "browser", where, str, check=_browser_check)
    into["browser_profile"] = c.get(table, "browser_profile", where, str, check=_profile_check)


SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}\Z")


def untrusted_key(key):
    """A key an included (shared, untrusted) file may not set: one that runs a program (`*_command`,
    a process idp's `command` and its `env`, a `browser`), or that sends credentials, codes or tokens
    to another endpoint or trusts another CA."""
    return (key.endswith("_command") or key.endswith("endpoint_url")
            or key in ("command", "env", "browser", "browser_profile", "federation_url", "ca_bundle"))


def _include_specs(c, raw_settings):
    """[(label, {"path": ...} or {"url": ..., "sha256": ...})] of [settings] include."""
    specs = c.get(raw_settings, "include", "settings", list, default=[])
    result = []
    for i, spec in enumerate(specs or []):
        where = f"settings.include[{i}]"
        if not isinstance(spec, dict):
            c.add(where, 'must be a table: { path = "~/team/credproc.toml" } or { url = "https://...", sha256 = "..." }')
            continue
        extra = set(spec) - {"path", "url", "sha256"}
        if extra:
            c.add(where, f"unknown key {sorted(extra)[0]!r} (known: path, url, sha256)")
        if ("path" in spec) == ("url" in spec):
            c.add(where, "set either path or url")
        elif "url" in spec:
            if not isinstance(spec["url"], str) or _secure_url(spec["url"]):
                c.add(f"{where}.url", "must be an https:// URL (plain http only to a loopback address)")
            elif not isinstance(spec.get("sha256"), str) or not SHA256_RE.match(spec["sha256"]):
                c.add(f"{where}.sha256", "is required with url: the SHA-256 (64 hex digits) of the content you "
                                         "reviewed (sha256sum FILE)")
            else:
                result.append((spec["url"], spec))
        elif not isinstance(spec["path"], str) or not spec["path"]:
            c.add(f"{where}.path", "must be a path")
        elif "sha256" in spec:
            c.add(f"{where}.sha256", "is for url only (a local file is checked by its permissions)")
        else:
            result.append((spec["path"], spec))
    return result


def _merge_included(c, data, label, raw):
    """Add the [idp.*] and [role.*] tables of one included file to data, refusing what it may not set."""
    try:
        included = _load_toml(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        c.add(f"include {label}", f"not a valid TOML file ({type(e).__name__}: {e})")
        return
    for key in included:
        if key not in ("idp", "role"):
            c.add(f"include {label}: {key}", "an included file may define only [idp.*] and [role.*] tables")
    for section in ("idp", "role"):
        tables = included.get(section, {})
        if not isinstance(tables, dict):
            c.add(f"include {label}: {section}", "must be a table")
            continue
        mine = data.setdefault(section, {})
        if not isinstance(mine, dict):
            return
        for name, table in tables.items():
            where = f"include {label}: {section}.{name}"
            if name in mine:
                c.add(where, "is also defined in the configuration file (rename one of them)")
                continue
            if isinstance(table, dict):
                bad = sorted(k for k in table if untrusted_key(k))
                if bad:
                    c.add(f"{where}.{bad[0]}", "is not allowed in an included file (it runs a command, or sends "
                                               "credentials elsewhere): set it in your own configuration")
                    continue
            mine[name] = table


def _check_idp(c, name, table, where):
    kind = c.get(table, "type", where, str, required=True, choices=idp_registry.names())
    if kind is None:
        return {"name": name, "type": kind}
    source = idp_registry.get(kind)
    c.unknown(table, source.key_names(), where)
    return source.parse_idp(c, name, table, where)


def _check_role(c, name, table, where, idps):
    over = idps.get(table.get("idp")) if isinstance(table.get("idp"), str) and "source_role" not in table else None
    source_keys = idp_registry.source_for(over).role_keys if over and over.get("type") else ()
    c.unknown(table, ROLE_KEYS | {k.name for k in source_keys}, where)
    role = {"name": name}
    role["idp"] = c.get(table, "idp", where, str)
    role["source_role"] = c.get(table, "source_role", where, str)
    if role["idp"] and role["source_role"]:
        c.add(where, "set either idp or source_role, not both")
    elif not role["idp"] and not role["source_role"]:
        c.add(where, "needs idp (an [idp.*] name) or source_role (another role's name)")
    elif role["idp"] and role["idp"] not in idps:
        c.add(f"{where}.idp", f"no [idp.{role['idp']}] table (configured: {', '.join(sorted(idps)) or 'none'})")
    role["arn"] = c.get(table, "arn", where, str, check=_match(ROLE_ARN_RE, "an IAM role ARN (arn:aws:iam::123456789012:role/Name)"))
    chained = bool(role["source_role"])
    role["duration"] = c.get(table, "duration", where, int, default=DEFAULT_DURATION,
                             check=_range(MIN_DURATION, CHAINED_MAX_DURATION if chained else MAX_DURATION))
    if chained and not role["arn"] and "arn" not in table:
        c.add(f"{where}.arn", "is required with source_role (the role to assume from the source role's credentials)")
    role["session_name"] = c.get(table, "session_name", where, str,
                                 check=_match(SESSION_NAME_RE, "a valid session name (2-64 of letters, digits, +=,.@_-)"))
    for key in ("external_id", "source_identity"):
        role[key] = c.get(table, key, where, str)
    role["region"] = c.get(table, "region", where, str, check=_match(REGION_RE, "an AWS region (e.g. eu-west-1)"))
    role["sts_endpoint_url"] = c.get(table, "sts_endpoint_url", where, str, check=_secure_url)
    role["tags"] = c.get(table, "tags", where, dict,
                         check=lambda v: None if all(isinstance(x, str) for x in v.values()) else "values must be strings")
    role["transitive_tag_keys"] = c.get(table, "transitive_tag_keys", where, list, check=_str_list)
    role["policy_arns"] = c.get(table, "policy_arns", where, list, check=_str_list)
    for key in source_keys:
        role[key.name] = c.get(table, key.name, where, key.kind, default=key.default, required=key.required,
                               choices=key.choices, check=key.check, hint=key.hint)
    _console_keys(c, table, where, role)
    return role


def _named_tables(c, data, section):
    """(name, table, "section.name") for each well-formed [section.NAME] table."""
    for name, table in c.table(data, section, section).items():
        where = f"{section}.{name}"
        if not NAME_RE.match(name):
            c.add(where, "name must be letters, digits, '.', '_' or '-'")
        if not isinstance(table, dict):
            c.add(where, "must be a table")
            continue
        yield name, table, where


def parse(path, raw_bytes, include_loader=None):
    """Config from the file's bytes; raises ConfigError listing every problem. include_loader(spec)
    -> bytes reads one [settings] include (without one, includes are checked but not read)."""
    if raw_bytes.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(f"{path}: starts with a UTF-8 byte order mark (BOM), which TOML does not allow",
                          hint="save it as UTF-8 without BOM (in Notepad: Save as, Encoding: UTF-8)")
    try:
        data = _load_toml(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except ValueError as e:  # tomllib.TOMLDecodeError subclasses ValueError
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except RecursionError:  # tomllib's parser recurses once per nested array or inline table
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    c = _Checker()
    for key in data:
        if key not in ("settings", "idp", "role"):
            c.add(key, "unknown section (known: settings, idp, role)")
    raw_settings = c.table(data, "settings", "settings")
    c.unknown(raw_settings, SETTINGS_KEYS, "settings")
    includes = _include_specs(c, raw_settings)
    if includes and include_loader is not None and not c.problems:
        for label, spec in includes:
            _merge_included(c, data, label, include_loader(spec))
    settings = {
        "region": c.get(raw_settings, "region", "settings", str, check=_match(REGION_RE, "an AWS region (e.g. eu-west-1)")),
        "sts_endpoint_url": c.get(raw_settings, "sts_endpoint_url", "settings", str, check=_secure_url),
        "refresh_margin": c.get(raw_settings, "refresh_margin", "settings", int, default=DEFAULT_REFRESH_MARGIN,
                                check=_range(0, 12 * 3600)),
        "prompt": c.get(raw_settings, "prompt", "settings", str, default="terminal", choices=["terminal", "gui"]),
        "federation_url": c.get(raw_settings, "federation_url", "settings", str, check=_secure_url),
        "cache_key": c.get(raw_settings, "cache_key", "settings", str, default="file", choices=["file", "keyring"]),
        "cache_key_fallback": c.get(raw_settings, "cache_key_fallback", "settings", str, default="none",
                                    choices=["none", "file"]),
    }
    _console_keys(c, raw_settings, "settings", settings)
    if settings["cache_key"] == "file" and "cache_key_fallback" in raw_settings:
        c.add("settings.cache_key_fallback", "has no effect unless cache_key = \"keyring\" (remove it)")
    if settings["browser_profile"] and not settings["browser"]:
        c.add("settings.browser_profile", "needs settings.browser: the default browser cannot be told a profile")
    idps = {name: _check_idp(c, name, table, where) for name, table, where in _named_tables(c, data, "idp")}
    roles = {name: _check_role(c, name, table, where, idps) for name, table, where in _named_tables(c, data, "role")}
    for name, role in roles.items():
        if role.get("browser_profile") and not (role.get("browser") or settings["browser"]):
            c.add(f"role.{name}.browser_profile", "needs browser (in the role or in [settings]): the default browser "
                                                  "cannot be told a profile")
        idp = idps.get(role.get("idp") or "")
        if idp and idp.get("type"):
            source = idp_registry.source_for(idp)
            for key in source.ignored_role_keys:
                if role.get(key) is not None:
                    c.add(f"role.{name}.{key}", f"has no effect for a role over a {idp['type']} identity provider (remove it)")
            source.check_role(c, role, idp, f"role.{name}")
        seen = [name]
        cur = role
        while cur.get("source_role"):
            src = cur["source_role"]
            if src not in roles:
                c.add(f"role.{cur['name']}.source_role", f"no [role.{src}] table")
                break
            if src in seen:
                c.add(f"role.{name}.source_role", f"role chain loops: {' -> '.join(seen + [src])}")
                break
            seen.append(src)
            cur = roles[src]
    if c.problems:
        lines = "\n".join(f"  {p}" for p in c.problems)
        raise ConfigError(f"{path}: {len(c.problems)} problem{'s' if len(c.problems) > 1 else ''}:\n{lines}")
    return Config(path, raw_bytes, settings, idps, roles)


def load(path, source=None):
    """source: where the path came from ("--config", "$CREDPROC_CONFIG"), None for the default."""
    from .core.cache import MAX_CONFIG_BYTES, read_file

    try:
        # A symlink is followed (dotfile managers link config files), but a FIFO, a device or a
        # huge file is refused before anything is read or waited for.
        raw = read_file(path, MAX_CONFIG_BYTES, follow=True)
    except FileNotFoundError:
        if source:
            raise ConfigError(f"no configuration file at {path} (named by {source})",
                              hint=f"check the path in {source}") from None
        raise ConfigError(f"no configuration file at {path}",
                          hint="run `credproc init` to write one (or `credproc import` to convert the profiles of your "
                               "~/.aws/config), or start from examples/config.toml in credproc's source (one block "
                               "per identity source); or pass --config PATH") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    # The config names commands that are run (mfa_command, password_command, keys_command): one
    # another user can change would let them run commands as you. (The fast path still serves: it
    # runs nothing from the config, and any edit changes the digest its entries are bound to.)
    from .core.paths import others_can_write

    unsafe = others_can_write(path)
    if unsafe:
        from .core.errors import LocalFileError

        why, where = unsafe
        fix = f"chown $USER '{where}'" if "belongs to" in why else f"chmod go-w '{where}'"
        raise LocalFileError(f"{path}: refusing a configuration other users can change: {why} (it names commands "
                             "credproc runs)", hint=f"make it yours alone: {fix}")
    return parse(os.fspath(path), raw, include_loader=_load_include)


def _load_include(spec):
    from .core import include, paths

    if "url" in spec:
        return include.read_pinned(spec["url"], spec["sha256"], paths.cache_dir(), "[settings] include")
    return include.read_local(spec["path"], "[settings] include")
