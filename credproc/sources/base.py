"""The interface every identity source implements: one subclass of IdentitySource per
`[idp.NAME] type = "..."`, in its own package credproc/sources/<type>/ (source.py defines SOURCE),
listed once in credproc/sources/__init__.py (SOURCES).

A source module must stay cheap to import (config parsing imports it): stdlib, .checks and .base
at the top; providers, boto3, HTTP and protocol code only inside the hooks that need them. The
cache-hit fast path imports none of this package.

Vocabulary used below:
  idp     the validated dict of one [idp.NAME] table, as returned by `parse_idp`: every key of
          `keys` present (None when absent without default), plus "name" and "type".
  role    the validated dict of one [role.NAME] table (see config.ROLE_KEYS): "name", "idp" or
          "source_role", "arn", "duration", "session_name", "region", ... (None when not set).
  cfg     a config.Config: .settings, .idps, .roles, .path, .chain_of(name), .region_for(role),
          .sts_endpoint_for(role), .fingerprint(role_name), .idp_fingerprint(idp_name).
  ctx     a context.Context: .config, .store, .terminal, .now(), .lock_deadline.
  store   a store.EncryptedFileCache: .get(identity) -> cache.Entry or None, .path_for(identity),
          .delete(identity), .cache_dir.
"""

import json

from .checks import MISSING

_TYPE_NAMES = {str: "string", int: "integer", bool: "bool", list: "list of strings", dict: "table of strings"}



# the cache identities of a role's credentials and of an idp's own entry (a sign-in, a session)
def role_identity(name):
    return f"role:{name}"


def idp_identity(name):
    return f"idp:{name}"


class Key:
    """One key of an [idp.NAME] table: how it is checked AND how the README documents it (the
    configuration reference tables are generated from these; see credproc/sources/readme.py).

    name      the TOML key
    kind      Python type the TOML value must have: str, int, bool, list or dict
    doc       the README "meaning" cell (Markdown, one line)
    default   the value when the key is absent (None: absent stays None)
    required  absent is a problem ("is required" + hint)
    choices   allowed values (checked after the type)
    check     callable(value) -> None or the problem text (see checks.in_range, matches, ...)
    hint      appended to "is required" (e.g. " (the CAS prefix, e.g. https://...)")
    convert   callable(value) -> value, applied to a present, valid value (e.g. os.path.expanduser)
    type_doc  README "type" cell; default derived from kind/choices
    default_doc  README "default" cell; default derived from required/default
    """

    __slots__ = ("name", "kind", "doc", "default", "required", "choices", "check", "hint", "convert",
                 "type_doc", "default_doc")

    def __init__(self, name, kind, doc, default=None, required=False, choices=None, check=None, hint="",
                 convert=None, type_doc=None, default_doc=None):
        self.name = name
        self.kind = kind
        self.doc = doc
        self.default = default
        self.required = required
        self.choices = choices
        self.check = check
        self.hint = hint
        self.convert = convert
        self.type_doc = type_doc
        self.default_doc = default_doc

    def readme_type(self):
        if self.type_doc:
            return self.type_doc
        if self.choices:
            quoted = [f'`"{c}"`' for c in self.choices]
            return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        return _TYPE_NAMES.get(self.kind, self.kind.__name__)

    def readme_default(self):
        if self.default_doc is not None:
            return self.default_doc
        if self.required:
            return "required"
        if self.default is None:
            return "none"
        return f"`{json.dumps(self.default)}`"


NEVER = object()  # see IdentitySource.unfingerprinted


class IdentitySource:
    """One kind of identity source. Subclass it, set the class attributes, override the hooks that
    apply; the defaults below are right for a source with no cached sign-in and nothing to probe.

    Everything type-specific lives in the subclass: config.py, chain.py and the commands call only
    these hooks (through credproc.sources.source_for(idp)), and never compare idp["type"] to a name.
    Hooks get plain data and the objects named in the module docstring, make no network call unless
    the docstring says so, and never print: they return what the command prints.
    """

    #: the `type = "..."` value, e.g. "iam"
    type_name = None
    #: what the source is, e.g. "long-lived IAM user keys"; the README's configuration reference
    #: has the heading  ### `[idp.NAME]` with `type = "iam"`: long-lived IAM user keys
    title = ""
    #: Key objects in README order (without "type", which every source has)
    keys = ()
    #: role keys that are configuration errors for a role straight over this source (they would
    #: have no effect); reported as "role.R.KEY: has no effect for a role over a T identity provider"
    ignored_role_keys = ()
    #: Key objects for [role.NAME] keys only this source understands (e.g. sso's account_id and
    #: role_name), checked like idp keys and present in the role dict of a role straight over it;
    #: for any other role they are unknown keys
    role_keys = ()
    #: False when the identity provider calls STS itself (CAS): `doctor` then probes no STS
    #: endpoint for roles straight over it
    role_calls_sts = True
    #: {key: value} left out of the fingerprints (config.Config.fingerprint) when the key has that
    #: value, or always when the value is NEVER: keys added after a source shipped, so that configs
    #: not using them keep their fingerprints (and their cached sessions), and keys that never
    #: shape credentials
    unfingerprinted = {}
    #: True when the idp holds an IAM user's long-lived keys (`credproc keys` manages them)
    holds_user_keys = False
    #: a minimal valid [idp.NAME] table (without "type") and the keys of a minimal valid role over
    #: it (without "idp"): documentation, and what tests/idp_contract.py parses and builds. No
    #: network or file is touched when they are parsed and the chain is built.
    example_idp = {}
    example_role = {"arn": "arn:aws:iam::123456789012:role/Example"}
    #: the keys `credproc init` asks about, in order (each is also its --KEY flag): the facts a first
    #: configuration needs; empty: the required keys
    init_keys = ()
    #: True when the source can list every role a sign-in reaches (`credproc sso sync`): `credproc
    #: init` then offers to write them all instead of asking for one role
    lists_roles = False

    # -- configuration (config.parse) ------------------------------------------------------------
    def key_names(self):
        """Every key allowed in the table, "type" included."""
        return {"type"} | {k.name for k in self.keys}

    def parse_idp(self, c, name, table, where):
        """Validate one [idp.NAME] table of this type. c: a checks.Checker (add every problem, raise
        nothing); table: the raw TOML dict; where: "idp.NAME". Unknown keys are already reported.
        Returns the idp dict: {"name", "type", every key of `keys`}. The default checks each Key in
        order, then calls `cross_check`; override only to do more."""
        idp = {"name": name, "type": self.type_name}
        for key in self.keys:
            value = c.get(table, key.name, where, key.kind, default=key.default, required=key.required,
                          choices=key.choices, check=key.check, hint=key.hint)
            if key.convert and value is not None and table.get(key.name, MISSING) is not MISSING:
                value = key.convert(value)
            idp[key.name] = value
        self.cross_check(c, idp, table, where)
        return idp

    def cross_check(self, c, idp, table, where):
        """Checks between keys of one idp table (e.g. mfa_command needs mfa_serial). c.add(...) each
        problem as (f"{where}.KEY", "what is wrong"). Returns nothing."""

    def check_role(self, c, role, idp, where):
        """Checks of a role straight over this idp (role["idp"] == idp["name"]) beyond
        `ignored_role_keys`, e.g. "arn is required unless roles_claim". where: "role.NAME".
        Returns nothing; c.add(...) each problem."""

    # -- credentials (chain.build; no network) -------------------------------------------------
    def build_chain(self, ctx, idp, role, session_name, region, endpoint):
        """The provider (anything with .retrieve() -> Credentials and .describe())
        giving the credentials of `role`, a role straight over `idp`. session_name: the resolved
        RoleSessionName; region, endpoint: the role's STS region and endpoint URL (or None).
        chain.build wraps the result in the role's CachedProvider; cache any session shared by
        every role of the idp yourself (CachedProvider with identity idp_identity(name) and
        cfg.idp_fingerprint(name)). Must make no network call and prompt for nothing."""
        raise NotImplementedError

    # -- status ------------------------------------------------------------------------------------
    def sessions(self, cfg, store, idp, now):
        """The sign-in sessions of this idp that `credproc status` lists (read-only: no lock, no
        refresh, no network, no secret). A list of dicts, each at least:
          {"identity": the cache identity (e.g. "idp:NAME", "oidc:NAME"), "idp": NAME,
           "type": self.type_name, "kind": short text ("mfa session", "oidc sign-in"),
           "state": one of "valid", "refresh due", "expired", "stale", "none", "unreadable",
           "expires_at": "YYYY-mm-ddTHH:MM:SSZ" or None, "seconds_left": int or None}
        plus any source-specific keys (JSON-serialisable, never secret); `status --json` prints
        the dicts as they are, and their keys may be added to but never renamed or removed.
        entry_state() and entry_times() below compute the common fields. Default: none."""
        return []

    def session_columns(self, session):
        """(WHAT, DETAIL) cells of the status table for one dict returned by `sessions`."""
        return session["kind"], ""

    # -- logout ------------------------------------------------------------------------------------
    def logout(self, cfg, store, idp, say, remove, new_context):
        """Remove (and where the IdP offers it, revoke) this idp's sign-in session. say(line):
        print one line per thing removed (never a secret). remove(identity, what) -> bool deletes
        one cache entry under its lock (what: e.g. "the MFA session of idp 'corp'", for lock
        messages). new_context() -> a non-interactive context.Context for revocation calls (the
        only hook allowed network calls here; on failure remove anyway, log.warn, and go on).
        Returns True if something was removed. Role credentials and role choices are removed by
        the command itself. Default: nothing cached beyond the roles' credentials."""
        return False

    # -- doctor ------------------------------------------------------------------------------------
    def doctor_checks(self, cfg, idp):
        """Local checks of this idp (no network), each a commands.doctor Check (use doctor.ok,
        doctor.fail, doctor.warn, imported inside the hook). E.g. the iam profile holds keys."""
        return []

    def doctor_probes(self, idp):
        """Network reachability probes doctor runs in parallel (5-second timeouts, any HTTP answer
        counts): a list of (what, url, ca_bundle) such as ("the CAS server", idp["url"], None).
        Returning them (rather than probing) keeps this hook free of network calls."""
        return []

    def doctor_network_checks(self, cfg, idp):
        """Network checks beyond reachability that doctor runs in parallel with the probes: a list of
        (function, args...) tuples; each function makes its own requests (5-second timeouts) and
        returns a doctor Check. E.g. SAML: the flow's first step answers as it should. Default: none."""
        return []

    def idp_sts_endpoints(self, cfg, idp):
        """STS endpoint URLs this idp's own session calls (not per-role ones), for doctor's probe
        list. E.g. the IAM MFA session uses [settings]' region/endpoint. Default: none."""
        return []

    def min_remaining(self, role):
        """Seconds that must be left on the credentials of `role` (straight over this idp) for them
        to be served; `status` reports them expired below that. The providers the chain builds
        say the same through their `min_remaining` attribute (see cached.CachedProvider). None:
        the SDKs' usual 15 minutes (core.credentials.MIN_REMAINING)."""
        return None

    # -- credproc init -------------------------------------------------------------------------
    def init_suggest(self, key_name, idp, settings):
        """`credproc init`: a suggested value for key_name (one of init_keys) given the keys answered
        so far (idp, without "type") and the [settings] keys (region, sts_endpoint_url), or None. The one hook allowed a network call outside doctor
        and the chain (5-second timeouts; any failure is None), e.g. the IAM user's MFA device from
        ListMFADevices. Default: none."""
        return None

    # -- credproc import -----------------------------------------------------------------------
    def adopt_profile(self, name, profile, aws):
        """`credproc import`: this source standing in for an AWS config profile. name: the profile's
        name; profile: its {key: value} (keys lowercased); aws: the files read, with .sso_sessions
        ({name: {key: value}} of the [sso-session X] sections), .credentials ({profile: {key: value}}
        of ~/.aws/credentials) and .has_static_keys(name). Returns None when the profile is not of this
        source's kind; a str saying why this source cannot express it; or a dict:
          {"key": what identifies the idp (profiles with equal keys share one idp),
           "idp_name": the idp's suggested name, "idp": the [idp.*] keys (without "type"),
           "role": the role keys beyond those of a role_arn (arn, duration, ...; the command adds them),
           "keys_profile": the profile holding plain-text keys the idp reads, or absent}
        No file is read, nothing written. Default: not this source's kind."""
        return None

    # -- other commands ----------------------------------------------------------------------
    def console_refusal(self, cfg, role, idp):
        """A ConfigError (returned, not raised) when `credproc console` cannot sign in as `role`
        (straight over idp), checked before any prompt; None when it can."""
        return None


# -- helpers for `sessions` -------------------------------------------------------------------------
def entry_state(entry, fingerprint, now, min_remaining=None, present=False):
    """The status state of a cache.Entry (or None) against the fingerprint it must carry. present:
    a file is there although there is no entry (it does not decrypt): "unreadable", not "none".
    min_remaining: the source's floor (default MIN_REMAINING)."""
    from ..core.credentials import MIN_REMAINING  # never served with this much or less left

    if entry is None:
        return "unreadable" if present else "none"
    if entry.fingerprint != fingerprint:
        return "stale"
    if entry.expires_at - now <= (MIN_REMAINING if min_remaining is None else min_remaining):
        return "expired"
    if not entry.fresh(now):  # past its refresh time, or written "in the future" (the clock went back)
        return "refresh due"
    return "valid"


def entry_json(entry):
    """The JSON object a source keeps in a cache.Entry (a sign-in's state), or {} without an entry or
    when its body is not a JSON object (status and logout must not fail on a damaged entry)."""
    if entry is None:
        return {}
    try:
        state = json.loads(entry.body)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def entry_times(entry, now):
    """(expires_at as "YYYY-mm-ddTHH:MM:SSZ", seconds left), or (None, None) without an entry."""
    if entry is None:
        return None, None
    from ..core.credentials import format_expiration

    return format_expiration(entry.expires_at), entry.expires_at - now
