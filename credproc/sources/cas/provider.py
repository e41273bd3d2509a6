"""Apereo CAS `awsSts` actuator endpoint: CAS authenticates the user (password, Duo), checks their
AWS roles, calls STS itself and answers with a `[default]` credentials block.

Wire protocol: ../shared/reference/cas-awssts.md. The failure strings below are quoted from the
CAS source and matched exactly.
"""

import contextlib
import re
import time

from ...core import http, log
from ...core.cache import Entry
from ...core.credentials import Credentials
from ...core.errors import AccessDenied, AuthenticationFailed, LoginRequired, NetworkError, ServiceError
from ...core.prompt import run_secret_command
from .. import rolechoice

MULTIPLE = "Found multiple roles and none is specified. Current roles:"
NOT_ALLOWED = "Specified role is not allowed. Current roles:"
AUTH_FAILED = "Authentication failed"
AUTHZ_FAILED = "Authorization failure"
# CAS returns no expiry: the credentials are good for `duration` from when STS issued them, which
# is after we sent the request. Subtract a little for clock differences between CAS and STS.
EXPIRY_SAFETY = 60
# After a denied or unanswered push, no push without a terminal for this long (push_backoff).
DEFAULT_PUSH_BACKOFF = 300
# Below this, an unattended push is not worth sending: nobody could approve it in time.
MIN_PUSH_WAIT = 5


def _pause_identity(idp_name):
    return f"push-pause:{idp_name}"


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
        # A push with nobody at a terminal (Terraform, an IDE) is fine: the phone is the prompt.
        # But a denied or unanswered one pauses those for a while (push fatigue: a background tool
        # retrying must not train the user to approve pushes they did not start).
        unattended_push = mfa == "push" and not terminal.attended()
        if unattended_push:
            self._check_push_pause()
        username = self._username()
        password = self._password(username)
        form = {"username": username, "password": password, "duration": str(self.role["duration"])}
        if mfa == "passcode":
            form["passcode"] = terminal.ask("Duo passcode: ", what="a Duo passcode").strip()
        arn = self.role.get("arn") or rolechoice.remembered(self.ctx, self.role["name"], self.idp["name"])
        if arn:
            form["roleArn"] = arn
        try:
            status, text, sent_at = self._post(form, unattended_push)
            if status == 401 and text.startswith(MULTIPLE):
                roles = parse_roles(text[len(MULTIPLE):])
                arn = rolechoice.choose(self.ctx, self.role["name"], self.idp["name"], roles, f"CAS offers {username}")
                form["roleArn"] = arn
                if mfa == "passcode":  # Duo passcodes are single-use
                    form["passcode"] = terminal.ask("Duo passcode (a new one, for the chosen role): ",
                                                    what="a Duo passcode").strip()
                status, text, sent_at = self._post(form, unattended_push)
        finally:
            form.clear()  # the password goes no further than this request
            del password
        if mfa == "push":
            if status == 401 and text == AUTH_FAILED:  # denied, timed out at CAS (or a wrong password)
                self._pause_pushes("denied or not answered")
            elif status == 200:
                self.ctx.store.delete(_pause_identity(self.idp["name"]))
        if status != 200:
            raise self._error(status, text, username, form_arn=arn)
        values = parse_credentials_block(text)
        # No AccountId: a CAS server without RBAC ignores roleArn, so the ARN does not prove the account.
        return Credentials(values["aws_access_key_id"], values["aws_secret_access_key"], values["aws_session_token"],
                           int(sent_at) + self.role["duration"] - EXPIRY_SAFETY)

    # -- Duo push without a terminal -----------------------------------------------------------
    def _check_push_pause(self):
        entry = self.ctx.store.get(_pause_identity(self.idp["name"]))
        now = self.ctx.now()
        if entry is None or entry.expires_at <= now or entry.written_at > now + 60:
            return
        if entry.fingerprint != self.ctx.config.idp_fingerprint(self.idp["name"]):
            return
        raise LoginRequired(
            f"a Duo push for idp {self.idp['name']} was {entry.body.decode()} {max(0, now - entry.written_at)} s ago, so "
            f"no Duo push is sent without a terminal for {entry.expires_at - now} s more (push_backoff)",
            hint=f"run in a terminal: {self.ctx.terminal.login_command}")

    def _pause_pushes(self, what):
        seconds = self.idp.get("push_backoff", DEFAULT_PUSH_BACKOFF)
        if not seconds:
            return
        now = self.ctx.now()
        try:
            self.ctx.store.put(_pause_identity(self.idp["name"]),
                               Entry(now + seconds, now + seconds, self.ctx.config.digest,
                                     self.ctx.config.idp_fingerprint(self.idp["name"]), what.encode(), written_at=now))
        except Exception as e:  # noqa: BLE001 - the pause is a courtesy; the real error is reported
            log.debug("could not record the Duo push pause: %s", type(e).__name__)

    def _push_wait(self):
        """Seconds an unattended push may block: the idp's timeout, but never past the run's
        unattended_deadline (counted from its start: the Go SDK kills a credential_process at 60 s)."""
        left = self.ctx.unattended_deadline - time.monotonic()
        if left < MIN_PUSH_WAIT:
            raise LoginRequired("no time is left to wait for a Duo push before the caller gives up on credproc",
                                hint=f"run in a terminal: {self.ctx.terminal.login_command}")
        return min(self.idp["timeout"], int(left))

    def _post(self, form, unattended_push=False):
        push = self.idp["mfa"] == "push"
        timeout = self._push_wait() if unattended_push else self.idp["timeout"]
        if push:
            self.ctx.terminal.notify("Approve the Duo push on your phone...")
        sent_at = time.time()
        log.debug("CAS POST %s (user %s, roleArn %s)", self.endpoint, form.get("username"), form.get("roleArn", "-"))
        waiting = self.ctx.terminal.progress("  waiting for the Duo push...") if push else contextlib.nullcontext()
        started = time.monotonic()
        try:
            with waiting:
                resp = http.request("POST", self.endpoint, form=form, timeout=timeout,
                                    ca_bundle=self.idp.get("ca_bundle"), what="the CAS server",
                                    headers={"Accept": "text/plain"})
        except NetworkError:
            if unattended_push and time.monotonic() - started >= timeout - 1:
                self._pause_pushes("not answered")
                raise LoginRequired(f"the Duo push was not answered within {timeout} s (callers without a terminal "
                                    "cannot wait longer)", hint=f"run in a terminal: {self.ctx.terminal.login_command}") \
                    from None
            raise
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
