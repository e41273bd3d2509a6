"""An emulator of the Apereo CAS `awsSts` actuator endpoint, backed by a real moto STS server.

A real CAS server cannot be started on these machines, so this reproduces the endpoint's wire
protocol as read from `AmazonSecurityTokenServiceEndpoint.java` (CAS 6.4 to 7.x, module
`cas-server-support-aws`; see ../shared/reference/cas-awssts.md). Quirks kept on purpose:

- The success body's first line is always `[default]\\n`; the following lines are written with
  Java's `%n`, i.e. the server's line separator (`line_ending`): a "CRLF" server mixes endings.
- Only with SEVERAL roles is `roleArn` checked (as a regex *searched* in each role); the raw
  `roleArn` is then sent to STS. With ONE role, `roleArn` is not checked at all: 7.x sends it
  to STS if it is not blank (else the one role), 6.x if it is not null (an empty `roleArn`
  reaches STS as "" and fails there). An invalid regex matches nothing (CAS `RegexUtils`).
- `duration`: plain digits are seconds, otherwise a java.time ISO-8601 duration (`PnDTnHnMnS`),
  truncated to whole seconds and cast to a Java int. Absent or blank: `PT1H` (6.x) or `PT15S`
  (7.x). It is parsed only when the STS request is built, i.e. after the role checks.
- Real STS limits that moto does not enforce are emulated here and surface, like any STS or
  parse error in CAS, as a 500 framework error page: DurationSeconds < 900, > `max_role_duration`
  (AssumeRole) or > 129600 (GetSessionToken), RoleArn shorter than 20 characters.
- Authorization: when `principal_attribute_name` is set the attribute must exist and, when
  `principal_attribute_value` is set, one value must match it (regex search).

The emulator never prints or logs request bodies (passwords, passcodes).
"""

from __future__ import annotations

from tests.peers.net import LoopbackHTTPServer
import argparse
import collections
import datetime
import html
import http.server
import json
import queue
import re
import sys
import threading
import time
import urllib.parse
import uuid

import boto3
import botocore.config

MIN_STS_DURATION = 900
MAX_SESSION_TOKEN_DURATION = 129600
FORM_FIELDS = ("username", "password", "passcode", "duration", "roleArn", "token", "serialNumber",
               "profile", "service")
# Fields read with @RequestParam by the real endpoint: Spring takes them from the query string too.
_REQUEST_PARAMS = ("roleArn", "token", "serialNumber", "profile")

_JAVA_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?[0-9]+)D)?"
    r"(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?",
    re.IGNORECASE,
)


class _ServerError(Exception):
    """Anything the real server would let escape to Spring's error handling (a 5xx page)."""


def java_list(values) -> str:
    """Java List.toString()."""
    return "[" + ", ".join(str(v) for v in values) + "]"


def _java_int(n: int) -> int:
    """Long.intValue(): wrap to a signed 32-bit integer."""
    return ((n + 2**31) % 2**32) - 2**31


def parse_duration(text: str) -> int:
    """CAS Beans.newDuration(text).toSeconds(), then .intValue(). Raises _ServerError when unparsable."""
    if re.fullmatch(r"[-+]?[0-9]+", text):
        n = int(text)
        if not -(2**63) <= n < 2**63:  # Long.parseLong overflow
            raise _ServerError(f"NumberFormatException: For input string: \"{text}\"")
        return _java_int(n)
    m = _JAVA_DURATION.fullmatch(text)
    # "P" alone and a bare "T" are rejected by java.time.Duration.parse.
    if not m or m.group(3) == "T" or (m.group(3) is None and m.group(2) is None):
        raise _ServerError(f"DateTimeParseException: Text cannot be parsed to a Duration: {text}")
    days, hours, minutes, secs = (int(m.group(i) or 0) for i in (2, 4, 5, 6))
    total = days * 86400 + hours * 3600 + minutes * 60 + secs
    frac = m.group(7)
    if frac and m.group(6) and m.group(6).startswith("-") and int(frac):
        total -= 1  # java.time floors negative fractional seconds
    if m.group(1) == "-":
        total = -total
    return _java_int(total)


def _regex_find(pattern: str, value: str) -> bool:
    """CAS RegexUtils.find: an invalid pattern matches nothing."""
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


class PendingPush:
    """A Duo push waiting for an answer. Tests get these from CasEmulator.push_requests."""

    def __init__(self, username: str, request: dict):
        self.username = username
        self.service = request.get("service")
        self.created = time.monotonic()
        self._event = threading.Event()
        self.approved = None  # True / False once answered

    def approve(self):
        self._answer(True)

    def deny(self):
        self._answer(False)

    def _answer(self, ok: bool):
        if not self._event.is_set():
            self.approved = ok
            self._event.set()

    @property
    def answered(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout):
        """True only if approved within timeout."""
        self._event.wait(timeout)
        return bool(self.approved)

    def __repr__(self):
        return f"PendingPush(username={self.username!r}, approved={self.approved!r})"


class CasEmulator:
    """Emulates POST {url}/actuator/awsSts of an Apereo CAS server, on 127.0.0.1.

    users: {username: {"password": str, "attributes": {name: [values]}, "mfa": None | "duo"}}
    """

    def __init__(self, sts_url, users=None, *, rbac_enabled=False, principal_attribute_name=None,
                 principal_attribute_value=None, version="7", line_ending="\n", region="us-east-1",
                 endpoint_mode="enabled", valid_passcodes=(), push_response=None, push_delay=0.0,
                 push_timeout=60.0, max_role_duration=43200, context_path="/cas", port=0,
                 server_access_key="AKIAEMULATEDCASSERVER", server_secret_key="emulated-cas-server-secret"):
        if str(version)[:1] not in ("6", "7"):
            raise ValueError("version must be '6' or '7'")
        if endpoint_mode not in ("enabled", "disabled", "unauthorized", "forbidden"):
            raise ValueError(f"bad endpoint_mode {endpoint_mode!r}")
        if push_response not in (None, "approve", "deny"):
            raise ValueError(f"bad push_response {push_response!r}")
        self.sts_url = sts_url
        self.users = users or {}
        self.rbac_enabled = rbac_enabled
        self.principal_attribute_name = principal_attribute_name
        self.principal_attribute_value = principal_attribute_value
        self.version = str(version)
        self.line_ending = line_ending
        self.region = region
        self.endpoint_mode = endpoint_mode
        self.valid_passcodes = set(valid_passcodes)
        self.push_response = push_response
        self.push_delay = push_delay
        self.push_timeout = push_timeout
        self.max_role_duration = max_role_duration
        self.context_path = "/" + context_path.strip("/") if context_path.strip("/") else ""

        self.requests = []       # form fields (first value of each) of every POST to the endpoint
        self.sts_calls = []      # {"action", "duration", "role_arn", "session_name", ...} sent to STS
        self.responses = []      # (status, body) of every answer from the endpoint
        self.push_requests = queue.Queue()   # PendingPush objects, one per push sent
        self._pending = collections.deque()
        self._lock = threading.Lock()
        self._post_count = 0

        self._sts = boto3.client(
            "sts", endpoint_url=sts_url, region_name="us-east-1",
            aws_access_key_id=server_access_key, aws_secret_access_key=server_secret_key,
            config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )

        self.server = LoopbackHTTPServer(("127.0.0.1", port), self._handler_class())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # never print (may hold bodies)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = self.base_url + self.context_path
        self.endpoint = self.url + "/actuator/awsSts"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="cas-emulator", daemon=True)
        self._thread.start()

    # ---- lifecycle ---------------------------------------------------------------------------
    def stop(self):
        with self._lock:
            pending = list(self._pending)
        for p in pending:
            p.deny()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- inspection --------------------------------------------------------------------------
    @property
    def post_count(self) -> int:
        with self._lock:
            return self._post_count

    def clear(self):
        with self._lock:
            self.requests.clear()
            self.sts_calls.clear()
            self.responses.clear()
            self._post_count = 0

    # ---- Duo push control --------------------------------------------------------------------
    def _oldest_pending(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                while self._pending and self._pending[0].answered:
                    self._pending.popleft()
                if self._pending:
                    return self._pending.popleft()
            if time.monotonic() >= deadline:
                raise TimeoutError("no pending Duo push")
            time.sleep(0.01)

    def approve_push(self, timeout=5.0) -> PendingPush:
        """Approve the oldest pending push (waiting up to timeout for one to arrive)."""
        p = self._oldest_pending(timeout)
        p.approve()
        return p

    def deny_push(self, timeout=5.0) -> PendingPush:
        p = self._oldest_pending(timeout)
        p.deny()
        return p

    # ---- the endpoint ------------------------------------------------------------------------
    def _authenticate(self, form):
        """CAS REST authentication (+ Duo). Returns the user's attributes, or None on failure."""
        username, password = form.get("username"), form.get("password")
        if not username or not password:
            return None
        user = self.users.get(username)
        if user is None or user.get("password") != password:
            return None
        if user.get("mfa") == "duo":
            passcode = form.get("passcode")
            if passcode:
                if passcode not in self.valid_passcodes:
                    return None
            elif not self._push(username, form):
                return None
        return dict(user.get("attributes") or {})

    def _push(self, username, form) -> bool:
        p = PendingPush(username, form)
        with self._lock:
            self._pending.append(p)
        self.push_requests.put(p)
        if self.push_response is not None:
            def auto():
                if self.push_delay:
                    time.sleep(self.push_delay)
                p.approve() if self.push_response == "approve" else p.deny()
            threading.Thread(target=auto, daemon=True).start()
        ok = p.wait(self.push_timeout)
        p._answer(False)  # timed out: too late to approve
        with self._lock:
            try:
                self._pending.remove(p)
            except ValueError:
                pass
        return ok and p.approved

    def _credentials_body(self, creds) -> str:
        region = self.region if self.region else "aws-global"
        nl = self.line_ending
        out = "[default]\n"
        for key, value in (("aws_access_key_id", creds["AccessKeyId"]),
                           ("aws_secret_access_key", creds["SecretAccessKey"]),
                           ("aws_session_token", creds["SessionToken"]),
                           ("region", region)):
            out += f"{key}={value}{nl}"
        return out

    def _call_sts(self, action, seconds, role=None, token=None, serial=None):
        limit = self.max_role_duration if action == "AssumeRole" else MAX_SESSION_TOKEN_DURATION
        kwargs = {"DurationSeconds": seconds}
        if serial is not None:
            kwargs["SerialNumber"] = serial
        if token is not None:
            kwargs["TokenCode"] = token
        call = {"action": action, "duration": seconds, "serial_number": serial, "token_code": token}
        if action == "AssumeRole":
            kwargs["RoleArn"] = role
            kwargs["RoleSessionName"] = str(uuid.uuid4())
            call.update(role_arn=role, session_name=kwargs["RoleSessionName"])
        with self._lock:
            self.sts_calls.append(call)
        # What real STS checks and moto does not.
        if seconds < MIN_STS_DURATION or seconds > limit:
            raise _ServerError(f"StsException: 1 validation error detected: Value '{seconds}' at "
                               f"'durationSeconds' failed to satisfy constraint (Service: Sts, Status Code: 400)")
        if action == "AssumeRole" and not 20 <= len(role) <= 2048:
            raise _ServerError("StsException: 1 validation error detected: Value at 'roleArn' failed to "
                               "satisfy constraint (Service: Sts, Status Code: 400)")
        try:
            if action == "AssumeRole":
                return self._sts.assume_role(**kwargs)["Credentials"]
            return self._sts.get_session_token(**kwargs)["Credentials"]
        except Exception as e:  # botocore ClientError / ParamValidationError
            raise _ServerError(f"StsException: {type(e).__name__}") from None

    def handle_form(self, form):
        """The body of fetchCredentials(); returns (status, body). Raises _ServerError for 5xx."""
        attributes = self._authenticate(form)
        if attributes is None:
            return 401, "Authentication failed"

        name = self.principal_attribute_name
        if name:
            if name not in attributes:
                return 401, "Authorization failure"
            if self.principal_attribute_value and not any(
                    _regex_find(self.principal_attribute_value, str(v)) for v in attributes[name]):
                return 401, "Authorization failure"

        raw_duration = form.get("duration")
        if self.version.startswith("6"):
            # @RequestParam(defaultValue = "PT1H"): Spring replaces a missing or empty value only.
            raw_duration = raw_duration or "PT1H"
        else:
            # StringUtils.defaultIfBlank(requestBody.getFirst("duration"), "PT15S")
            raw_duration = raw_duration if raw_duration and raw_duration.strip() else "PT15S"
        role_arn = form.get("roleArn")
        token, serial = form.get("token"), form.get("serialNumber")

        if self.rbac_enabled:
            values = attributes.get(name) if name else None
            if values is None:
                raise _ServerError("NullPointerException")
            values = list(values)
            if len(values) > 1:
                if not role_arn or not role_arn.strip():
                    return 401, "Found multiple roles and none is specified. Current roles: " + java_list(values)
                if not any(_regex_find(role_arn, str(v)) for v in values):
                    return 401, "Specified role is not allowed. Current roles:" + java_list(values)
            if self.version.startswith("6"):
                role = role_arn  # StringUtils.defaultString: only null falls back
            else:
                role = role_arn if role_arn and role_arn.strip() else None  # defaultIfBlank
            if role is None:
                if not values:
                    raise _ServerError("NoSuchElementException")
                role = str(values[0])
            seconds = parse_duration(raw_duration)
            creds = self._call_sts("AssumeRole", seconds, role=role, token=token, serial=serial)
            return 200, self._credentials_body(creds)

        seconds = parse_duration(raw_duration)
        creds = self._call_sts("GetSessionToken", seconds, token=token, serial=serial)
        return 200, self._credentials_body(creds)

    def _handler_class(self):
        emu = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "CasEmulator"
            sys_version = ""

            def log_message(self, *args):  # never log (and never print bodies)
                pass

            def _send(self, status, body, content_type="text/plain;charset=UTF-8", headers=()):
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error_page(self, status, path):
                """Spring Boot's default error answer: JSON for API clients, HTML for browsers."""
                reason = http.HTTPStatus(status).phrase
                if "text/html" in (self.headers.get("Accept") or ""):
                    body = (f"<html><body><h1>Whitelabel Error Page</h1><p>This application has no explicit "
                            f"mapping for /error, so you are seeing this as a fallback.</p>"
                            f"<div>There was an unexpected error (type={html.escape(reason)}, status={status}).</div>"
                            f"</body></html>")
                    return status, body, "text/html;charset=UTF-8"
                body = json.dumps({
                    "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                    "status": status, "error": reason, "path": path})
                return status, body, "application/json"

            def _content_type_for_success(self):
                accept = (self.headers.get("Accept") or "").strip()
                if not accept or "*/*" in accept or "text/plain" in accept or "text/*" in accept:
                    return "text/plain;charset=UTF-8"
                first = accept.split(",")[0].split(";")[0].strip()
                return (first or "text/plain") + ";charset=UTF-8"

            def _dispatch(self):
                split = urllib.parse.urlsplit(self.path)
                path = split.path
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                endpoint_path = emu.context_path + "/actuator/awsSts"
                if path != endpoint_path:
                    return self._send(*self._error_page(404, path))
                if self.command == "POST":
                    ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                    form = {}
                    if ctype == "application/x-www-form-urlencoded":
                        parsed = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
                        form = {k: v[0] for k, v in parsed.items()}
                        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
                        for k in _REQUEST_PARAMS + (("duration",) if emu.version.startswith("6") else ()):
                            if k not in form and k in query:
                                form[k] = query[k][0]
                    with emu._lock:
                        emu._post_count += 1
                        emu.requests.append(dict(form))
                mode = emu.endpoint_mode
                if mode == "disabled":
                    return self._send(*self._error_page(404, path))
                if mode == "unauthorized":
                    status, body, ct = self._error_page(401, path)
                    return self._send(status, body, ct, headers=[("WWW-Authenticate", 'Basic realm="Realm"')])
                if mode == "forbidden":
                    return self._send(*self._error_page(403, path))
                if self.command != "POST":
                    status, body, ct = self._error_page(405, path)
                    return self._send(status, body, ct, headers=[("Allow", "POST")])
                if ctype != "application/x-www-form-urlencoded":
                    return self._send(*self._error_page(415, path))
                try:
                    status, body = emu.handle_form(form)
                except _ServerError:
                    status, body, ct = self._error_page(500, path)
                    with emu._lock:
                        emu.responses.append((status, body))
                    return self._send(status, body, ct)
                except Exception:
                    status, body, ct = self._error_page(500, path)
                    with emu._lock:
                        emu.responses.append((status, body))
                    return self._send(status, body, ct)
                with emu._lock:
                    emu.responses.append((status, body))
                ct = self._content_type_for_success() if status == 200 else "text/plain;charset=UTF-8"
                return self._send(status, body, ct)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

        return Handler


def main(argv=None):
    ap = argparse.ArgumentParser(description="Emulated Apereo CAS awsSts endpoint on 127.0.0.1 (test peer)")
    ap.add_argument("--sts-url", required=True, help="moto server URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD[:ROLE,ROLE...]",
                    help="a user; roles go into the attribute named by --attr-name (default awsroles)")
    ap.add_argument("--duo-user", action="append", default=[], metavar="NAME", help="require Duo for NAME")
    ap.add_argument("--passcode", action="append", default=[], help="a valid Duo passcode")
    ap.add_argument("--push", choices=["approve", "deny"], default="approve", help="auto answer to pushes")
    ap.add_argument("--push-delay", type=float, default=2.0)
    ap.add_argument("--rbac", action="store_true")
    ap.add_argument("--attr-name", default=None)
    ap.add_argument("--attr-value", default=None)
    ap.add_argument("--cas-version", choices=["6", "7"], default="7")
    ap.add_argument("--crlf", action="store_true")
    ap.add_argument("--region", default="us-east-1")
    args = ap.parse_args(argv)
    attr = args.attr_name or "awsroles"
    users = {}
    for spec in args.user:
        parts = spec.split(":", 2)
        if len(parts) < 2:
            ap.error(f"--user {parts[0]}: expected NAME:PASSWORD[:ROLES]")
        roles = [r for r in parts[2].split(",") if r] if len(parts) == 3 else []
        users[parts[0]] = {"password": parts[1], "attributes": {attr: roles} if roles else {},
                           "mfa": "duo" if parts[0] in args.duo_user else None}
    emu = CasEmulator(args.sts_url, users, rbac_enabled=args.rbac, principal_attribute_name=args.attr_name
                      or (attr if args.rbac else None), principal_attribute_value=args.attr_value,
                      version=args.cas_version, line_ending="\r\n" if args.crlf else "\n",
                      region=args.region or None, valid_passcodes=args.passcode,
                      push_response=args.push, push_delay=args.push_delay, port=args.port)
    print(emu.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
