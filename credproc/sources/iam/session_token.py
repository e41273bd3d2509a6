"""GetSessionToken, with an MFA code when the identity source has mfa_serial: one MFA prompt
per session, shared (through its own cache entry) by every role over that identity source."""

import re

from ...core import sts
from ...core.errors import AuthenticationFailed
from ...core.prompt import run_secret_command

_CODE = re.compile(r"^\d{6}\Z")
ATTEMPTS = 3
PRECHECK_DEADLINE = 15  # seconds for the round trip that checks STS answers before a prompt


def _nothing():
    import contextlib

    return contextlib.nullcontext()


class SessionTokenProvider:
    def __init__(self, source, idp, region, endpoint_url, terminal):
        self.source = source
        self.idp = idp
        self.region = region
        self.endpoint_url = endpoint_url
        self.terminal = terminal

    def describe(self):
        return f"GetSessionToken({'MFA ' + self.idp['mfa_serial'] if self.idp.get('mfa_serial') else 'no MFA'})"

    def retrieve(self):
        source = self.source.retrieve()
        client = sts.client(self.region, self.endpoint_url, source)
        context = sts.describe_source(self.source.describe(), source)
        params = {"DurationSeconds": self.idp["session_duration"]}
        serial = self.idp.get("mfa_serial")
        prompting = bool(serial) and not self.idp.get("mfa_command")
        if prompting and self.terminal.available():  # without a terminal the prompt fails at once anyway
            # One round trip before the prompt: a code typed for an STS that does not answer (or
            # keys it refuses) is typed for nothing, and then waits 40 s in silence.
            sts.call(client, "GetCallerIdentity", context, deadline=PRECHECK_DEADLINE)
        attempts = ATTEMPTS if prompting else 1
        for attempt in range(1, attempts + 1):
            if serial:
                params.update(SerialNumber=serial, TokenCode=self._code(serial))
            try:
                with self.terminal.progress("waiting for STS...") if prompting else _nothing():
                    response, sent_at = sts.call(client, "GetSessionToken", context, **params)
                return sts.credentials_from_response(response, sent_at)
            except AuthenticationFailed as e:
                if attempt == attempts or "MFA code" not in e.message:
                    raise
                self.terminal.say("That MFA code was rejected; try the next one.")

    def _code(self, serial):
        if self.idp.get("mfa_command"):
            code = run_secret_command(self.idp["mfa_command"], "an MFA code", f"idp.{self.idp['name']}.mfa_command")
            if not _CODE.match(code):
                raise AuthenticationFailed(f"idp.{self.idp['name']}.mfa_command printed something that is not a 6-digit code")
            return code
        for _ in range(ATTEMPTS):
            code = self.terminal.ask(f"MFA code for {serial}: ", what=f"an MFA code for {serial}").strip().replace(" ", "")
            if _CODE.match(code):
                return code
            self.terminal.say("An MFA code is 6 digits.")
        raise AuthenticationFailed(f"no valid MFA code entered for {serial}")
