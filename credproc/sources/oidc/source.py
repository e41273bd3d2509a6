"""type = "oidc": OpenID Connect sign-in (device, browser or password flow) whose ID token goes to
AssumeRoleWithWebIdentity. The sign-in (refresh token, latest ID token) is cached per idp as
"oidc:NAME" and shared by every role over it. Protocol code: protocol.py beside this file; the
provider: provider.py."""

import json
import os

from ..base import IdentitySource, Key, entry_json, entry_times
from ..checks import all_of, in_range, readable_file, secure_url, str_list


def _has_openid(v):
    return None if "openid" in v else "must include \"openid\" (the ID token is what STS accepts)"


def _identity(name):
    return f"oidc:{name}"


class OidcSource(IdentitySource):
    type_name = "oidc"
    title = "OpenID Connect"
    example_idp = {"issuer": "https://example.okta.com", "client_id": "0oa1b2c3d4"}
    init_keys = ("issuer", "client_id", "flow")
    keys = (
        Key("issuer", str, required=True, check=secure_url, hint=" (e.g. https://example.okta.com)",
            type_doc="https URL (http only to loopback)",
            doc="The issuer; must equal the discovery document's `issuer`."),
        Key("client_id", str, required=True,
            doc="The app registration's client id; every ID token's `aud` must carry it."),
        Key("client_secret", str,
            doc="Only for confidential clients (HTTP Basic, or the form where the IdP supports only that). "
                "Prefer a public client for a CLI."),
        Key("scopes", list, default=["openid", "offline_access", "email"], check=all_of(str_list, _has_openid),
            doc="Must include `openid`. `offline_access` is what gets a refresh token from most IdPs."),
        Key("flow", str, default="device", choices=["device", "browser", "password"],
            doc="RFC 8628 device flow (polls every 5 s unless told otherwise, `slow_down` adds 5 s); authorization "
                "code with PKCE (S256), `state` and `nonce`, a one-shot listener on 127.0.0.1 with a random port "
                "(RFC 8252), 5 minutes to finish; or the resource owner password grant, for IdPs that still allow it."),
        Key("roles_claim", str,
            doc="ID token claim listing role ARNs (a list, or a string separated by commas or spaces), used when "
                "the role has no `arn`: one role is taken, several give a menu (remembered; pin with `arn`)."),
        Key("session_name_claim", str, default_doc="email, preferred_username, sub",
            doc="Claim for the RoleSessionName, made valid for STS (2-64 of letters, digits, `+=,.@_-`). "
                "A role's `session_name` wins."),
        Key("open_browser", bool, default=True,
            doc="Open the sign-in page where a graphical browser can be (a display, macOS, Windows, or "
                "`$BROWSER`); the URL is always shown on the terminal."),
        Key("redirect_path", str, default="/callback", check=lambda v: None if v.startswith("/") else "must start with /",
            doc="Path of the loopback redirect URI: register `http://127.0.0.1/callback` (any port) with the IdP."),
        Key("redirect_port", int, check=in_range(1024, 65535, "(a TCP port)"), type_doc="integer, 1024..65535",
            default_doc="a free port each time",
            doc="`flow = \"browser\"`: the loopback port, for providers that compare redirect URIs exactly "
                "(register `http://127.0.0.1:PORT` + `redirect_path` verbatim). If another program holds the "
                "port, the sign-in stops at once and no browser is opened (exit 3)."),
        Key("username", str, default_doc="prompt", doc="For `flow = \"password\"`."),
        Key("password_command", str, default_doc="prompt",
            doc="For `flow = \"password\"`: a command that prints the password (first line), run without a shell."),
        Key("ca_bundle", str, check=readable_file, convert=os.path.expanduser, type_doc="path",
            default_doc="system trust store",
            doc="PEM file of your organisation's CA. `~` is expanded and the file must exist."),
        Key("timeout", int, default=30, check=in_range(5, 600), type_doc="integer, 5..600",
            doc="Seconds for each HTTP request to the IdP, from connecting to the last byte of the answer."),
    )
    # added after the first release: configs without it keep their fingerprints (cached sessions)
    unfingerprinted = {"redirect_port": None}

    def cross_check(self, c, idp, table, where):
        if "redirect_port" in table and idp.get("flow") != "browser":
            c.add(f"{where}.redirect_port", "works only with flow = \"browser\" (remove it)")

    # STS is called with AssumeRoleWithWebIdentity, which takes none of these
    ignored_role_keys = ("external_id", "source_identity", "tags", "transitive_tag_keys", "policy_arns")

    def check_role(self, c, role, idp, where):
        if not role.get("arn") and not idp.get("roles_claim"):
            c.add(f"{where}.arn", f"is required: [idp.{idp['name']}] has no roles_claim to choose a role from")

    def build_chain(self, ctx, idp, role, session_name, region, endpoint):
        from .provider import OidcSession, WebIdentityProvider

        return WebIdentityProvider(ctx, OidcSession(ctx, idp), role, region, endpoint)

    # -- status ------------------------------------------------------------------------------------
    def sessions(self, cfg, store, idp, now):
        name = idp["name"]
        identity = _identity(name)
        entry = store.get(identity)
        state = entry_json(entry)
        exp = (state.get("claims") or {}).get("exp") if isinstance(state.get("claims"), dict) else None
        id_left = int(exp) - now if isinstance(exp, (int, float)) and state.get("id_token") else None
        has_refresh = bool(state.get("refresh_token"))
        if entry is None:
            st = "unreadable" if store.present(_identity(name)) else "none"
        elif entry.fingerprint != cfg.idp_fingerprint(name):
            st = "stale"
        elif entry.expires_at <= now or not (has_refresh or (id_left is not None and id_left > 0)):
            st = "expired"
        elif state.get("refresh_gave_no_id_token") and not (id_left is not None and id_left > 0):
            st = "expired"  # the IdP refreshes without an ID token: a sign-in is needed (provider.NO_ID_TOKEN)
        else:
            st = "valid"
        expires_at, left = entry_times(entry, now)
        refresh_until = state.get("refresh_expires_at")
        known = not has_refresh or isinstance(refresh_until, (int, float))
        if has_refresh:  # as long as the IdP said; unknown (not credproc's retention limit) if it did not
            from ...core.credentials import format_expiration

            expires_at, left = (format_expiration(refresh_until), int(refresh_until) - now) if known else (None, None)
        return [{"identity": identity, "idp": name, "type": self.type_name, "kind": "oidc sign-in", "state": st,
                 "expires_at": expires_at, "seconds_left": left, "refresh_token": has_refresh,
                 "id_token_seconds_left": id_left, "issuer": idp["issuer"], "lifetime_known": known}]

    def session_columns(self, session):
        from ...core.text import format_left

        left = session["id_token_seconds_left"]
        if left is None:
            id_token = "none"
        elif left > 0:
            id_token = f"{format_left(left)} left"
        else:
            id_token = "expired"
        detail = f"refresh token: {'yes' if session['refresh_token'] else 'no'}; ID token: {id_token}"
        return f"{session['kind']} at {session['issuer']}", detail

    # -- logout ------------------------------------------------------------------------------------
    def logout(self, cfg, store, idp, say, remove, new_context):
        """Revoke and remove the sign-in, and the IdP's cached metadata (public, but nothing of a
        signed-out idp stays). True if there was a sign-in."""
        from .protocol import metadata_identity

        removed = self._revoke(cfg, store, idp, say, remove, new_context)
        store.delete(metadata_identity(idp["issuer"]))
        return removed

    def _revoke(self, cfg, store, idp, say, remove, new_context):
        from ...core import log
        from ...core.errors import CredprocError
        from .provider import OidcSession

        identity = _identity(idp["name"])
        entry = store.get(identity)
        if entry is None:  # nothing we can read: remove whatever file is there
            if remove(identity, f"a sign-in at {idp['issuer']}"):
                say(f"removed the sign-in at {idp['issuer']} (unreadable; not revoked)")
                return True
            return False
        where = f"the sign-in at {idp['issuer']}"
        if entry.fingerprint != cfg.idp_fingerprint(idp["name"]):
            remove(identity, where)
            say(f"removed {where} (made from other settings; not revoked)")
            return True
        session = OidcSession(new_context(), idp)
        try:
            revoked = session.revoke()
        except CredprocError as e:
            store.delete(identity)
            log.warn(f"could not revoke the refresh token at {idp['issuer']}: {e}; removed it from this machine anyway "
                     "(it stays valid at the IdP until it expires)")
            say(f"removed {where} (not revoked: see the warning)")
            return True
        if revoked:
            say(f"revoked and removed {where}")
            return True
        has_token = _has_refresh_token(entry)
        endpoint = None
        if has_token:
            try:
                endpoint = session.issuer.metadata()["discovery"].get("revocation_endpoint")
            except CredprocError:
                endpoint = None
        if not has_token:
            say(f"removed {where} (it held no refresh token)")
        elif not endpoint:
            say(f"removed {where} (the IdP offers no token revocation; the refresh token lapses when it expires)")
        else:
            log.warn(f"the revocation endpoint of {idp['issuer']} did not confirm the revocation; removed the sign-in "
                     "from this machine anyway")
            say(f"removed {where} (revocation not confirmed: see the warning)")
        return True

    # -- doctor ------------------------------------------------------------------------------------
    def doctor_probes(self, idp):
        return [("the OIDC discovery document", idp["issuer"].rstrip("/") + "/.well-known/openid-configuration",
                 idp.get("ca_bundle"))]


def _has_refresh_token(entry):
    try:
        return bool(json.loads(entry.body).get("refresh_token"))
    except (ValueError, AttributeError):
        return False


SOURCE = OidcSource()
