"""SAML 2.0 for AssumeRoleWithSAML: a signed Response from the organisation's IdP, by ECP (a SOAP
AuthnRequest with HTTP Basic credentials) or by the IdP-initiated sign-on form, and the checks
credproc is responsible for before the Response goes to STS.

STS checks the signature; it cannot check that the assertion was meant for AWS, is still valid and
offers the role asked for before credproc sends it, and test doubles check none of it: so this
module does. The base64 Response is a bearer secret: it is never logged, never in an exception.

XML from the IdP is parsed only after expat has seen that it declares no DTD (so no entity of any
kind, internal or external, can be defined); ElementTree then reads it.
"""

import base64
import binascii
import html.parser
import http.cookiejar
import re
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from xml.parsers import expat

from ...core import http as _http
from ...core import log
from ...core.credentials import parse_expiration
from ...core.errors import AuthenticationFailed, ServiceError
from ...core.text import clean

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
PAOS_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:PAOS"
ECP_PROFILE = "urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp"
ROLE_ATTR = "https://aws.amazon.com/SAML/Attributes/Role"
SESSION_NAME_ATTR = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
SESSION_DURATION_ATTR = "https://aws.amazon.com/SAML/Attributes/SessionDuration"

# partition: (AWS's SAML entity id = the audience, AWS's assertion consumer service)
PARTITIONS = {
    "aws": ("urn:amazon:webservices", "https://signin.aws.amazon.com/saml"),
    "aws-us-gov": ("urn:amazon:webservices:govcloud", "https://signin.amazonaws-us-gov.com/saml"),
    "aws-cn": ("urn:amazon:webservices:cn-north-1", "https://signin.amazonaws.cn/saml"),
}
ROLE_RE = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+\Z")
PROVIDER_RE = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:saml-provider/[\w.-]+\Z")
SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}\Z", re.ASCII)
MAX_PAGES = 15  # redirects and pages in one form sign-on: a loop must end
# the hint of the errors that mean the IdP (or whatever answers at url) does not behave as SAML says
IDP_HINT = "check url; if it is right, show this message to the IdP administrator"
MAX_ANSWER = 4 << 20  # bytes: a signed Response is ~10 KB, a login page rarely 500 KB


def partition(region):
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def service_provider(region, sp_entity_id=None):
    """(entity id, ACS URL) of AWS as the SAML service provider for the region's partition."""
    entity, acs = PARTITIONS.get(partition(region or "us-east-1"), PARTITIONS["aws"])
    return sp_entity_id or entity, acs


# -- safe XML ------------------------------------------------------------------------------------
class _Refused(Exception):
    pass


def _refuse(*args):
    raise _Refused()


def _scan(data, want=None):
    """Run expat over data, refusing any DTD or entity declaration. With `want` (a namespaced tag
    "{ns}name"), return the byte span (start, end) of the first such element whose parent is the
    SOAP Body, else None."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    stack, span = [], {}

    def start(name, attrs):
        tag = "{" + name if "}" in name else name
        if want and not span and tag == want and stack and stack[-1] == "{" + SOAP + "}Body":
            span["start"] = parser.CurrentByteIndex
            span["depth"] = len(stack)
        stack.append(tag)

    def end(name):
        stack.pop()
        if "start" in span and "end" not in span and len(stack) == span["depth"]:
            close = data.find(b">", parser.CurrentByteIndex)
            span["end"] = close + 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(data, True)
    if "end" in span:
        return span["start"], span["end"]
    return None


def parse_xml(data, what, want=None):
    """(root element, span of `want` or None); ServiceError for anything that is not plain XML."""
    try:
        span = _scan(data, want)
        return ET.fromstring(data), span
    except _Refused:
        raise ServiceError(f"{what} carries a DTD or entity declarations, which a SAML message never needs; refused",
                           hint=IDP_HINT) \
            from None
    except (expat.ExpatError, ET.ParseError, ValueError):
        raise ServiceError(f"{what} is not well-formed XML", hint=IDP_HINT) from None


# -- reading and checking a Response ---------------------------------------------------------
def _q(ns, name):
    return "{" + ns + "}" + name


def _text(el):
    return (el.text or "").strip() if el is not None else ""


class Assertion:
    """What credproc needs from one SAML Response. `encoded` (base64) is the secret sent to STS."""

    def __init__(self, encoded, issuer, roles, session_name, session_duration, expires_at, audiences, subject):
        self.encoded = encoded
        self.issuer = issuer
        self.roles = roles  # [(role ARN, SAML provider ARN)] in the IdP's order
        self.session_name = session_name
        self.session_duration = session_duration
        self.expires_at = expires_at
        self.audiences = audiences
        self.subject = subject

    def __repr__(self):  # never the assertion itself
        return f"Assertion(issuer={self.issuer!r}, roles={len(self.roles)}, expires_at={self.expires_at!r})"

    def role_arns(self):
        return [r for r, _ in self.roles]

    def provider_for(self, role_arn):
        for role, provider in self.roles:
            if role == role_arn:
                return provider
        return None


def _status(response):
    code = response.find(f"{_q(PROTOCOL, 'Status')}/{_q(PROTOCOL, 'StatusCode')}")
    if code is None:
        return None, [], ""
    sub = [c.get("Value", "") for c in code.iter(_q(PROTOCOL, "StatusCode"))][1:]
    message = _text(response.find(f"{_q(PROTOCOL, 'Status')}/{_q(PROTOCOL, 'StatusMessage')}"))
    return code.get("Value", ""), sub, message


def shown(text, limit=200):
    """Text from the IdP made fit for a one-line message: whitespace runs (newlines too) become one
    space (text.clean, which the CLI applies to every message, keeps newlines), other control
    characters are escaped, and the length is bounded."""
    return clean(" ".join((text or "").split()), limit=limit, line_limit=None)


def _short(urn):
    return urn.rsplit(":", 1)[-1] if urn else "none"


def split_role(value):
    """(role ARN, provider ARN) from a Role attribute value in either order, or None."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        return None
    for role, provider in (parts, parts[::-1]):
        if ROLE_RE.match(role) and PROVIDER_RE.match(provider):
            return role, provider
    return None


def _utc(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _time(value, what):
    try:
        return parse_expiration(value)
    except (TypeError, ValueError):
        raise ServiceError(f"the SAML assertion's {what} is not a valid time", hint=IDP_HINT) from None


def _the_assertion(root, where, sp_entity_id):
    """The one Assertion of a Response, refusing any ambiguity. STS verifies a signature and reads
    the element it covers; credproc checks audience, expiry and roles before sending. Both must be
    reading the same element, so a Response with a second Response or Assertion anywhere inside it
    (in Advice, Extensions, a ds:Object: the places signature wrapping hides the signed one) is
    refused rather than guessed at."""
    responses = sum(1 for _ in root.iter(_q(PROTOCOL, "Response")))
    everywhere = list(root.iter(_q(ASSERTION, "Assertion")))
    encrypted = list(root.iter(_q(ASSERTION, "EncryptedAssertion")))
    direct = root.findall(_q(ASSERTION, "Assertion"))
    if not everywhere and encrypted:
        raise ServiceError(f"{where} sends an encrypted assertion, which credproc cannot check",
                           hint="ask the IdP administrator to turn off assertion encryption for "
                                f"{sp_entity_id} (the TLS connection protects it)")
    if not everywhere:
        raise ServiceError(f"{where} answered with 0 assertions instead of one", hint=IDP_HINT)
    if responses != 1 or len(everywhere) != 1 or len(direct) != 1 or encrypted:
        raise ServiceError(f"{where} answered with a SAML Response holding {responses} Response and "
                           f"{len(everywhere) + len(encrypted)} Assertion elements where one of each is expected: "
                           "credproc cannot tell which one AWS would read, so it refuses it",
                           hint="if the IdP really sends this, report it to its administrator; an attacker between "
                                "you and the IdP can also cause it")
    a = direct[0]
    if len(a.findall(_q(ASSERTION, "Conditions"))) > 1 or len(a.findall(_q(ASSERTION, "Subject"))) > 1:
        raise ServiceError(f"{where} answered with an assertion holding several Conditions or Subject elements, "
                           "which SAML allows once at most; refused", hint=IDP_HINT)
    return a


def _check_signed(root, assertion, where):
    """credproc cannot verify the signature (STS does), but it makes sure there is one, enveloped
    in the Response or the Assertion and naming that element's own ID, and that no other element
    carries that ID: so the element STS verifies is the one whose audience, expiry and roles
    credproc checked."""
    ids = {}
    for el in root.iter():
        if el.get("ID") is not None:
            ids[el.get("ID")] = ids.get(el.get("ID"), 0) + 1
    if any(n > 1 for n in ids.values()):
        raise ServiceError(f"{where} answered with a SAML Response in which two elements carry the same ID: credproc "
                           "cannot tell which one AWS would verify, so it refuses it", hint=IDP_HINT)
    for el in (root, assertion):
        for ref in el.findall(f"{_q(DSIG, 'Signature')}/{_q(DSIG, 'SignedInfo')}/{_q(DSIG, 'Reference')}"):
            if el.get("ID") and ref.get("URI") == "#" + el.get("ID"):
                return
    raise ServiceError(f"{where} answered with a SAML Response that is not signed (neither the Response nor its "
                       "Assertion carries a signature of itself): AWS would refuse it",
                       hint="the IdP administrator must sign the Response or the assertion for AWS")


def read_response(data, encoded, sp_entity_id, now, where, in_response_to=None):
    """Check a samlp:Response (its bytes `data`, `encoded` the base64 STS will get) and return an
    Assertion. `where` names the IdP for messages. Raises AuthenticationFailed when the IdP did not
    sign the user in (status not Success) or the assertion is not usable by AWS (wrong audience,
    expired); ServiceError when it is not a SAML Response at all."""
    root, _ = parse_xml(data, f"the SAML answer of {where}")
    if root.tag != _q(PROTOCOL, "Response"):
        raise ServiceError(f"{where} answered with {root.tag.rpartition('}')[2] or root.tag}, not a SAML Response",
                           hint=IDP_HINT)
    status, sub, message = _status(root)
    if status != SUCCESS:
        detail = "/".join(_short(s) for s in [status] + sub)
        if message:
            detail += f": {shown(message)}"
        raise AuthenticationFailed(f"{where} did not sign you in (SAML status {detail})",
                                   hint="check the username and password" if "WRONGUSERPASS" in message
                                   or "AuthnFailed" in detail else "check the username and password; "
                                   "if they are right, ask the IdP administrator what the status means")
    if in_response_to and root.get("InResponseTo") not in (None, in_response_to):
        raise ServiceError(f"{where} answered another request (InResponseTo does not match ours)", hint=IDP_HINT)
    a = _the_assertion(root, where, sp_entity_id)
    _check_signed(root, a, where)
    issuer = shown(_text(a.find(_q(ASSERTION, "Issuer"))) or _text(root.find(_q(ASSERTION, "Issuer"))), 120) or where

    # audience: every AudienceRestriction must name AWS (SAML core 2.5.1.4), and there must be one
    conditions = a.find(_q(ASSERTION, "Conditions"))
    restrictions = conditions.findall(_q(ASSERTION, "AudienceRestriction")) if conditions is not None else []
    audiences = [[_text(x) for x in r.findall(_q(ASSERTION, "Audience"))] for r in restrictions]
    if not audiences or any(sp_entity_id not in group for group in audiences):
        seen = sorted({shown(x, 120) for group in audiences for x in group})
        raise AuthenticationFailed(
            f"the SAML assertion from {issuer} is for {', '.join(seen) or 'no audience'}, not for {sp_entity_id}",
            hint=f"the IdP must issue it to the relying party {sp_entity_id} (for the form flow, the sign-on URL "
                 "must name that relying party)")

    # validity: the earliest of Conditions and the SubjectConfirmationData
    ends, starts = [], []
    if conditions is not None:
        if conditions.get("NotOnOrAfter"):
            ends.append(_time(conditions.get("NotOnOrAfter"), "NotOnOrAfter"))
        if conditions.get("NotBefore"):
            starts.append(_time(conditions.get("NotBefore"), "NotBefore"))
    for scd in a.findall(f"{_q(ASSERTION, 'Subject')}/{_q(ASSERTION, 'SubjectConfirmation')}/"
                         f"{_q(ASSERTION, 'SubjectConfirmationData')}"):
        if scd.get("NotOnOrAfter"):
            ends.append(_time(scd.get("NotOnOrAfter"), "NotOnOrAfter"))
    if not ends:
        raise ServiceError(f"the SAML assertion from {issuer} has no NotOnOrAfter: AWS would refuse it", hint=IDP_HINT)
    expires_at = min(ends)
    if expires_at <= now:
        ago = now - expires_at
        raise AuthenticationFailed(f"the SAML assertion from {issuer} expired {ago} s ago (NotOnOrAfter "
                                   f"{_utc(expires_at)} UTC)",
                                   hint="check this computer's clock; if it is right, the IdP's clock is wrong or "
                                        "its assertion lifetime too short")
    if starts and max(starts) > now + 60:  # one minute of clock difference is forgiven
        raise AuthenticationFailed(f"the SAML assertion from {issuer} is not valid before "
                                   f"{_utc(max(starts))} UTC",
                                   hint="this computer's clock or the IdP's is wrong")

    attrs = {}
    for attr in a.findall(f"{_q(ASSERTION, 'AttributeStatement')}/{_q(ASSERTION, 'Attribute')}"):
        attrs.setdefault(attr.get("Name", ""), []).extend(_text(v) for v in attr.findall(_q(ASSERTION, "AttributeValue")))
    roles = []
    for value in attrs.get(ROLE_ATTR, []):
        pair = split_role(value)
        if pair is None:
            log.debug("ignoring a Role value that is not 'role ARN,provider ARN': %r", value[:200])
        elif pair not in roles:
            roles.append(pair)
    names = [v for v in attrs.get(SESSION_NAME_ATTR, []) if v]
    session_name = names[0] if names else None
    duration = None
    for value in attrs.get(SESSION_DURATION_ATTR, [])[:1]:
        try:
            duration = int(value)
        except ValueError:
            log.debug("ignoring a SessionDuration that is not a number: %r", value[:50])
    subject = shown(_text(a.find(f"{_q(ASSERTION, 'Subject')}/{_q(ASSERTION, 'NameID')}")), 120)
    return Assertion(encoded, issuer, roles, session_name, duration, expires_at, audiences, subject)


def decode_saml_response(value, where):
    """The bytes of a base64 SAMLResponse form value (whitespace allowed), and the compact base64."""
    compact = "".join(value.split())
    try:
        return base64.b64decode(compact, validate=True), compact
    except (binascii.Error, ValueError):
        raise ServiceError(f"the SAMLResponse from {where} is not base64", hint=IDP_HINT) from None


# -- ECP -----------------------------------------------------------------------------------------
def ecp_request(request_id, sp_entity_id, acs, now):
    instant = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(now)))
    return (
        f'<S:Envelope xmlns:S="{SOAP}" xmlns:saml2="{ASSERTION}" xmlns:saml2p="{PROTOCOL}">'
        f'<S:Body><saml2p:AuthnRequest ID="{request_id}" Version="2.0" IssueInstant="{instant}" '
        f'ProtocolBinding="{PAOS_BINDING}" AssertionConsumerServiceURL="{_xml_attr(acs)}">'
        f"<saml2:Issuer>{_xml_text(sp_entity_id)}</saml2:Issuer>"
        "</saml2p:AuthnRequest></S:Body></S:Envelope>"
    ).encode()


def _xml_attr(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _xml_text(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def new_request_id():
    return "_" + uuid.uuid4().hex  # an xs:ID must not start with a digit


def ecp_headers(username, password, mfa=None, passcode=None):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "Accept": "text/xml, application/vnd.paos+xml",
        "PAOS": f'ver="urn:liberty:paos:2003-08";"{ECP_PROFILE}"',
        "SOAPAction": "http://www.oasis-open.org/committees/security",
        "Authorization": f"Basic {token}",
    }
    if mfa in ("push", "passcode"):  # Shibboleth IdP's Duo (duo-oidc/DuoSecurity ECP) headers
        headers["X-Shibboleth-Duo-Factor"] = mfa
        if mfa == "passcode":
            headers["X-Shibboleth-Duo-Passcode"] = passcode
    return headers


def _is_html(resp):
    ctype = (resp.headers.get("Content-Type") or "").lower()
    return "html" in ctype or resp.body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))


def ecp_sign_on(url, username, password, sp_entity_id, acs, clock, timeout, ca_bundle=None, mfa=None, passcode=None):
    """POST the AuthnRequest to the ECP endpoint; the checked Assertion. No cookies: each sign-on
    stands on its own credentials (an IdP session cookie would let any password through).
    clock() -> epoch seconds: read again after the answer (a Duo push can take minutes)."""
    request_id = new_request_id()
    where = f"the SAML IdP at {no_query(url)}"
    log.debug("SAML ECP AuthnRequest %s to %s for %s (user %s)", request_id, url, sp_entity_id, username)
    resp = _http.request("POST", url, data=ecp_request(request_id, sp_entity_id, acs, clock()),
                         headers=ecp_headers(username, password, mfa, passcode), timeout=timeout,
                         ca_bundle=ca_bundle, what="the SAML IdP", max_bytes=MAX_ANSWER, follow_redirects=False)
    log.debug("SAML ECP answer: HTTP %d, %s", resp.status, resp.headers.get("Content-Type"))
    if resp.status == 401:
        hint = "check the username and password"
        if mfa == "push":
            hint += "; the Duo push may have been denied or timed out"
        elif mfa == "passcode":
            hint += " and use a fresh Duo passcode"
        raise AuthenticationFailed(f"{where} rejected the login of {username} (HTTP 401)", hint=hint)
    if 300 <= resp.status < 400 or (resp.status == 200 and _is_html(resp)):
        raise ServiceError(f"{where} answered the ECP request with a web page, not a SOAP message",
                           hint="url must be the IdP's ECP endpoint, and the IdP administrator must enable ECP for "
                                f"the relying party {sp_entity_id}; for a login page use flow = \"form\" with the "
                                "IdP-initiated sign-on URL")
    if not resp.body.strip():
        raise ServiceError(f"{where} answered HTTP {resp.status} with nothing", hint=IDP_HINT)
    root, span = parse_xml(resp.body, f"the ECP answer of {where}", want=_q(PROTOCOL, "Response"))
    if root.tag != _q(SOAP, "Envelope"):
        raise ServiceError(f"{where} did not answer with a SOAP envelope (HTTP {resp.status})",
                           hint="is url the IdP's ECP endpoint?")
    bodies = root.findall(_q(SOAP, "Body"))
    body = bodies[0] if bodies else None
    first = body[0] if body is not None and len(body) else None
    if first is not None and first.tag == _q(SOAP, "Fault"):
        fault = _text(first.find("faultstring")) or _text(first.find("faultcode")) or "no reason given"
        raise ServiceError(f"{where} answered with a SOAP fault: {shown(fault)}", hint=IDP_HINT)
    if resp.status != 200 or span is None or first is None or first.tag != _q(PROTOCOL, "Response"):
        raise ServiceError(f"{where} answered HTTP {resp.status} without a SAML Response in the SOAP body",
                           hint=IDP_HINT)
    if len(bodies) != 1 or len(body) != 1:  # the IdP's binding reads the first child; refuse to guess
        raise ServiceError(f"{where} answered with {sum(len(b) for b in bodies)} elements in {len(bodies)} SOAP "
                           "bodies where one Response is expected: credproc cannot tell which one AWS would read, "
                           "so it refuses them", hint=IDP_HINT)
    # ECP profile (saml-profiles 4.2.4.5): the client MUST compare the ecp:Response header's consumer
    # URL with the one it asked for and MUST NOT pass the Response on when they differ
    header = root.find(f"{_q(SOAP, 'Header')}/{_q(ECP_PROFILE, 'Response')}")
    if header is not None and header.get("AssertionConsumerServiceURL") not in (None, acs):
        addressed = shown(header.get("AssertionConsumerServiceURL"), 120)
        raise ServiceError(f"{where} addressed its ECP answer to {addressed}, not to AWS's {acs}; refused",
                           hint="the IdP administrator must give the relying party " + sp_entity_id
                                + f" a PAOS assertion consumer service at {acs}")
    # The Response exactly as signed: cut out byte for byte (re-serialising can break the signatures).
    data = resp.body[span[0]:span[1]]
    encoded = base64.b64encode(data).decode()
    return read_response(data, encoded, sp_entity_id, int(clock()), where, in_response_to=request_id)


# -- IdP-initiated sign-on form ------------------------------------------------------------------
class _Page(html.parser.HTMLParser):
    """The forms of a page: action, method and fields, plus the page title for messages."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.title = ""
        self._in_title = False
        self._form = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action"), "method": (a.get("method") or "get").lower(),
                          "fields": [], "submits": []}
            self.forms.append(self._form)
        elif tag == "title":
            self._in_title = True
        elif self._form is not None and tag == "input" and a.get("name") is not None:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "image"):
                self._form["submits"].append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form["fields"].append((a["name"], kind, a.get("value", "on")))
            elif kind not in ("button", "reset", "file"):
                self._form["fields"].append((a["name"], kind, a.get("value", "")))
        elif self._form is not None and tag == "button" and a.get("name"):
            if (a.get("type") or "submit").lower() == "submit":
                self._form["submits"].append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def read_page(text):
    page = _Page()
    try:
        page.feed(text)
        page.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; a page it chokes on is "not understood"
        pass
    page.title = shown(page.title, 80)
    return page


def _login_form(page):
    """The form with a password field (a login form whatever the product), or None."""
    for form in page.forms:
        if any(kind == "password" for _, kind, _ in form["fields"]):
            return form
    return None


def _saml_response(page, where="the page"):
    """The page's SAMLResponse value, or None; two different ones are refused (which would AWS get?)."""
    values = {"".join(value.split()) for form in page.forms for name, _, value in form["fields"]
              if name == "SAMLResponse"}
    if len(values) > 1:
        raise ServiceError(f"{where} answered with {len(values)} different SAMLResponse values on one page: credproc "
                           "cannot tell which one AWS would read, so it refuses them", hint=IDP_HINT)
    return values.pop() if values else None


def _auto_form(page):
    """A form a browser would submit by script: only hidden fields (SAML relays, Shibboleth's
    local-storage check). Never one with a visible input: that needs a person."""
    if len(page.forms) != 1:
        return None
    form = page.forms[0]
    if form["fields"] and all(kind == "hidden" for _, kind, _ in form["fields"]):
        return form
    return None


def _fill_login(form, username, password):
    user_field = None
    for name, kind, _ in form["fields"]:
        if kind == "password":
            break
        if kind in ("text", "email", "tel", "") and user_field is None:
            user_field = name
    data = []
    for name, kind, value in form["fields"]:
        if kind == "password":
            data.append((name, password))
        elif name == user_field:
            data.append((name, username))
        else:
            data.append((name, value))
    if form["submits"]:  # Shibboleth's form needs its button's name (_eventId_proceed)
        data.append(form["submits"][0])
    return data, user_field


def _safe_target(url, where):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _http.is_loopback(parts.hostname):
        return url
    raise ServiceError(f"{where} sent credproc to {parts.scheme}://{parts.hostname or ''}, which is not https; refused",
                       hint=IDP_HINT)


def _origin(url):
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _check_password_target(method, action, page_url, where):
    """The password goes only where the login page itself came from, in a POST body: never to
    another origin (a hostile or hijacked page could name any), never in a URL (a GET form would put
    it in the query string, and so in server logs and error messages), never over plain http."""
    _safe_target(action, where)
    if method != "POST":
        raise ServiceError(f"the login form of {where} would send the password in the URL (method GET); refused",
                           hint="a login form must use method POST; ask the IdP administrator")
    if _origin(action) != _origin(page_url):
        scheme, host, port = _origin(action)
        raise ServiceError(f"the login form at {no_query(page_url)} would send the password to another site "
                           f"({scheme}://{host}:{port}); refused",
                           hint="url must lead to the IdP's own login page; ask the IdP administrator if it is right")


def no_query(url):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def form_sign_on(url, username, password, sp_entity_id, clock, timeout, ca_bundle=None):
    """GET the IdP-initiated URL, follow redirects and script-submitted forms with one cookie jar,
    post the login form, and return the checked Assertion from the auto-POST form. password: the
    password, or a function asked for it only once the login form is there (so the IdP has
    answered before anyone types it)."""
    where = f"the SAML IdP at {no_query(url)}"
    jar = http.cookiejar.CookieJar()
    method, target, form_data = "GET", url, None
    posted_login = False
    for _ in range(MAX_PAGES):
        target = _safe_target(target, where)
        log.debug("SAML form flow: %s %s", method, no_query(target))
        resp = _http.request(method, target, form=form_data, timeout=timeout, ca_bundle=ca_bundle,
                             what="the SAML IdP", max_bytes=MAX_ANSWER, cookies=jar, follow_redirects=False,
                             headers={"Accept": "text/html,application/xhtml+xml"})
        if form_data is not None:
            form_data = None  # the password goes no further than this request
        if resp.status in (301, 302, 303, 307, 308):
            location = resp.headers.get("Location")
            if not location:
                raise ServiceError(f"{where} redirected (HTTP {resp.status}) without a Location", hint=IDP_HINT)
            if method == "POST" and resp.status in (307, 308):
                raise ServiceError(f"{where} asked to re-send the login to another address (HTTP {resp.status}); refused",
                                   hint=IDP_HINT)
            method, target = "GET", urllib.parse.urljoin(target, location)
            continue
        if resp.status == 401:
            raise ServiceError(f"{where} asks for HTTP authentication instead of showing a login form",
                               hint='the form flow needs a login page; try flow = "ecp"')
        if resp.status != 200:
            raise ServiceError(f"{where} answered HTTP {resp.status} at {no_query(target)}",
                               hint="is url the IdP-initiated sign-on URL for AWS?")
        page = read_page(resp.text)
        value = _saml_response(page, where)
        if value is not None:
            data, encoded = decode_saml_response(value, where)
            return read_response(data, encoded, sp_entity_id, int(clock()), where)
        login = _login_form(page)
        if login is not None:
            if posted_login:
                raise AuthenticationFailed(f"{where} showed the login form again after credproc sent the "
                                           f"password of {username}: wrong username or password",
                                           hint="check the username and password")
            if callable(password):
                password = password()
            fields, user_field = _fill_login(login, username, password)
            if user_field is None:
                raise ServiceError(f"the login form of {where} has a password field but no username field that "
                                   "credproc recognises", hint=IDP_HINT)
            method, action, form_data = _submit(login, target, fields)
            _check_password_target(method, action, target, where)
            target, posted_login = action, True
            continue
        auto = _auto_form(page)
        if auto is not None:
            fields = [(n, v) for n, _, v in auto["fields"]] + auto["submits"][:1]
            method, target, form_data = _submit(auto, target, fields)
            continue
        what = f"a page titled '{page.title}'" if page.title else "a page"
        raise ServiceError(f"{where} showed {what} at {no_query(target)} that credproc does not understand "
                           "(no login form, no SAMLResponse)",
                           hint="the form flow handles a username and password login; an extra step such as MFA "
                                "or a consent page needs flow = \"ecp\" or a browser")
    raise ServiceError(f"{where} sent credproc through more than {MAX_PAGES} pages without a SAMLResponse",
                       hint=IDP_HINT)


def _submit(form, base, fields):
    action = form["action"]
    target = base if not action else urllib.parse.urljoin(base, action)
    if form["method"] == "post":
        return "POST", target, fields
    parts = urllib.parse.urlsplit(target)
    query = urllib.parse.urlencode(fields)
    return "GET", urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")), None


def first_step(flow, url, sp_entity_id, acs, now, timeout, ca_bundle=None):
    """For doctor: does the flow's first step answer as it should? (ok, detail). No credentials
    are sent: an ECP request without them, or a GET of the sign-on URL up to its login form."""
    if flow == "ecp":
        resp = _http.request("POST", url, data=ecp_request(new_request_id(), sp_entity_id, acs, now),
                             headers={"Content-Type": "text/xml; charset=utf-8", "PAOS": ecp_headers("", "")["PAOS"],
                                      "Accept": "text/xml, application/vnd.paos+xml",
                                      "SOAPAction": "http://www.oasis-open.org/committees/security"},
                             timeout=timeout, ca_bundle=ca_bundle, what="the SAML IdP", max_bytes=MAX_ANSWER,
                             follow_redirects=False)
        if resp.status == 401:
            return True, "asks for credentials (HTTP 401)"
        if resp.status == 200 and not _is_html(resp):
            try:
                root, _ = parse_xml(resp.body, "the ECP answer")
            except ServiceError as e:
                return False, str(e)
            if root.tag == _q(SOAP, "Envelope"):
                return True, "answers ECP requests with SOAP"
        return False, (f"answered HTTP {resp.status} with a web page, not SOAP: ECP is not enabled for "
                       f"{sp_entity_id}, or url is not the ECP endpoint")
    jar = http.cookiejar.CookieJar()
    target = url
    for _ in range(MAX_PAGES):
        resp = _http.request("GET", _safe_target(target, "the SAML IdP"), timeout=timeout, ca_bundle=ca_bundle,
                             what="the SAML IdP", max_bytes=MAX_ANSWER, cookies=jar, follow_redirects=False)
        if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
            target = urllib.parse.urljoin(target, resp.headers["Location"])
            continue
        if resp.status == 200 and flow == "browser":  # a JavaScript sign-in app has no form to find
            return True, f"answers (HTTP 200 at {no_query(target)})"
        if resp.status == 200 and _login_form(read_page(resp.text)) is not None:
            return True, "shows a login form"
        return False, f"answered HTTP {resp.status} without a login form at {no_query(target)}"
    return False, "too many redirects"
