"""type = "saml": a SAML 2.0 IdP, by ECP or the IdP-initiated sign-on form; the assertion goes to
AssumeRoleWithSAML. The latest assertion is cached per idp as "saml:NAME" until its NotOnOrAfter,
so roles refreshed together share one sign-on. Protocol code: protocol.py beside this file; the
provider: provider.py."""

import os

from ..base import IdentitySource, Key
from ..checks import in_range, readable_file, secure_url

# documented defaults; the values live in provider.py (timeout_of), imported only when used
TIMEOUT, PUSH_TIMEOUT = 30, 120
SIGNIN_TIMEOUT = 300  # flow = "browser": how long the user may take to sign in


def _identity(name):
    return f"saml:{name}"


def _entity_id(v):
    return None if v and v.strip() == v else "must be a non-empty entity id without surrounding spaces"


class SamlSource(IdentitySource):
    type_name = "saml"
    title = "SAML 2.0 (ECP or the IdP-initiated sign-on form)"
    example_idp = {"url": "https://idp.example.edu/idp/profile/SAML2/SOAP/ECP"}
    init_keys = ("url", "flow", "username")
    keys = (
        Key("flow", str, default="ecp", choices=["ecp", "form", "browser"],
            doc="`ecp`: a SOAP AuthnRequest with HTTP Basic credentials to the IdP's ECP endpoint; `form`: the "
                "IdP-initiated sign-on URL, its login form filled in; `browser`: that URL opened in a browser "
                "window where you sign in however the IdP asks (see [SAML 2.0](#saml-20))."),
        Key("url", str, required=True, check=secure_url, type_doc="https URL (http only to loopback)",
            hint=" (ecp: the IdP's ECP endpoint; form and browser: its IdP-initiated sign-on URL for "
                 "urn:amazon:webservices)",
            doc="ecp: the IdP's ECP endpoint, e.g. `https://idp.example.edu/idp/profile/SAML2/SOAP/ECP`; form and "
                "browser: the IdP-initiated sign-on URL for `urn:amazon:webservices`."),
        Key("username", str, default_doc="none (prompt)", doc="Your username at the IdP."),
        Key("password_command", str, default_doc="none (prompt)",
            doc="A command that prints the password (first line). It runs without a shell and is never logged; "
                "the password is never cached."),
        Key("mfa", str, default="none", choices=["push", "passcode", "none"],
            doc="`flow = \"ecp\"` with Shibboleth's Duo: a push (needs a terminal) or a passcode typed at the "
                "prompt, sent in the `X-Shibboleth-Duo-Factor` / `X-Shibboleth-Duo-Passcode` headers."),
        Key("sp_entity_id", str, check=_entity_id, default_doc="`urn:amazon:webservices` (by partition)",
            doc="The audience the assertion must carry and the ECP request's Issuer. By the role's `region` "
                "(else `[settings] region`): "
                "`urn:amazon:webservices`, GovCloud `urn:amazon:webservices:govcloud`, China "
                "`urn:amazon:webservices:cn-north-1`."),
        Key("ca_bundle", str, check=readable_file, convert=os.path.expanduser, type_doc="path",
            default_doc="system trust store",
            doc="PEM file of your organisation's CA. `~` is expanded and the file must exist."),
        Key("browser", str, default_doc="`[settings] browser`, else the first found of Chrome, Edge, Chromium, Brave",
            doc="`flow = \"browser\"`: the Chromium-family browser to sign in with: `chrome`, `edge`, `chromium`, "
                "`brave`, or a program's path (with arguments; a wrapper script that execs the browser works too)."),
        Key("signin_timeout", int, default=SIGNIN_TIMEOUT, check=in_range(10, 3600), type_doc="integer, 10..3600",
            doc="`flow = \"browser\"`: seconds you may take to sign in before credproc gives up (exit 4)."),
        Key("timeout", int, check=in_range(5, 600), type_doc="integer, 5..600",
            default_doc=f"`{TIMEOUT}` (`{PUSH_TIMEOUT}` with `mfa = \"push\"`)",
            doc="Seconds for each HTTP request to the IdP, from connecting to the last byte of the answer, including the time you take to approve a push."),
    )
    # AssumeRoleWithSAML takes none of these; the assertion names the session (RoleSessionName)
    ignored_role_keys = ("session_name", "external_id", "source_identity", "tags", "transitive_tag_keys",
                         "policy_arns")

    # added after the first release: configs without them keep their fingerprints (cached assertions)
    unfingerprinted = {"browser": None, "signin_timeout": SIGNIN_TIMEOUT}

    def cross_check(self, c, idp, table, where):
        if idp["mfa"] not in (None, "none") and idp["flow"] in ("form", "browser"):
            c.add(f"{where}.mfa", "works only with flow = \"ecp\" (the Duo headers of Shibboleth's ECP endpoint)")
        if idp["flow"] == "browser":
            for key in ("username", "password_command"):
                if key in table:
                    c.add(f"{where}.{key}", "has no effect with flow = \"browser\": you sign in in the browser "
                                            "window (remove it)")
        else:
            for key in ("browser", "signin_timeout"):
                if key in table:
                    c.add(f"{where}.{key}", "works only with flow = \"browser\" (remove it)")

    def build_chain(self, ctx, idp, role, session_name, region, endpoint):
        from .provider import SamlProvider, SamlSession

        return SamlProvider(ctx, SamlSession(ctx, idp, region), role, region, endpoint)

    # -- status ------------------------------------------------------------------------------------
    def sessions(self, cfg, store, idp, now):
        from ...core.credentials import format_expiration
        from .provider import MIN_ASSERTION_LEFT

        identity = _identity(idp["name"])
        entry = store.get(identity)
        if entry is None:
            state = "unreadable" if store.present(identity) else "none"
        elif entry.fingerprint != cfg.idp_fingerprint(idp["name"]):
            state = "stale"
        elif entry.expires_at - now <= MIN_ASSERTION_LEFT:
            state = "expired"
        else:
            state = "valid"
        return [{"identity": identity, "idp": idp["name"], "type": self.type_name, "kind": "saml assertion",
                 "state": state, "expires_at": format_expiration(entry.expires_at) if entry else None,
                 "seconds_left": entry.expires_at - now if entry else None, "flow": idp["flow"], "url": idp["url"]}]

    def session_columns(self, session):
        detail = "other roles over this idp use it instead of signing on again" if session["state"] == "valid" else ""
        return f"SAML assertion ({session['flow']}) from {_short(session['url'])}", detail

    # -- logout ------------------------------------------------------------------------------------
    def logout(self, cfg, store, idp, say, remove, new_context):
        """The assertion (credproc keeps no IdP session of its own) and, for browser sign-ins, the
        browser profile with the IdP's cookies: the next sign-in starts from nothing."""
        where = f"the SAML assertion from {_short(idp['url'])}"
        removed = False
        if remove(_identity(idp["name"]), where):
            say(f"removed {where}")
            removed = True
        if _remove_profile(idp["name"]):
            say(f"removed the browser profile of idp {idp['name']!r} (its cookies at the IdP)")
            removed = True
        return removed

    # -- doctor ------------------------------------------------------------------------------------
    def doctor_checks(self, cfg, idp):
        """flow = "browser": a browser is there to launch, and a desktop to show it on."""
        if idp["flow"] != "browser":
            return []
        from ...core import devtools
        from ...core.diagnose import fail, ok, warn
        from ...core.errors import ConfigError

        what = f"idp {idp['name']}: the browser for sign-ins"
        key = f"idp.{idp['name']}.browser" if idp.get("browser") else "[settings] browser"
        try:
            exe = " ".join(devtools.find(idp.get("browser") or cfg.settings.get("browser"), key))
        except ConfigError as e:
            return [fail(what, e.message, e.hint)]
        if not devtools.desktop_available():
            return [warn(f"{what} ({exe})", "no desktop here (DISPLAY and WAYLAND_DISPLAY are not set): a sign-in "
                                            "would exit 4", "sign in where a browser window can open")]
        return [ok(f"{what}: {exe}")]

    def doctor_network_checks(self, cfg, idp):
        # the partition (Issuer, ACS URL) of the roles over this idp, as a sign-on would use it
        regions = [cfg.region_for(r) for _, r in sorted(cfg.roles.items()) if r.get("idp") == idp["name"]]
        region = regions[0] if regions else (cfg.settings.get("region") or "us-east-1")
        return [(_first_step_check, f"idp {idp['name']}", idp, region)]


def _remove_profile(name):
    """Remove the browser profile directory of an idp's browser sign-ins; True if there was one."""
    import shutil
    import stat

    from .browser import profile_dir

    path = profile_dir(name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):  # a link or a file in its place: not ours to follow; remove the name
        os.unlink(path)
        return True
    shutil.rmtree(path)
    return True


def _short(url):
    from .protocol import no_query

    return no_query(url)


def _first_step_check(label, idp, region):
    """doctor: the IdP answers the flow's first step (no credentials are sent)."""
    import time

    from ...core.diagnose import TIMEOUT as DOCTOR_TIMEOUT
    from ...core.diagnose import fail, ok
    from ...core.errors import CredprocError
    from . import protocol as saml

    entity, acs = saml.service_provider(region, idp.get("sp_entity_id"))
    what = f"{label}: the SAML IdP at {_short(idp['url'])} ({idp['flow']})"
    try:
        good, detail = saml.first_step(idp["flow"], idp["url"], entity, acs, time.time(), DOCTOR_TIMEOUT,
                                       idp.get("ca_bundle"))
    except CredprocError as e:
        return fail(what, e.message, e.hint or "check the URL, the network and any proxy")
    except Exception as e:  # noqa: BLE001 - a diagnostic must not crash doctor
        return fail(what, f"the check failed ({type(e).__name__})", "run credproc --debug login to see more")
    if good:
        return ok(f"{what} {detail}")
    fix = ("the IdP administrator must enable ECP for the relying party " + entity
           if idp["flow"] == "ecp" else "url must be the IdP-initiated sign-on URL for " + entity)
    return fail(what, detail, fix)


SOURCE = SamlSource()
