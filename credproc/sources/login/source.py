"""type = "login": the AWS console sign-in of `aws login` (AWS Sign-In's "login for AWS local
development": an IAM user with password and MFA or a security key, root, or a federated console
session). One sign-in is cached per idp as "login:NAME" and shared by every role over it; a role
without `arn` gets the console identity's own (15-minute) credentials, one with `arn` assumes that
role from them. Protocol and session: protocol.py; the provider: provider.py."""

import re

from ..base import IdentitySource, Key, entry_json
from ..checks import matches, secure_url

REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
LOGIN_SESSION_RE = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/:*-]{1,1900}\Z")  # as protocol.py
# without arn the role is the console identity itself: nothing of an AssumeRole applies
_ASSUME_ROLE_KEYS = ("session_name", "external_id", "source_identity", "tags", "transitive_tag_keys", "policy_arns")


def _identity(name):
    return f"login:{name}"


class LoginSource(IdentitySource):
    type_name = "login"
    title = "the AWS console sign-in of `aws login`"
    example_idp = {"region": "eu-west-1"}
    keys = (
        Key("region", str, check=matches(REGION_RE, "an AWS region (e.g. eu-west-1)"), type_doc="AWS region",
            default_doc="`[settings] region`",
            doc="The sign-in region: the endpoint is `https://REGION.signin.aws.amazon.com` (China and GovCloud in "
                "their partitions), as for `aws login`."),
        Key("flow", str, default="browser", choices=["browser", "remote"],
            doc="`browser`: authorization code with PKCE and a random `state`, answered on a one-shot listener at "
                "`http://127.0.0.1:PORT/oauth/callback` (the browser is given a one-shot local link, so the URL's "
                "state never appears on a command line); `remote` (SSH, headless): the URL is printed and the code "
                "the browser shows is pasted back, its `state` checked, as `aws login --remote`."),
        Key("aws_cli_cache", str, default="read", choices=["read", "share", "off"],
            doc="`read`: use valid credentials a sign-in of `aws login` left in `~/.aws/login/cache` (never its refresh "
                "token, never writing the file); `share`: read and write the CLI's file in its exact format, the newer "
                "copy winning, so a CLI profile with `login_session` and credproc use one sign-in; `off`: never touch it."),
        Key("login_session", str, check=matches(LOGIN_SESSION_RE, "a login session ARN (arn:aws:iam::123456789012:user/Name)"),
            type_doc="ARN",
            doc="Pins the sign-in: the identity's ARN as `aws login` writes it into a profile. A sign-in as anyone else "
                "fails; without it, the CLI's file is used only when there is exactly one."),
        Key("signin_endpoint_url", str, check=secure_url, type_doc="https URL (http only to loopback)",
            default_doc="https://REGION.signin.aws.amazon.com", doc="Override of the sign-in endpoint (tests)."),
    )
    unfingerprinted = {"login_session": None, "signin_endpoint_url": None}

    def check_role(self, c, role, idp, where):
        if role.get("arn"):
            return
        for key in _ASSUME_ROLE_KEYS:
            if role.get(key):
                c.add(f"{where}.{key}", "has no effect without arn (a role over a login identity provider without arn "
                                        "is the console identity's own credentials)")

    def min_remaining(self, role):
        from .protocol import SERVE_LEFT

        return None if role.get("arn") else SERVE_LEFT  # with arn: AssumeRole's credentials, the usual rule

    @staticmethod
    def _region(cfg, idp):
        return idp.get("region") or cfg.region_for({})

    def build_chain(self, ctx, idp, role, session_name, region, endpoint):
        from ..assume_role import AssumeRoleProvider
        from .protocol import LoginSession
        from .provider import LoginProvider

        session = LoginProvider(LoginSession(ctx, idp, self._region(ctx.config, idp)))
        if not role.get("arn"):
            return session
        return AssumeRoleProvider(session, role, session_name, region, endpoint, f"the console sign-in of idp {idp['name']}")

    # -- status ------------------------------------------------------------------------------------
    def sessions(self, cfg, store, idp, now):
        from ...core.credentials import format_expiration
        from .protocol import session_summary

        name = idp["name"]
        entry = store.get(_identity(name))
        state = entry_json(entry)
        summary = session_summary(state, now)
        if entry is None:
            st = "none"
        elif entry.fingerprint != cfg.idp_fingerprint(name):
            st = "stale"
        elif summary["credentials_until"] or summary["refreshable_until"]:
            st = "valid"
        else:
            st = "expired"
        return [{"identity": _identity(name), "idp": name, "type": self.type_name, "kind": "aws console sign-in",
                 "state": st, "expires_at": format_expiration(entry.expires_at) if entry else None,
                 "seconds_left": entry.expires_at - now if entry else None, **summary}]

    def session_columns(self, session):
        from ...core.text import format_left

        who = session.get("login_session") or "?"
        creds = session.get("credentials_seconds_left")
        sess = session.get("session_seconds_left")
        detail = (f"credentials: {format_left(creds) if creds else 'expired'}; "
                  f"session: {format_left(sess) if sess else 'ended'}")
        return f"{session['kind']} as {who}", detail

    # -- logout ------------------------------------------------------------------------------------
    def logout(self, cfg, store, idp, say, remove, new_context):
        """Remove credproc's copy and, in share mode, the CLI's file (as `aws logout` does; AWS
        Sign-In has no revocation call). True if there was something to remove."""
        from .protocol import CliLoginCache

        identity = _identity(idp["name"])
        entry = store.get(identity)
        state = entry_json(entry)
        session = state.get("login_session") or idp.get("login_session")
        where = f"the AWS console sign-in of idp {idp['name']!r}"
        removed = remove(identity, where)
        shared = CliLoginCache(idp).delete(session) if isinstance(session, str) else False
        if shared:
            say(f"removed the AWS CLI's login file of {session}")
        if removed:
            say(f"removed {where}; credentials already handed out stay valid until they expire (15 minutes at most)")
        return removed or shared

    # -- doctor ------------------------------------------------------------------------------------
    def doctor_network_checks(self, cfg, idp):
        # the region as the sign-in resolves it (the idp's, else [settings] region)
        return [(_endpoint_check, f"idp {idp['name']}", idp, self._region(cfg, idp))]


def _endpoint_check(label, idp, region):
    """doctor: the sign-in endpoint answers CreateOAuth2Token (an empty request, no proof, nothing
    secret) as AWS Sign-In does: an error in the model's shape."""
    from ...core.diagnose import TIMEOUT, fail, ok, warn
    from ...core.errors import CredprocError
    from ...core.http import request
    from .protocol import base_url

    url = (idp.get("signin_endpoint_url") or base_url(region)).rstrip("/") + "/v1/token"
    what = f"{label}: the AWS Sign-In endpoint {url}"
    try:
        resp = request("POST", url, data=b"{}", headers={"Content-Type": "application/json"}, timeout=TIMEOUT,
                       what="AWS Sign-In", follow_redirects=False, max_bytes=16384)
    except CredprocError as e:
        return fail(what, e.message, e.hint or "check the region, the network and any proxy")
    except Exception as e:  # noqa: BLE001 - a diagnostic must not crash doctor
        return fail(what, f"the check failed ({type(e).__name__})", "run credproc --debug login to see more")
    if resp.headers.get("x-amzn-ErrorType") or resp.headers.get("x-amzn-RequestId"):
        return ok(f"{what} is reachable")
    return warn(what, f"answered HTTP {resp.status}, but not as AWS Sign-In does",
                "check signin_endpoint_url and any proxy")


SOURCE = LoginSource()
