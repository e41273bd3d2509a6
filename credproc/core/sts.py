"""STS clients built with explicit credentials (or unsigned), never from the default chain, and
the translation of botocore failures into credproc errors.

The botocore session is isolated from the caller's AWS config: AWS_PROFILE may name the very profile
whose credential_process is credproc (or one that does not exist), and a profile's endpoint_url
must not redirect our STS calls. The STS endpoint comes from credproc's own config only.
"""

import os
import re
import threading
import time

from . import log
from .credentials import Credentials, mask
from .errors import AccessDenied, AuthenticationFailed, CredprocError, NetworkError, ServiceError


def sanitize_session_name(value, fallback="credproc"):
    """Make any string a valid RoleSessionName: [\\w+=,.@-], 2 to 64 characters."""
    name = re.sub(r"[^\w+=,.@-]", "-", value or "", flags=re.ASCII).strip("-")[:64]
    if len(name) < 2:
        name = fallback
    return name


def default_session_name():
    try:
        import getpass

        user = getpass.getuser()
    except Exception:  # no login name (some containers)
        user = ""
    return sanitize_session_name(f"credproc-{user}" if user else "credproc")


_session = None
# The whole STS call, retries included, ends by then: botocore's timeouts are per connect and per
# read, so a server sending a byte every few seconds would otherwise hold the refresh lock for ever.
DEADLINE = 40
MAX_BODY_BYTES = 256 * 1024  # STS answers are a few KiB


def botocore_session():
    global _session
    if _session is None:
        import botocore.session

        _session = botocore.session.Session(session_vars={
            "profile": (None, None, None, None),
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        })
        _session.set_config_variable("ignore_configured_endpoint_urls", True)
    return _session


def client(region, endpoint_url=None, credentials=None, timeout=None):
    """credentials=None: an unsigned client (AssumeRoleWithWebIdentity). timeout: one attempt, with
    that connect and read timeout (doctor's probe)."""
    import botocore
    import botocore.config

    cfg = botocore.config.Config(connect_timeout=timeout or 5, read_timeout=timeout or 30,
                                 retries={"total_max_attempts": 1 if timeout else 3, "mode": "standard"},
                                 user_agent_appid="credproc")
    kwargs = {"region_name": region, "endpoint_url": endpoint_url}
    if credentials is None:
        cfg = cfg.merge(botocore.config.Config(signature_version=botocore.UNSIGNED))
    else:
        kwargs.update(aws_access_key_id=credentials.access_key_id, aws_secret_access_key=credentials.secret_access_key,
                      aws_session_token=credentials.session_token)
    import botocore.exceptions as bx

    try:
        sts_client = botocore_session().create_client("sts", config=cfg, **kwargs)
    except bx.BotoCoreError as e:
        raise ServiceError(f"cannot set up an STS client for region {region!r}: {type(e).__name__}") from None
    sts_client.meta.events.register("before-send.sts", _capped_sender(sts_client))
    return sts_client


class _Call:
    """What the STS call in flight is reading, so that the deadline can shut its socket."""

    def __init__(self):
        self.raw = None
        self.expired = False


_current = threading.local()


def _capped_sender(sts_client):
    """A before-send handler that sends with botocore's own transport (TLS, proxies, its errors and
    retries) but reads the answer itself, in chunks, abandoning it past MAX_BODY_BYTES."""
    http_session = sts_client._endpoint.http_session

    def send(request, **kwargs):
        call = getattr(_current, "call", None)
        if call is not None and call.expired:  # given up already: no retry in the background
            raise NetworkError(f"STS at {sts_client.meta.endpoint_url}: the call was given up")
        request.stream_output = True  # botocore would read the whole body, however large
        response = http_session.send(request)
        raw = response.raw
        if call is not None:
            call.raw = raw
            if call.expired:
                _shutdown(raw)
        declared = response.headers.get("content-length", "")
        body, size = [], 0
        try:
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _TooLarge()
            for chunk in raw.stream(16 * 1024, decode_content=False):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _TooLarge()
                body.append(chunk)
        except _TooLarge:
            _shutdown(raw, close=True)
            raise ServiceError(f"STS at {sts_client.meta.endpoint_url} sent an answer larger than {MAX_BODY_BYTES} bytes") \
                from None
        response._content = b"".join(body)
        if not sts_shaped(response._content):
            raise _not_sts(sts_client.meta.endpoint_url, response.status_code, response.headers.get("content-type"))
        return response

    return send


# An STS answer, result or error, is one XML element named ...Response (AssumeRoleResponse,
# ErrorResponse), complete. A captive portal's or proxy's page, a load balancer's 502 and a cut-off
# answer are not: botocore would fail on them with a KeyError or a parser error, or read a 5xx page
# as an error code "502".
_STS_OPEN = re.compile(rb"\A\s*(?:<\?xml[^>]{0,200}\?>\s*)?<(?P<tag>[A-Za-z]{1,64}Response)[\s>]")


def sts_shaped(body):
    m = _STS_OPEN.match(body)
    return bool(m) and body.rstrip().endswith(b"</" + m.group("tag") + b">")


def _not_sts(endpoint, status, content_type):
    kind = (content_type or "no content type").split(";")[0].strip()[:40]
    return NetworkError(f"STS at {endpoint} answered HTTP {status} ({kind}), which is not an STS response (a proxy or "
                        "captive portal?)",
                        hint="sign in to the network's portal, check the proxy settings (HTTPS_PROXY, NO_PROXY) "
                             "and sts_endpoint_url, then try again")


class _TooLarge(Exception):
    pass


def _shutdown(raw, close=False):
    """Shut the answer's socket down (safe from another thread: a blocked read returns); close it
    only from the reading thread (closing takes the reader's lock)."""
    from .http import shutdown_socket

    conn = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    shutdown_socket(getattr(conn, "sock", None))
    if close:
        try:
            raw.close()
        except Exception:  # noqa: BLE001 - best effort
            pass


def _with_deadline(fn, endpoint, deadline=None):
    """fn() in a worker thread, given up (its socket shut down) after `deadline` seconds (DEADLINE)."""
    deadline = deadline or DEADLINE
    call = _Call()
    result = {}

    def run():
        _current.call = call
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = e

    worker = threading.Thread(target=run, name="credproc-sts", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        call.expired = True
        if call.raw is not None:
            _shutdown(call.raw)
        raise NetworkError(f"STS at {endpoint} did not answer within {deadline} s",
                           hint="check the network, proxy, and sts_endpoint_url")
    if "error" in result:
        raise result["error"]
    return result["value"]


SKEW_WARN = 300  # seconds: AWS rejects a request signed more than 5 minutes off its clock
_clock = {"skew": None, "warned": False}


def clock_message(skew):
    minutes = round(abs(skew) / 60)
    return (f"your clock is {minutes} minutes {'ahead of' if skew > 0 else 'behind'} STS's (by its Date header); AWS "
            "rejects requests signed more than 5 minutes off")


def clock_skew():
    """Seconds this machine's clock is ahead of STS's (negative: behind), as the last STS answer's
    Date header showed, or None when no answer had one."""
    return _clock["skew"]


def _note_clock(headers, sent_at):
    """Compare our clock with STS's Date header; say so (once per run) when they are minutes apart."""
    date = (headers or {}).get("date")
    if not date:
        return
    import email.utils  # ~5 ms: only when an answer is in

    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return
    now = time.time()
    skew = int(now - server) if now - server > 0 else int(sent_at - server)  # the send-receive time is not skew
    _clock["skew"] = skew
    if abs(skew) > SKEW_WARN and not _clock["warned"]:
        _clock["warned"] = True
        log.warn(f"{clock_message(skew)}: set the system clock (e.g. turn on NTP: timedatectl set-ntp true)")


def credentials_from_response(response, sent_at):
    """Credentials whose Expiration is safe by the local clock: STS's expiry, or the local send time
    plus the lifetime STS granted (its Expiration minus its Date header), whichever is earlier. A
    local clock behind STS's would otherwise keep credentials past their real end."""
    if not isinstance(response.get("Credentials"), dict):
        raise ServiceError("STS answered without credentials (not the answer to the call made)")
    creds = Credentials.from_sts(response["Credentials"])
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        try:
            import email.utils  # ~5 ms: when an answer is in, not whenever this module is imported

            server_now = email.utils.parsedate_to_datetime(date).timestamp()
            lifetime = creds.expiration - int(server_now)
            local = int(sent_at) + lifetime
            if local < creds.expiration:
                log.debug("local clock is %d s behind STS; shortening the expiry to match", creds.expiration - local)
                creds.expiration = local
        except (TypeError, ValueError):
            pass
    arn = (response.get("AssumedRoleUser") or {}).get("Arn")
    if arn:
        from .credentials import account_from_arn

        creds.account_id = account_from_arn(arn)
    return creds


PROBE_KEY = Credentials("AKIACREDPROCPROBE000", "not-a-secret: credproc doctor's STS probe")


def probe(endpoint_url, timeout):
    """doctor: is STS what answers at endpoint_url? A GetCallerIdentity signed with a key that
    does not exist (harmless: it changes nothing and needs no credentials) must come back in STS's
    own shape: an error (InvalidClientTokenId from AWS) or a result (an emulator). A proxy's or
    captive portal's page, a 5xx page and a POST that hangs do not. (Signed, not unsigned: an
    emulator serving several services routes an unsigned request to another one.) Returns what
    answered; raises CredprocError."""
    try:
        call(client("us-east-1", endpoint_url, PROBE_KEY, timeout=timeout), "GetCallerIdentity", "a probe key",
             deadline=timeout + 1)
    except (AuthenticationFailed, AccessDenied, ServiceError) as e:
        code = getattr(e, "sts_code", None)
        if code:
            return f"STS answers ({code} to a probe with a key that does not exist)"
        raise
    return "STS answers"


def call(sts_client, operation, context, deadline=None, **params):
    """Run an STS operation; return (response, sent_at). `context` describes the caller for messages
    (e.g. "profile corp-user (AKIA…WXYZ)")."""
    import botocore.exceptions as bx

    sent_at = time.time()
    log.debug("STS %s at %s as %s", operation, sts_client.meta.endpoint_url, context)
    try:
        method = getattr(sts_client, _snake(operation))
        response = _with_deadline(lambda: method(**params), sts_client.meta.endpoint_url, deadline)
        _note_clock(response.get("ResponseMetadata", {}).get("HTTPHeaders"), sent_at)
        return response, sent_at
    except CredprocError:
        raise
    except bx.ClientError as e:
        _note_clock(e.response.get("ResponseMetadata", {}).get("HTTPHeaders"), sent_at)
        error = translate_client_error(e, operation, context, params)
        error.sts_code = e.response.get("Error", {}).get("Code")  # STS's own shape: parsed from its XML
        raise error from None
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.SSLError,
            bx.ProxyConnectionError, bx.ConnectionClosedError) as e:
        raise NetworkError(f"cannot reach STS at {sts_client.meta.endpoint_url}: {connection_reason(e)}",
                           hint="check the network, proxy, and sts_endpoint_url") from None
    except bx.ParamValidationError:
        # botocore's message can quote a parameter's value (an MFA code, a token): never shown
        raise ServiceError(f"STS {operation} rejected the request parameters; check the role's settings") from None
    except bx.HTTPClientError as e:
        raise NetworkError(f"the connection to STS at {sts_client.meta.endpoint_url} failed: {type(e).__name__}") from None
    except bx.BotoCoreError as e:
        raise ServiceError(f"STS {operation} failed: {type(e).__name__}") from None


def connection_reason(e):
    """Why a connection failed, as the operating system says it ("Connection refused", "Name or
    service not known"), found under botocore's and urllib3's wrappers; else the wrapper's name."""
    import socket

    seen, todo = set(), [e]
    while todo:
        x = todo.pop(0)
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, (socket.timeout, TimeoutError)) or "Timeout" in type(x).__name__:
            return "timed out"
        if isinstance(x, OSError) and x.strerror:
            return x.strerror
        todo += [getattr(x, "kwargs", {}).get("error"), x.__cause__, x.__context__]
    return type(e).__name__


def _snake(name):
    """botocore's method name for an operation (AssumeRoleWithSAML -> assume_role_with_saml)."""
    from botocore import xform_name

    return xform_name(name)


def translate_client_error(e, operation, context, params):
    err = e.response.get("Error", {})
    code, message = err.get("Code", "Unknown"), err.get("Message", "")
    target = params.get("RoleArn")
    if operation == "AssumeRoleWithSAML":  # first: its codes mean something else here
        if code in ("InvalidIdentityToken", "ExpiredTokenException"):
            return AuthenticationFailed(f"STS rejected the SAML assertion of {context}: {message[:200]}",
                                        hint="the IAM SAML provider must hold the IdP's current metadata (its "
                                             "signing certificate), and the assertion must be for urn:amazon:webservices")
        if code in ("AccessDenied", "IDPRejectedClaim"):
            return AccessDenied(f"{context} is not allowed to assume {target}: {message[:200]}",
                                hint="the role's trust policy must allow sts:AssumeRoleWithSAML for the SAML provider "
                                     f"{params.get('PrincipalArn')}, with a SAML:aud condition on the sign-in endpoint")
    if code in ("InvalidClientTokenId", "UnrecognizedClientException"):
        return AuthenticationFailed(f"STS does not recognise the credentials of {context}: the access key was deleted, "
                                    "deactivated or mistyped, or the session token is wrong",
                                    hint="check the keys (aws configure) or create new ones in IAM")
    if code == "SignatureDoesNotMatch":
        return AuthenticationFailed(f"the secret access key of {context} is wrong (STS: SignatureDoesNotMatch)",
                                    hint="re-enter the key pair where it is kept (aws configure, or credproc keys add)")
    if code in ("ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"):
        return AuthenticationFailed(f"the credentials of {context} have expired",
                                    hint="refresh them at their source, or run credproc login --force")
    if code == "AccessDenied" and "MultiFactorAuthentication" in message:
        return AuthenticationFailed(f"STS rejected the MFA code for {params.get('SerialNumber')}",
                                    hint="wait for the next code and try again; check mfa_serial")
    if operation == "AssumeRoleWithWebIdentity":
        if code in ("InvalidIdentityToken", "ExpiredTokenException"):
            return AuthenticationFailed(f"STS rejected the ID token of {context}: {message[:200]}",
                                        hint="is the issuer registered as an IAM OIDC identity provider with this client id as audience?")
        if code == "AccessDenied":
            return AccessDenied(f"{context} is not allowed to assume {target}",
                                hint="the role's trust policy must allow sts:AssumeRoleWithWebIdentity for this provider, "
                                     "with matching aud and sub conditions")
        if code == "IDPCommunicationError":
            return ServiceError(f"STS could not reach the identity provider to check the token: {message[:200]}")
    if code == "AccessDenied" and operation == "AssumeRole":
        return AccessDenied(f"{context} is not allowed to assume {target}",
                            hint="the role's trust policy must allow this caller, and the caller's policy sts:AssumeRole")
    if code == "AccessDenied":
        return AccessDenied(f"STS {operation} denied for {context}: {message[:200]}")
    if code in ("RegionDisabledException",):
        return ServiceError(f"STS is not activated in this region for the account: {message[:200]}",
                            hint="set region or sts_endpoint_url to an active region")
    return ServiceError(f"STS {operation} failed for {context}: {code}: {message[:200]}")


def describe_source(label, credentials):
    return f"{label} ({mask(credentials.access_key_id)})"


def caller_arn(sts_client):
    """Best effort: who these credentials are (for an AccessDenied message)."""
    try:
        return sts_client.get_caller_identity()["Arn"]
    except Exception:  # noqa: BLE001 - a diagnostic only
        return None
