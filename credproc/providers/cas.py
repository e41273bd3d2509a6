"""Apereo CAS `awsSts` actuator endpoint: CAS authenticates the user (password, Duo), checks their
AWS roles, calls STS itself and answers with a `[default]` credentials block.

Wire protocol: ../shared/reference/cas-awssts.md. The failure strings below are quoted from the
CAS source and matched exactly.
"""

import contextlib
import re
import time

from .. import http, log, rolechoice
from ..credentials import Credentials
from ..errors import AccessDenied, AuthenticationFailed, ServiceError
from ..prompt import run_secret_command

MULTIPLE = "Found multiple roles and none is specified. Current roles:"
NOT_ALLOWED = "Specified role is not allowed. Current roles:"
AUTH_FAILED = "Authentication failed"
AUTHZ_FAILED = "Authorization failure"
# CAS returns no expiry: the credentials are good for `duration` from when STS issued them, which
# is after we sent the request. Subtract a little for clock differences between CAS and STS.
EXPIRY_SAFETY = 60


def parse_roles(text):
    """Java List.toString(): "[a, b]" -> ["a", "b"]."""
    inner = text.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    return [r.strip() for r in inner.split(", ") if r.strip()]


def parse_credentials_block(text):
    """The success body: `[default]` then key=value lines, \\n or \\r\\n (CAS mixes them), any order,
    extra keys (region) ignored."""
    values = {}
    for line in re.split(r"\r?\n", text):
        line = line.strip()
        if not line or line.startswith(("[", "#", ";")):
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    missing = [k for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token") if not values.get(k)]
    if missing:
        raise ServiceError(f"the CAS awsSts answer has no {', '.join(missing)}",
                           hint="is url the CAS prefix (e.g. https://sso.example.edu/cas)?")
    return values


class CasProvider:
    def __init__(self, ctx, idp, role):
        self.ctx = ctx
        self.idp = idp
        self.role = role
        self.endpoint = idp["url"].rstrip("/") + "/actuator/awsSts"

    def describe(self):
        return f"CAS({self.endpoint})"

    # -- what we send -------------------------------------------------------------------------
    def _username(self):
        if self.idp.get("username"):
            return self.idp["username"]
        return self.ctx.terminal.ask(f"CAS username for {self.idp['url']}: ", what="a CAS username").strip()

    def _password(self, username):
        if self.idp.get("password_command"):
            return run_secret_command(self.idp["password_command"], "the CAS password",
                                      f"idp.{self.idp['name']}.password_command")
        return self.ctx.terminal.ask(f"CAS password for {username}: ", what="a CAS password", secret=True)

    def retrieve(self):
        terminal = self.ctx.terminal
        mfa = self.idp["mfa"]
        if mfa == "push":
            terminal.require("approval of a Duo push")  # nobody would see it, and the request would block
        username = self._username()
        password = self._password(username)
        form = {"username": username, "password": password, "duration": str(self.role["duration"])}
        if mfa == "passcode":
            form["passcode"] = terminal.ask("Duo passcode: ", what="a Duo passcode").strip()
        arn = self.role.get("arn") or rolechoice.remembered(self.ctx, self.role["name"], self.idp["name"])
        if arn:
            form["roleArn"] = arn
        try:
            status, text, sent_at = self._post(form)
            if status == 401 and text.startswith(MULTIPLE):
                roles = parse_roles(text[len(MULTIPLE):])
                arn = rolechoice.choose(self.ctx, self.role["name"], self.idp["name"], roles, f"CAS offers {username}")
                form["roleArn"] = arn
                if mfa == "passcode":  # Duo passcodes are single-use
                    form["passcode"] = terminal.ask("Duo passcode (a new one, for the chosen role): ",
                                                    what="a Duo passcode").strip()
                status, text, sent_at = self._post(form)
        finally:
            form.clear()  # the password goes no further than this request
            del password
        if status != 200:
            raise self._error(status, text, username, form_arn=arn)
        values = parse_credentials_block(text)
        # No AccountId: a CAS server without RBAC ignores roleArn, so the ARN does not prove the account.
        return Credentials(values["aws_access_key_id"], values["aws_secret_access_key"], values["aws_session_token"],
                           int(sent_at) + self.role["duration"] - EXPIRY_SAFETY)

    def _post(self, form):
        if self.idp["mfa"] == "push":
            self.ctx.terminal.say("Approve the Duo push on your phone...")
        sent_at = time.time()
        log.debug("CAS POST %s (user %s, roleArn %s)", self.endpoint, form.get("username"), form.get("roleArn", "-"))
        waiting = self.ctx.terminal.progress("  waiting for the Duo push...") if self.idp["mfa"] == "push" \
            else contextlib.nullcontext()
        with waiting:
            resp = http.request("POST", self.endpoint, form=form, timeout=self.idp["timeout"],
                                ca_bundle=self.idp.get("ca_bundle"), what="the CAS server", headers={"Accept": "text/plain"})
        log.debug("CAS answered HTTP %d", resp.status)
        return resp.status, resp.text.strip(), sent_at

    # -- failures -------------------------------------------------------------------------------
    def _error(self, status, text, username, form_arn):
        url = self.idp["url"]
        if status == 401 and text == AUTH_FAILED:
            hint = "check the username and password"
            if self.idp["mfa"] == "push":
                hint += "; the Duo push may have been denied or timed out"
            elif self.idp["mfa"] == "passcode":
                hint += " and use a fresh Duo passcode"
            return AuthenticationFailed(f"CAS at {url} rejected the login of {username}", hint=hint)
        if status == 401 and text == AUTHZ_FAILED:
            return AccessDenied(f"CAS at {url} authenticated {username} but does not authorize them for AWS",
                                hint="ask the CAS administrator (cas.amazon-sts.principal-attribute-name/-value)")
        if status == 401 and text.startswith(NOT_ALLOWED):
            if not self.role.get("arn"):  # a remembered menu choice that CAS no longer offers
                rolechoice.forget(self.ctx, self.role["name"])
            roles = parse_roles(text[len(NOT_ALLOWED):])
            return AccessDenied(f"CAS does not allow {username} to take {form_arn}; allowed: {', '.join(roles) or 'none'}",
                                hint=f"set arn in [role.{self.role['name']}] to one of those")
        if status == 404:
            return ServiceError(f"CAS at {url} has no awsSts endpoint (HTTP 404)",
                                hint="url must be the CAS prefix (e.g. https://sso.example.edu/cas), and the CAS "
                                     "administrator must enable and expose the awsSts actuator endpoint")
        if status in (401, 403):
            return ServiceError(f"the awsSts endpoint of CAS at {url} is not open to this client (HTTP {status})",
                                hint="the CAS administrator must permit anonymous access to the awsSts actuator "
                                     "endpoint (cas.monitor.endpoints.endpoint.awsSts.access=ANONYMOUS)")
        if status >= 500:
            return ServiceError(f"CAS at {url} could not get credentials from STS (HTTP {status})",
                                hint=f"often a duration STS refuses: it is {self.role['duration']} s and must be between "
                                     "900 and the role's maximum session duration (3600 unless raised)")
        return ServiceError(f"CAS at {url} answered HTTP {status} unexpectedly")
