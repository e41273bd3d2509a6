"""The TOML configuration: parsed, validated (every problem at once), resolved per role.

Nothing here touches the network. Key names are a contract (README, "Configuration reference").
"""

import json
import os
import re

from .cache import digest
from .errors import ConfigError

DEFAULT_REGION = "us-east-1"
DEFAULT_REFRESH_MARGIN = 20 * 60
DEFAULT_DURATION = 3600
# SDKs discard credentials with 15 minutes or less left, so a session must last longer than that
# to be usable at all; 20 minutes leaves a useful window.
MIN_DURATION = 20 * 60
MAX_DURATION = 43200
CHAINED_MAX_DURATION = 3600  # STS caps role chaining at one hour
SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}\Z")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
ROLE_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z")
MFA_SERIAL_RE = re.compile(r"^(arn:aws[\w-]*:iam::\d{12}:(mfa|u2f)/[\w+=,.@/-]+|GAHT[0-9A-Z]+|[\w+=/:,.@-]{9,256})\Z")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")

_MISSING = object()


def _load_toml(data):
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    return tomllib.loads(data)


def sanitize_session_name(value, fallback="credproc"):
    """Make any string a valid RoleSessionName: [\\w+=,.@-], 2 to 64 characters."""
    name = re.sub(r"[^\w+=,.@-]", "-", value or "", flags=re.ASCII).strip("-")[:64]
    if len(name) < 2:
        name = fallback
    return name


def default_session_name():
    try:
        import getpass

        user = getpass.getuser()
    except Exception:  # no login name (some containers)
        user = ""
    return sanitize_session_name(f"credproc-{user}" if user else "credproc")


class _Checker:
    """Collects every problem, each as `section.key: what is wrong`."""

    def __init__(self):
        self.problems = []

    def add(self, where, what):
        self.problems.append(f"{where}: {what}")

    def table(self, parent, key, where):
        value = parent.get(key, {})
        if not isinstance(value, dict):
            self.add(where, "must be a table")
            return {}
        return value

    def get(self, table, key, where, kind, default=None, required=False, choices=None, check=None, hint=""):
        value = table.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.add(f"{where}.{key}", f"is required{hint}")
            return default
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            names = {str: "a string", int: "an integer", list: "a list", dict: "a table", bool: "true or false"}
            self.add(f"{where}.{key}", f"must be {names.get(kind, kind.__name__)}, not {json.dumps(value, default=str)}")
            return default
        if choices and value not in choices:
            self.add(f"{where}.{key}", f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
            return default
        if check:
            problem = check(value)
            if problem:
                self.add(f"{where}.{key}", problem)
                return default
        return value

    def unknown(self, table, allowed, where):
        for key in table:
            if key not in allowed:
                self.add(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(allowed))})")


def _range(lo, hi, unit="seconds"):
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi} {unit}, not {v}"


def _match(regex, what):
    return lambda v: None if regex.match(v) else f"{v!r} is not {what}"


def _secure_url(v):
    from .http import check_url

    try:
        check_url(v, "")
    except ConfigError:
        return f"{v!r} must be an https:// URL (plain http only to a loopback address)"
    return None


def _readable_file(v):
    return None if os.path.isfile(os.path.expanduser(v)) else f"{v!r} is not a readable file"


def _ca_bundle(c, table, where):
    path = c.get(table, "ca_bundle", where, str, check=_readable_file)
    return os.path.expanduser(path) if path else None


def _str_list(v):
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


# Keys added after the fingerprint format was fixed: at these values they are left out, so a
# config that does not use them keeps the fingerprints (and the cached sessions) it had.
# iam_endpoint_url never shapes credentials (only `credproc keys rotate` uses it).
_UNFINGERPRINTED = {"keys": "profile", "keys_command": None, "iam_endpoint_url": _MISSING}


def _fingerprinted(idp):
    return {k: v for k, v in idp.items() if k not in _UNFINGERPRINTED or _UNFINGERPRINTED[k] not in (v, _MISSING)}


class Config:
    def __init__(self, path, raw_bytes, settings, idps, roles):
        self.path = path
        self.digest = digest(raw_bytes)
        self.settings = settings
        self.idps = idps
        self.roles = roles

    def role(self, name):
        if name not in self.roles:
            known = ", ".join(sorted(self.roles)) or "none"
            raise ConfigError(f"{self.path}: no role named {name!r} (configured roles: {known})",
                              hint=f"add a [role.{name}] table")
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
        chain = self.chain_of(name)
        material = {"settings": {k: self.settings.get(k) for k in ("region", "sts_endpoint_url")},
                    "chain": chain, "idp": _fingerprinted(self.idps[chain[-1]["idp"]])}
        return digest(json.dumps(material, sort_keys=True, default=str).encode())

    def idp_fingerprint(self, idp_name):
        material = {"settings": {k: self.settings.get(k) for k in ("region", "sts_endpoint_url")},
                    "idp": _fingerprinted(self.idps[idp_name])}
        return digest(json.dumps(material, sort_keys=True, default=str).encode())

    def region_for(self, role):
        return role.get("region") or self.settings.get("region") or DEFAULT_REGION

    def sts_endpoint_for(self, role):
        return role.get("sts_endpoint_url") or self.settings.get("sts_endpoint_url")


IDP_KEYS = {
    "iam": {"type", "profile", "keys", "keys_command", "iam_endpoint_url", "mfa_serial", "mfa_command", "session_duration"},
    "cas": {"type", "url", "username", "password_command", "mfa", "ca_bundle", "timeout"},
    "oidc": {"type", "issuer", "client_id", "client_secret", "scopes", "flow", "roles_claim", "session_name_claim",
             "open_browser", "redirect_path", "username", "password_command", "ca_bundle", "timeout"},
}
ROLE_KEYS = {"idp", "source_role", "arn", "duration", "session_name", "external_id", "source_identity",
             "tags", "transitive_tag_keys", "policy_arns", "region", "sts_endpoint_url"}
SETTINGS_KEYS = {"region", "sts_endpoint_url", "refresh_margin", "prompt", "federation_url", "cache_key",
                 "cache_key_fallback"}


def _check_iam_keys(c, idp, table, where):
    """Where the IAM user's keys come from (see keysource.py): keys = "profile" with profile,
    keys = "keyring", or keys_command."""
    idp["keys_command"] = c.get(table, "keys_command", where, str,
                                check=lambda v: None if v.strip() else "must not be empty")
    idp["keys"] = c.get(table, "keys", where, str, default="profile", choices=["profile", "keyring"])
    if idp["keys_command"] and "keys" in table:
        c.add(f"{where}.keys", "set either keys or keys_command, not both")
    by_profile = idp["keys"] == "profile" and not idp["keys_command"]
    idp["profile"] = c.get(table, "profile", where, str, required=by_profile,
                           hint=" (the AWS profile in ~/.aws/credentials holding the long-lived keys)")
    if not by_profile and "profile" in table:
        c.add(f"{where}.profile", "has no effect unless keys = \"profile\" (remove it)")
    idp["iam_endpoint_url"] = c.get(table, "iam_endpoint_url", where, str, check=_secure_url)


def _check_idp(c, name, table, where):
    kind = c.get(table, "type", where, str, required=True, choices=sorted(IDP_KEYS))
    idp = {"name": name, "type": kind}
    if kind is None:
        return idp
    c.unknown(table, IDP_KEYS[kind], where)
    if kind == "iam":
        _check_iam_keys(c, idp, table, where)
        idp["mfa_serial"] = c.get(table, "mfa_serial", where, str, check=_match(MFA_SERIAL_RE, "an MFA device ARN or serial"))
        idp["mfa_command"] = c.get(table, "mfa_command", where, str)
        idp["session_duration"] = c.get(table, "session_duration", where, int, default=43200,
                                        check=_range(MIN_DURATION, 129600))
        if idp["mfa_command"] and not idp["mfa_serial"]:
            c.add(f"{where}.mfa_command", "is set but mfa_serial is not (the code is sent with the MFA device serial)")
    elif kind == "cas":
        idp["url"] = c.get(table, "url", where, str, required=True, check=_secure_url,
                           hint=" (the CAS prefix, e.g. https://sso.example.edu/cas)")
        idp["username"] = c.get(table, "username", where, str)
        idp["password_command"] = c.get(table, "password_command", where, str)
        idp["mfa"] = c.get(table, "mfa", where, str, default="push", choices=["push", "passcode", "none"])
        idp["ca_bundle"] = _ca_bundle(c, table, where)
        idp["timeout"] = c.get(table, "timeout", where, int, default=120, check=_range(5, 600))
    elif kind == "oidc":
        idp["issuer"] = c.get(table, "issuer", where, str, required=True, check=_secure_url,
                              hint=" (e.g. https://example.okta.com)")
        idp["client_id"] = c.get(table, "client_id", where, str, required=True)
        idp["client_secret"] = c.get(table, "client_secret", where, str)
        idp["scopes"] = c.get(table, "scopes", where, list, default=["openid", "offline_access", "email"], check=_str_list)
        if idp["scopes"] is not None and "openid" not in idp["scopes"]:
            c.add(f"{where}.scopes", "must include \"openid\" (the ID token is what STS accepts)")
        idp["flow"] = c.get(table, "flow", where, str, default="device", choices=["device", "browser", "password"])
        idp["roles_claim"] = c.get(table, "roles_claim", where, str)
        idp["session_name_claim"] = c.get(table, "session_name_claim", where, str)
        idp["open_browser"] = c.get(table, "open_browser", where, bool, default=True)
        idp["redirect_path"] = c.get(table, "redirect_path", where, str, default="/callback",
                                     check=lambda v: None if v.startswith("/") else "must start with /")
        idp["username"] = c.get(table, "username", where, str)
        idp["password_command"] = c.get(table, "password_command", where, str)
        idp["ca_bundle"] = _ca_bundle(c, table, where)
        idp["timeout"] = c.get(table, "timeout", where, int, default=30, check=_range(5, 600))
    return idp


def _check_role(c, name, table, where, idps):
    c.unknown(table, ROLE_KEYS, where)
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


def parse(path, raw_bytes):
    """Config from the file's bytes; raises ConfigError listing every problem."""
    try:
        data = _load_toml(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except ValueError as e:  # tomllib.TOMLDecodeError subclasses ValueError
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    c = _Checker()
    for key in data:
        if key not in ("settings", "idp", "role"):
            c.add(key, "unknown section (known: settings, idp, role)")
    raw_settings = c.table(data, "settings", "settings")
    c.unknown(raw_settings, SETTINGS_KEYS, "settings")
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
    if settings["cache_key"] == "file" and "cache_key_fallback" in raw_settings:
        c.add("settings.cache_key_fallback", "has no effect unless cache_key = \"keyring\" (remove it)")
    idps = {name: _check_idp(c, name, table, where) for name, table, where in _named_tables(c, data, "idp")}
    roles = {name: _check_role(c, name, table, where, idps) for name, table, where in _named_tables(c, data, "role")}
    ignored = {
        "cas": ("session_name", "external_id", "source_identity", "tags", "transitive_tag_keys", "policy_arns", "region",
                "sts_endpoint_url"),
        "oidc": ("external_id", "source_identity", "tags", "transitive_tag_keys", "policy_arns"),
    }
    for name, role in roles.items():
        idp = idps.get(role.get("idp") or "")
        for key in ignored.get(idp and idp.get("type"), ()):
            if role.get(key) is not None:
                c.add(f"role.{name}.{key}", f"has no effect for a role over a {idp['type']} identity provider (remove it)")
        if idp and idp.get("type") == "oidc" and not role.get("arn") and not idp.get("roles_claim"):
            c.add(f"role.{name}.arn", f"is required: [idp.{idp['name']}] has no roles_claim to choose a role from")
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


def load(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"no configuration file at {path}",
                          hint="create it (see the README's configuration reference) or pass --config PATH") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    return parse(os.fspath(path), raw)
