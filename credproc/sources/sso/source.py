"""type = "sso": AWS IAM Identity Center (formerly AWS SSO). One sign-in (device flow or the
authorization code flow with PKCE, as the AWS CLI v2's `sso login`) is cached per idp as
"sso:NAME" and shared by every role over it; each role's credentials come from the portal's
GetRoleCredentials. Protocol and session: protocol.py; the provider: provider.py."""

import os
import re

from ..base import IdentitySource, Key, entry_json
from ..checks import ACCOUNT_ID_RE, PERMISSION_SET_RE, in_range, matches, secure_url, str_list

REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")


def _identity(name):
    return f"sso:{name}"


class SsoSource(IdentitySource):
    type_name = "sso"
    title = "AWS IAM Identity Center"
    example_idp = {"start_url": "https://my-org.awsapps.com/start", "region": "eu-west-1"}
    init_keys = ("start_url", "region", "flow")
    lists_roles = True
    example_role = {"account_id": "123456789012", "role_name": "AdministratorAccess"}
    keys = (
        Key("start_url", str, required=True, check=secure_url,
            hint=" (the AWS access portal URL, e.g. https://my-org.awsapps.com/start)",
            type_doc="https URL (http only to loopback)",
            doc="The AWS access portal URL. It is the issuer of the client registration; its host never decides the region."),
        Key("region", str, required=True, check=matches(REGION_RE, "an AWS region (e.g. eu-west-1)"),
            hint=" (the IAM Identity Center region, the AWS CLI's sso_region)", type_doc="AWS region",
            doc="The Identity Center region (the AWS CLI's `sso_region`): the endpoints are "
                "`oidc.REGION` and `portal.sso.REGION` in the region's partition (China and GovCloud included)."),
        Key("flow", str, default="browser", choices=["browser", "device"],
            doc="Authorization code with PKCE (S256) and a random `state`, answered on a one-shot listener at "
                "`http://127.0.0.1:PORT/oauth/callback`, as the AWS CLI v2 does; or the device flow (a URL and a code "
                "to open on any device: SSH, headless machines)."),
        Key("redirect_port", int, check=in_range(1024, 65535, "(a TCP port)"), type_doc="integer, 1024..65535",
            default_doc="a free port each time",
            doc="`flow = \"browser\"`: the loopback port of `http://127.0.0.1:PORT/oauth/callback` (a proxy or "
                "firewall rule that allows only one). If another program holds it, the sign-in stops at once and "
                "no browser is opened (exit 3)."),
        Key("scopes", list, default=["sso:account:access"], check=str_list,
            doc="Scopes of the client registration; `sso:account:access` is what earns a refresh token."),
        Key("aws_cli_cache", str, default="read", choices=["read", "share", "off"],
            doc="`read`: use a valid token `aws sso login` left in `~/.aws/sso/cache` when credproc has none; "
                "`share`: also write credproc's sign-in there in the CLI's format (the idp name is the sso-session "
                "name), the newer of the two copies winning; `off`: never touch it."),
        Key("oidc_endpoint_url", str, check=secure_url, type_doc="https URL (http only to loopback)",
            default_doc="https://oidc.REGION.amazonaws.com", doc="Override of the sso-oidc endpoint (private links, tests)."),
        Key("portal_endpoint_url", str, check=secure_url, type_doc="https URL (http only to loopback)",
            default_doc="https://portal.sso.REGION.amazonaws.com", doc="Override of the portal endpoint."),
    )
    role_keys = (
        Key("account_id", str, check=matches(ACCOUNT_ID_RE, "a 12-digit AWS account id"),
            doc="The AWS account; without it, a menu of the accounts the portal lists."),
        Key("role_name", str, check=matches(PERMISSION_SET_RE, "a permission set name (letters, digits, +=,.@_-)"),
            doc="The permission set name; without it, a menu of the account's roles."),
    )
    # GetRoleCredentials takes none of these (the permission set decides the session)
    ignored_role_keys = ("session_name", "external_id", "source_identity", "tags", "transitive_tag_keys",
                         "policy_arns", "region", "sts_endpoint_url")
    role_calls_sts = False
    # added after the first release: configs without it keep their fingerprints (cached sign-ins)
    unfingerprinted = {"redirect_port": None}

    def cross_check(self, c, idp, table, where):
        if "redirect_port" in table and idp.get("flow") != "browser":
            c.add(f"{where}.redirect_port", "works only with flow = \"browser\" (remove it)")

    def check_role(self, c, role, idp, where):
        if role.get("arn"):
            c.add(f"{where}.arn", "has no effect for a role over a sso identity provider (use account_id and role_name)")

    def build_chain(self, ctx, idp, role, session_name, region, endpoint):
        from .protocol import SsoSession
        from .provider import SsoRoleProvider

        return SsoRoleProvider(ctx, SsoSession(ctx, idp), role)

    # -- credproc import -------------------------------------------------------------------------
    def adopt_profile(self, name, profile, aws):
        """sso_session / sso_start_url profiles (the AWS CLI's) and granted's granted_sso_* ones."""
        if profile.get("role_arn"):
            return None  # a role assumed from an sso profile: a source_role chain, the command's part
        prefix = "granted_sso_" if profile.get("granted_sso_start_url") else "sso_"
        if prefix == "sso_" and not (profile.get("sso_session") or profile.get("sso_start_url")):
            return None
        session_name = profile.get("sso_session") if prefix == "sso_" else None
        if session_name:
            session = aws.sso_sessions.get(session_name)
            if session is None:
                return f"names [sso-session {session_name}], which is not in the file"
            start, region, scopes = (session.get("sso_start_url"), session.get("sso_region"),
                                     session.get("sso_registration_scopes"))
        else:
            start, region, scopes = (profile.get(prefix + "start_url"), profile.get(prefix + "region"),
                                     profile.get(prefix + "registration_scopes"))
        if not (start and region):
            return "an IAM Identity Center profile without a start URL and region"
        if not REGION_RE.match(region) or not start.startswith("https://"):
            return f"IAM Identity Center region {region!r} or start URL {start!r} is not usable"
        account, role = profile.get(prefix + "account_id"), profile.get(prefix + "role_name")
        idp = {"start_url": start, "region": region}
        if scopes:
            idp["scopes"] = [x.strip() for x in scopes.split(",") if x.strip()]
        host = start.split("://", 1)[1].split("/")[0].split(".")[0] or "portal"
        result = {"key": (self.type_name, start, region), "idp_name": session_name or f"sso-{host}", "idp": idp}
        if not (account and role):
            return {**result, "role": None}  # a sign-in only profile (aws sso login): the idp, no role
        if not ACCOUNT_ID_RE.match(account) or not PERMISSION_SET_RE.match(role):
            return f"account {account!r} or permission set {role!r} is not usable"
        return {**result, "role": {"account_id": account, "role_name": role}}

    # -- status ------------------------------------------------------------------------------------
    def sessions(self, cfg, store, idp, now):
        from ...core.credentials import format_expiration

        name = idp["name"]
        entry = store.get(_identity(name))
        state = entry_json(entry)
        token_exp = state.get("expires_at") if state.get("access_token") and isinstance(state.get("expires_at"), int) else None
        reg = state.get("registration") if isinstance(state.get("registration"), dict) else {}
        reg_exp = reg.get("expires_at") if isinstance(reg.get("expires_at"), int) else None
        refreshable = reg_exp if state.get("refresh_token") and reg_exp and reg_exp > now else None
        if entry is None:
            st = "unreadable" if store.present(_identity(name)) else "none"
        elif entry.fingerprint != cfg.idp_fingerprint(name):
            st = "stale"
        elif (token_exp and token_exp > now) or refreshable:
            st = "valid"
        else:
            st = "expired"
        return [{"identity": _identity(name), "idp": name, "type": self.type_name, "kind": "identity center sign-in",
                 "state": st, "expires_at": format_expiration(entry.expires_at) if entry else None,
                 "seconds_left": entry.expires_at - now if entry else None,
                 "access_token_until": format_expiration(token_exp) if token_exp and token_exp > now else None,
                 "refreshable_until": format_expiration(refreshable) if refreshable else None,
                 "start_url": idp["start_url"]}]

    def session_columns(self, session):
        detail = (f"access token valid until {session['access_token_until'] or '-'}; "
                  f"refreshable until {session['refreshable_until'] or '-'}")
        return f"{session['kind']} at {session['start_url']}", detail

    # -- logout ------------------------------------------------------------------------------------
    def logout(self, cfg, store, idp, say, remove, new_context):
        """Remove the sign-in (and the shared CLI token file in "share" mode) first, then end it at the
        portal (Logout). True if there was something to remove."""
        from .protocol import CliTokenCache, SsoSession

        identity = _identity(idp["name"])
        where = f"the IAM Identity Center sign-in at {idp['start_url']}"
        shared = CliTokenCache(idp)
        had_shared = shared.mode == "share" and os.path.exists(shared.shared_path())
        entry = store.get(identity)
        if entry is None or entry.fingerprint != cfg.idp_fingerprint(idp["name"]):
            removed = remove(identity, where)
            shared.delete()
            if removed or had_shared:
                why = "unreadable" if entry is None else "made from other settings"
                say(f"removed {where} (not ended at the portal: {why})")
                return True
            return False
        ended = SsoSession(new_context(), idp).logout()
        if ended:
            say(f"ended (portal Logout) and removed {where}")
        elif ended is None:
            say(f"removed {where} (no token of it still worked at the portal)")
        else:
            say(f"removed {where} from this machine, but it was NOT ended at the portal: a copy of its tokens may "
                f"still work there until they expire; sign out in the AWS access portal ({idp['start_url']})")
        return True

    # -- doctor ------------------------------------------------------------------------------------
    def doctor_probes(self, idp):
        from .protocol import endpoints

        oidc_url, portal_url = endpoints(idp["region"])
        return [("the Identity Center OIDC endpoint", idp.get("oidc_endpoint_url") or oidc_url, None),
                ("the Identity Center portal", idp.get("portal_endpoint_url") or portal_url, None)]


SOURCE = SsoSource()
