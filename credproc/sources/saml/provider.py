"""SAML 2.0 -> AssumeRoleWithSAML.

SamlSession is the sign-on of one [idp.NAME] of type saml. A SAML IdP session cannot be reused
without the password, so every refresh signs on again; but one assertion can be exchanged for
several roles within its lifetime. So the assertion is kept in the encrypted cache until its own
NotOnOrAfter, under the sign-on's own lock: concurrent callers and roles refreshed together cost
one sign-on (and one password prompt).
"""

import json
import time

from ...core import log, sts
from ...core.cache import Entry
from ...core.errors import AccessDenied, AuthenticationFailed, CredprocError, LoginRequired, ServiceError
from ...core.prompt import run_secret_command
from .. import rolechoice
from . import protocol as saml

# An assertion with less than this left is not worth sending to STS (transit, clock differences).
MIN_ASSERTION_LEFT = 30
MIN_STS_DURATION = 900  # AssumeRoleWithSAML's smallest DurationSeconds
# without `timeout` (see source.py): a Duo push waits on the phone inside the ECP request
PUSH_TIMEOUT = 120
TIMEOUT = 30


def timeout_of(idp):
    return idp.get("timeout") or (PUSH_TIMEOUT if idp.get("mfa") == "push" else TIMEOUT)


def session_identity(idp_name):
    return f"saml:{idp_name}"


class SamlSession:
    def __init__(self, ctx, idp, region=None):
        """region: the role's (where its STS call goes), which picks AWS's partition: the audience
        and ACS URL of commercial AWS, GovCloud or China."""
        self.ctx = ctx
        self.idp = idp
        self.identity = session_identity(idp["name"])
        region = region or ctx.config.settings.get("region") or "us-east-1"
        self.sp_entity_id, self.acs = saml.service_provider(region, idp.get("sp_entity_id"))
        self.where = f"the SAML IdP at {saml.no_query(idp['url'])}"

    def describe(self):
        return f"SamlSession({saml.no_query(self.idp['url'])}, flow={self.idp['flow']}, sp={self.sp_entity_id})"

    def assertion(self):
        """A checked Assertion with time left: the cached one, or a new sign-on."""
        got = self._cached()
        if got:  # no lock needed to read: another process may be waiting for a password for minutes
            return got
        lock = self.ctx.store.lock(self.identity, f"a sign-on at {self.where}")
        lock.acquire(self.ctx.lock_deadline)
        try:
            got = self._cached(under_lock=True)
            if got:
                return got
            assertion = self._sign_on()
            self._save(assertion)
            return assertion
        finally:
            lock.release()

    def _cached(self, under_lock=False):
        """The cached assertion if it has time left. under_lock (the sign-on's lock is held): an
        assertion past its NotOnOrAfter, or unusable, is removed at once: the bearer secret is kept
        no longer than it is valid, even if this sign-on then fails."""
        entry = self.ctx.store.get(self.identity, quiet=under_lock)
        now = self.ctx.now()
        if entry is None:
            return None
        if under_lock and entry.expires_at <= now:
            log.debug("%s: removing the expired assertion", self.identity)
            self.forget()
            return None
        if self.ctx.force or entry.fingerprint != self.ctx.config.idp_fingerprint(self.idp["name"]):
            return None
        if entry.expires_at - now <= MIN_ASSERTION_LEFT:
            return None
        try:
            encoded = json.loads(entry.body)["assertion"]
            data, encoded = saml.decode_saml_response(encoded, self.where)
            got = saml.read_response(data, encoded, self.sp_entity_id, now, self.where)
        except (CredprocError, ValueError, KeyError, TypeError):
            log.debug("%s: the cached assertion is unusable; signing on again", self.identity)
            if under_lock:
                self.forget()
            return None
        log.debug("%s: using the cached assertion (%d s left)", self.identity, got.expires_at - now)
        return got

    def _save(self, assertion):
        now = self.ctx.now()
        body = json.dumps({"assertion": assertion.encoded}).encode()
        self.ctx.store.put(self.identity, Entry(assertion.expires_at, assertion.expires_at, self.ctx.config.digest,
                                                self.ctx.config.idp_fingerprint(self.idp["name"]), body, written_at=now))

    def forget(self):
        return self.ctx.store.delete(self.identity)

    def forget_if(self, assertion):
        """Remove the cached assertion if it is still this one (under the sign-on's lock: another
        process may have put a newer one in its place, which must stay)."""
        lock = self.ctx.store.lock(self.identity, f"a sign-on at {self.where}")
        lock.acquire(self.ctx.lock_deadline)
        try:
            entry = self.ctx.store.get(self.identity, quiet=True)
            if entry is not None and json.loads(entry.body).get("assertion") == assertion.encoded:
                log.debug("%s: STS refused the cached assertion; removing it", self.identity)
                self.forget()
        except (ValueError, AttributeError):
            self.forget()
        finally:
            lock.release()

    # -- signing on -----------------------------------------------------------------------------
    def _sign_on(self):
        if self.idp["flow"] == "browser":
            return self._browser_sign_on()
        idp, terminal = self.idp, self.ctx.terminal
        # Fail at once, before anything is sent, when a prompt would be needed and nobody can answer.
        if not idp.get("password_command"):
            terminal.require(f"the password for {self.where}")
        if not idp.get("username"):
            terminal.require(f"a username for {self.where}")
        if idp.get("mfa") == "push":
            terminal.require("approval of a Duo push")  # nobody would see it, and the request would block
        elif idp.get("mfa") == "passcode":
            terminal.require("a Duo passcode")
        username = idp.get("username") or terminal.ask(f"Username for {self.where}: ", what="a SAML username").strip()

        def ask_password():
            if idp.get("password_command"):
                return run_secret_command(idp["password_command"], "the SAML password",
                                          f"idp.{idp['name']}.password_command")
            return terminal.ask(f"Password for {username} at {self.where}: ", what="a SAML password", secret=True)

        if idp["flow"] != "ecp":
            # the form flow asks only once the IdP's login page is there: its first GET is the
            # check that the IdP answers, so no password is typed for an IdP that is down
            return saml.form_sign_on(idp["url"], username, ask_password, self.sp_entity_id, self.ctx.now,
                                     timeout_of(idp), idp.get("ca_bundle"))
        password = ask_password()
        try:
            passcode = None
            if idp.get("mfa") == "passcode":
                passcode = terminal.ask("Duo passcode: ", what="a Duo passcode").strip()
            if idp.get("mfa") == "push":
                terminal.say("Approve the Duo push on your phone...")
                with terminal.progress("  waiting for the Duo push..."):
                    return self._ecp(username, password, passcode)
            return self._ecp(username, password, passcode)
        finally:
            del password  # goes no further than the sign-on

    def _browser_sign_on(self):
        """The IdP-initiated URL in a browser window; the SAMLResponse it would POST to AWS is taken
        instead. Needs a desktop, not a terminal (an IDE or Terraform can start it)."""
        from ...core import devtools
        from ...core.store import ensure_private_dir
        from .browser import SignOn, profile_dir

        idp = self.idp
        if not devtools.desktop_available():
            raise LoginRequired(f"signing in at {self.where} needs a browser window, and there is no desktop "
                                "here (DISPLAY and WAYLAND_DISPLAY are not set)",
                                hint=f"run this where a browser can open, or use flow = \"form\" or \"ecp\": "
                                     f"{self.ctx.terminal.login_command}")
        key = f"idp.{idp['name']}.browser" if idp.get("browser") else "[settings] browser"
        command = devtools.find(idp.get("browser") or self.ctx.config.settings.get("browser"), key)
        profile = profile_dir(idp["name"])
        ensure_private_dir(profile)
        self.ctx.terminal.say(f"Sign in at {self.where} in the browser window that opens...")
        log.debug("browser sign-in: %s with the profile %s", command[0], profile)
        started = time.monotonic()
        value = SignOn(command, profile, idp["url"], self.acs, idp.get("signin_timeout") or 300, self.where).run()
        log.debug("browser sign-in: the SAMLResponse arrived after %.1f s", time.monotonic() - started)
        data, encoded = saml.decode_saml_response(value, self.where)
        return saml.read_response(data, encoded, self.sp_entity_id, self.ctx.now(), self.where)

    def _ecp(self, username, password, passcode):
        return saml.ecp_sign_on(self.idp["url"], username, password, self.sp_entity_id, self.acs, self.ctx.now,
                                timeout_of(self.idp), self.idp.get("ca_bundle"), mfa=self.idp.get("mfa"),
                                passcode=passcode)


class SamlProvider:
    """The credentials of one role from the session's assertion, through AssumeRoleWithSAML (an
    unsigned call: the assertion is the credential)."""

    def __init__(self, ctx, session, role, region, endpoint_url):
        self.ctx = ctx
        self.session = session
        self.role = role
        self.region = region
        self.endpoint_url = endpoint_url

    def describe(self):
        return f"AssumeRoleWithSAML({self.role.get('arn') or 'from the assertion'}, {self.session.describe()})"

    def _role_arn(self, assertion):
        idp = self.session.idp
        offered = assertion.role_arns()
        who = (f"the SAML assertion from {assertion.issuer} for "
               f"{saml.shown(assertion.session_name, 64) or assertion.subject or 'you'}")
        if self.role.get("arn"):
            if self.role["arn"] not in offered:
                raise AccessDenied(f"{who} does not offer {self.role['arn']}; it offers: {', '.join(offered) or 'no role'}",
                                   hint=f"set arn in [role.{self.role['name']}] to one of those, or ask the IdP "
                                        "administrator to release that role")
            return self.role["arn"]
        if not offered:
            raise AccessDenied(f"{who} offers no AWS role (no usable {saml.ROLE_ATTR} value)",
                               hint="the IdP administrator must release the Role attribute as "
                                    "'arn:aws:iam::ACCOUNT:role/NAME,arn:aws:iam::ACCOUNT:saml-provider/NAME'")
        return rolechoice.pick(self.ctx, self.role["name"], idp["name"], offered, f"{who} offers")

    def retrieve(self):
        assertion = self.session.assertion()
        arn = self._role_arn(assertion)
        if not assertion.session_name or not saml.SESSION_NAME_RE.match(assertion.session_name):
            raise ServiceError(f"the SAML assertion from {assertion.issuer} has no valid RoleSessionName "
                               f"({saml.SESSION_NAME_ATTR}); STS requires one (2-64 of letters, digits, +=,.@_-)",
                               hint="ask the IdP administrator to release it, e.g. the user's email address")
        duration = self.role["duration"]
        if assertion.session_duration and assertion.session_duration < duration:
            # STS takes 900 s at the least: a shorter SessionDuration (AWS documents 900-43200) would make
            # every call fail with a ValidationError, so it caps at that floor
            capped = max(assertion.session_duration, MIN_STS_DURATION)
            log.debug("the assertion's SessionDuration %d caps the role's duration %d at %d",
                      assertion.session_duration, duration, capped)
            duration = min(duration, capped)
        client = sts.client(self.region, self.endpoint_url, None)
        context = f"{assertion.session_name} from {assertion.issuer}"
        try:
            response, sent_at = sts.call(client, "AssumeRoleWithSAML", context, RoleArn=arn,
                                         PrincipalArn=assertion.provider_for(arn), SAMLAssertion=assertion.encoded,
                                         DurationSeconds=duration)
        except AuthenticationFailed:
            # STS refused the assertion itself (expired by its clock, signature, already used): keeping
            # it would fail every refresh until its NotOnOrAfter; the next run signs on again
            self.session.forget_if(assertion)
            raise
        return sts.credentials_from_response(response, sent_at)

