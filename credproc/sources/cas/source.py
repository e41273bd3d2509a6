"""type = "cas": Apereo CAS `awsSts` endpoint. CAS authenticates the user (password, Duo) and
calls STS itself, so nothing is cached for the idp apart from each role's credentials."""

import os

from ..base import IdentitySource, Key
from ..checks import in_range, readable_file, secure_url


class CasSource(IdentitySource):
    type_name = "cas"
    title = "Apereo CAS `awsSts` endpoint"
    example_idp = {"url": "https://sso.example.edu/cas"}
    init_keys = ("url", "username", "mfa")
    keys = (
        Key("url", str, required=True, check=secure_url, hint=" (the CAS prefix, e.g. https://sso.example.edu/cas)",
            doc="The CAS prefix, e.g. `https://sso.example.edu/cas`. credproc POSTs to `URL/actuator/awsSts`. "
                "Must be `https://`; plain `http://` is allowed only to a loopback address."),
        Key("username", str, default_doc="none (prompt)", doc="CAS username."),
        Key("password_command", str, default_doc="none (prompt)",
            doc="A command that prints the password (first line). It runs without a shell and is never logged."),
        Key("mfa", str, default="push", choices=["push", "passcode", "none"],
            doc="Duo push (approve on your phone; with `username` and `password_command` set it needs no terminal), "
                "a Duo passcode typed at the prompt, or no MFA."),
        Key("ca_bundle", str, check=readable_file, convert=os.path.expanduser, type_doc="path",
            default_doc="system trust store",
            doc="PEM file of your organisation's CA. `~` is expanded and the file must exist."),
        Key("timeout", int, default=120, check=in_range(5, 600), type_doc="integer, 5..600",
            doc="Seconds to wait for CAS to answer one request, from connecting to the last byte of the answer, including the time you take to approve a push. "
                "Without a terminal a push is waited for at most 45 s from the start of the run, whatever this says "
                "(the Go SDK kills a `credential_process` at 60 s)."),
        Key("push_backoff", int, default=300, check=in_range(0, 86400), type_doc="integer, 0..86400",
            doc="After a push is denied or not answered, send no push without a terminal for this many seconds: such "
                "callers fail at once (exit 4) with the `credproc login` hint. Protects you from push fatigue. A push "
                "at a terminal is always sent, and an approved one ends the pause. `0` turns the pause off."),
    )
    # CAS makes the STS call itself: no AssumeRole parameters, no region or endpoint of ours
    ignored_role_keys = ("session_name", "external_id", "source_identity", "tags", "transitive_tag_keys",
                         "policy_arns", "region", "sts_endpoint_url")
    role_calls_sts = False

    def build_chain(self, ctx, idp, role, session_name, region, endpoint):
        from .provider import CasProvider

        return CasProvider(ctx, idp, role)

    def doctor_probes(self, idp):
        return [("the CAS server", idp["url"], idp.get("ca_bundle"))]

    def doctor_network_checks(self, cfg, idp):
        return [(_endpoint_check, f"idp {idp['name']}", idp)]


def _endpoint_check(label, idp):
    """doctor: URL/actuator/awsSts exists (any answer but 404; nothing is sent). A wrong prefix
    (the login page's URL, a missing /cas) answers 404 there, and every login would fail."""
    from ...core.diagnose import TIMEOUT as DOCTOR_TIMEOUT
    from ...core.diagnose import fail, ok
    from ...core.errors import CredprocError
    from ...core.http import request

    endpoint = idp["url"].rstrip("/") + "/actuator/awsSts"
    what = f"{label}: the CAS awsSts endpoint {endpoint}"
    try:
        resp = request("GET", endpoint, timeout=DOCTOR_TIMEOUT, ca_bundle=idp.get("ca_bundle"), what="the CAS server",
                       follow_redirects=False, max_bytes=64 * 1024)
    except CredprocError as e:
        return fail(what, e.message, e.hint or "check the URL, the network and any proxy")
    except Exception as e:  # noqa: BLE001 - a diagnostic must not crash doctor
        return fail(what, f"the check failed ({type(e).__name__})", "run credproc --debug login to see more")
    if resp.status == 404:
        return fail(what, "answers HTTP 404: there is no awsSts endpoint there",
                    "url must be the CAS prefix (e.g. https://sso.example.edu/cas), and the server must have the "
                    "awsSts actuator endpoint enabled")
    return ok(f"{what} exists (HTTP {resp.status})")


SOURCE = CasSource()
