"""SAML protocol client: the checks credproc makes before an assertion goes to STS (which the test
peers cannot show: SimpleSAMLphp issues what it is asked for and moto checks nothing), safe XML,
the ECP cut-out, the login-form finder, and the provider's role and duration choices with fakes."""

import base64
import re

import pytest

from credproc.core.errors import AccessDenied, AuthenticationFailed, ServiceError
from credproc.sources.saml import protocol as saml

NOW = 1_800_000_000
AWS = "urn:amazon:webservices"
ADMIN = "arn:aws:iam::123456789012:role/Admin"
READ = "arn:aws:iam::123456789012:role/ReadOnly"
PROVIDER = "arn:aws:iam::123456789012:saml-provider/SSP"


def iso(epoch):
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# an enveloped signature of the assertion (its shape: credproc checks it is there, STS verifies it)
SIGNED = ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:Reference URI="#_a"/>'
          "</ds:SignedInfo><ds:SignatureValue>c2ln</ds:SignatureValue></ds:Signature>")


def response(status="urn:oasis:names:tc:SAML:2.0:status:Success", audiences=((AWS,),), not_after=NOW + 300,
             not_before=NOW - 30, roles=(f"{ADMIN},{PROVIDER}",), session_name="alice@example.com", duration=None,
             p="samlp", a="saml", assertion=True, extra_status="", in_response_to=None, encrypted=False):
    restr = "".join(f"<{a}:AudienceRestriction>" + "".join(f"<{a}:Audience>{x}</{a}:Audience>" for x in group)
                    + f"</{a}:AudienceRestriction>" for group in audiences)
    attrs = ""
    if roles is not None:
        attrs += (f'<{a}:Attribute Name="{saml.ROLE_ATTR}">'
                  + "".join(f"<{a}:AttributeValue>{r}</{a}:AttributeValue>" for r in roles) + f"</{a}:Attribute>")
    if session_name is not None:
        attrs += f'<{a}:Attribute Name="{saml.SESSION_NAME_ATTR}"><{a}:AttributeValue>{session_name}</{a}:AttributeValue></{a}:Attribute>'
    if duration is not None:
        attrs += f'<{a}:Attribute Name="{saml.SESSION_DURATION_ATTR}"><{a}:AttributeValue>{duration}</{a}:AttributeValue></{a}:Attribute>'
    body = (f"<{a}:Assertion ID=\"_a\" Version=\"2.0\"><{a}:Issuer>https://idp.example.edu</{a}:Issuer>{SIGNED}"
            f"<{a}:Subject><{a}:NameID>alice</{a}:NameID><{a}:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">"
            f"<{a}:SubjectConfirmationData NotOnOrAfter=\"{iso(not_after)}\" Recipient=\"https://signin.aws.amazon.com/saml\"/>"
            f"</{a}:SubjectConfirmation></{a}:Subject>"
            f"<{a}:Conditions NotBefore=\"{iso(not_before)}\" NotOnOrAfter=\"{iso(not_after)}\">{restr}</{a}:Conditions>"
            f"<{a}:AttributeStatement>{attrs}</{a}:AttributeStatement></{a}:Assertion>")
    if encrypted:
        body = f"<{a}:EncryptedAssertion>...</{a}:EncryptedAssertion>"
    irt = f' InResponseTo="{in_response_to}"' if in_response_to else ""
    return (f'<{p}:Response xmlns:{p}="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:{a}="urn:oasis:names:tc:SAML:2.0:assertion"'
            f' ID="_r" Version="2.0"{irt}><{p}:Status><{p}:StatusCode Value="{status}">{extra_status}</{p}:StatusCode>'
            f"</{p}:Status>{body if assertion else ''}</{p}:Response>").encode()


def read(data, **kw):
    return saml.read_response(data, base64.b64encode(data).decode(), kw.pop("sp", AWS), kw.pop("now", NOW), "the IdP", **kw)


def test_a_good_response_gives_roles_in_either_order_session_name_and_duration():
    got = read(response(roles=(f"{ADMIN},{PROVIDER}", f" {PROVIDER} , {READ} ", "garbage", f"{ADMIN},{PROVIDER}"),
                        duration=1800, p="saml2p", a="saml2"))
    assert got.roles == [(ADMIN, PROVIDER), (READ, PROVIDER)]  # the garbage value and the duplicate dropped
    assert (got.session_name, got.session_duration, got.expires_at, got.issuer) == \
        ("alice@example.com", 1800, NOW + 300, "https://idp.example.edu")
    assert got.provider_for(READ) == PROVIDER and got.provider_for("x") is None
    assert got.encoded not in repr(got)


@pytest.mark.parametrize("value, pair", [
    (f"{ADMIN},{PROVIDER}", (ADMIN, PROVIDER)),
    (f"{PROVIDER},{ADMIN}", (ADMIN, PROVIDER)),
    ("arn:aws-us-gov:iam::123456789012:saml-provider/G,arn:aws-us-gov:iam::123456789012:role/x/y",
     ("arn:aws-us-gov:iam::123456789012:role/x/y", "arn:aws-us-gov:iam::123456789012:saml-provider/G")),
    (f"{ADMIN},{READ}", None),
    (f"{ADMIN}", None),
    (f"{ADMIN},{PROVIDER},{PROVIDER}", None),
])
def test_role_values_in_either_order(value, pair):
    assert saml.split_role(value) == pair


def test_a_status_that_is_not_success_is_an_authentication_failure():
    with pytest.raises(AuthenticationFailed, match=r"did not sign you in \(SAML status Responder/AuthnFailed: nope\)"):
        read(response(status="urn:oasis:names:tc:SAML:2.0:status:Responder", assertion=False,
                      extra_status='<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/>')
             .replace(b"</samlp:Status>", b"<samlp:StatusMessage>nope</samlp:StatusMessage></samlp:Status>"))


@pytest.mark.parametrize("audiences", [(), (("urn:other",),), ((AWS,), ("urn:other",)), (("urn:amazon:webservices:govcloud",),)])
def test_an_assertion_for_another_audience_is_refused(audiences):
    with pytest.raises(AuthenticationFailed, match="not for urn:amazon:webservices"):
        read(response(audiences=audiences))


def test_several_audiences_in_one_restriction_are_fine_and_the_sp_entity_id_can_be_configured():
    read(response(audiences=((AWS, "urn:other"),)))
    read(response(audiences=(("urn:amazon:webservices:govcloud",),)), sp="urn:amazon:webservices:govcloud")


def test_an_expired_assertion_is_refused_without_leeway():
    read(response(not_after=NOW + 1))
    with pytest.raises(AuthenticationFailed, match=r"expired 0 s ago"):
        read(response(not_after=NOW))
    with pytest.raises(AuthenticationFailed, match="not valid before"):
        read(response(not_before=NOW + 120))
    read(response(not_before=NOW + 50))  # a minute of clock difference is forgiven at the start


def test_the_bearer_confirmation_can_end_before_the_conditions():
    data = response(not_after=NOW + 300).replace(f'SubjectConfirmationData NotOnOrAfter="{iso(NOW + 300)}"'.encode(),
                                                 f'SubjectConfirmationData NotOnOrAfter="{iso(NOW - 1)}"'.encode())
    with pytest.raises(AuthenticationFailed, match="expired 1 s ago"):
        read(data)


def test_what_is_not_a_usable_response():
    with pytest.raises(ServiceError, match="encrypted assertion"):
        read(response(encrypted=True))
    with pytest.raises(ServiceError, match="0 assertions"):
        read(response(assertion=False))
    with pytest.raises(ServiceError, match="not a SAML Response"):
        read(b'<x:Foo xmlns:x="urn:x"/>')
    with pytest.raises(ServiceError, match="not well-formed XML"):
        read(b"<samlp:Response")
    with pytest.raises(ServiceError, match="answered another request"):
        read(response(in_response_to="_theirs"), in_response_to="_ours")
    read(response(in_response_to="_ours"), in_response_to="_ours")


@pytest.mark.parametrize("doc", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>',
    b'<!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd"><r/>',
    b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
])
def test_a_dtd_or_entities_are_refused_before_parsing(doc):
    with pytest.raises(ServiceError, match="DTD or entity declarations"):
        saml.parse_xml(doc, "the answer")


def test_the_ecp_response_is_cut_out_byte_for_byte_whatever_the_prefixes():
    inner = response(p="saml2p", a="saml2").replace(b"<saml2:Issuer>", b"<saml2:Issuer >")  # odd spacing kept
    envelope = (b'<?xml version="1.0" encoding="UTF-8"?>\n<soap11:Envelope xmlns:soap11="http://schemas.xmlsoap.org/soap/envelope/">'
                b'<soap11:Header><ecp:Response xmlns:ecp="urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp"/></soap11:Header>'
                b"<soap11:Body>" + inner + b"</soap11:Body></soap11:Envelope>")
    _, span = saml.parse_xml(envelope, "x", want="{urn:oasis:names:tc:SAML:2.0:protocol}Response")
    assert envelope[span[0]:span[1]] == inner


def test_the_ecp_request():
    body = saml.ecp_request("_id1", AWS, "https://signin.aws.amazon.com/saml", NOW)
    root, _ = saml.parse_xml(body, "request")
    req = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body/{urn:oasis:names:tc:SAML:2.0:protocol}AuthnRequest")
    assert req.get("ID") == "_id1" and req.get("IssueInstant") == iso(NOW)
    assert req.get("ProtocolBinding") == "urn:oasis:names:tc:SAML:2.0:bindings:PAOS"
    assert req.get("AssertionConsumerServiceURL") == "https://signin.aws.amazon.com/saml"
    assert req.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer").text == AWS
    headers = saml.ecp_headers("alice", "pw:with:colons", "passcode", "123456")
    assert base64.b64decode(headers["Authorization"].split()[1]) == b"alice:pw:with:colons"
    assert headers["X-Shibboleth-Duo-Factor"] == "passcode" and headers["X-Shibboleth-Duo-Passcode"] == "123456"
    assert "X-Shibboleth-Duo-Factor" not in saml.ecp_headers("a", "b")
    assert saml.ecp_headers("a", "b", "push")["X-Shibboleth-Duo-Factor"] == "push"


@pytest.mark.parametrize("region, sp", [
    ("us-east-1", (AWS, "https://signin.aws.amazon.com/saml")),
    ("eu-west-3", (AWS, "https://signin.aws.amazon.com/saml")),
    ("us-gov-west-1", ("urn:amazon:webservices:govcloud", "https://signin.amazonaws-us-gov.com/saml")),
    ("cn-northwest-1", ("urn:amazon:webservices:cn-north-1", "https://signin.amazonaws.cn/saml")),
])
def test_partitions(region, sp):
    assert saml.service_provider(region) == sp
    assert saml.service_provider(region, "urn:mine")[0] == "urn:mine"


SHIBBOLETH_LOGIN = """<html><head><title>Web Login Service</title></head><body>
<form action="/idp/profile/SAML2/Unsolicited/SSO?execution=e1s1" method="post">
  <input type="hidden" name="csrf_token" value="_abc&amp;def">
  <label>Username</label><input id="username" name="j_username" type="text" value="">
  <input id="password" name="j_password" type="password" value="">
  <input type="checkbox" name="donotcache" value="1">
  <button type="submit" name="_eventId_proceed">Login</button>
</form></body></html>"""

ADFS_LOGIN = """<html><body><form method="post" id="loginForm" autocomplete="off" action="/adfs/ls/IdpInitiatedSignOn.aspx?client-request-id=1">
<input id="userNameInput" name="UserName" type="email" value="" /><input id="passwordInput" name="Password" type="password"/>
<input id="kmsiInput" type="checkbox" name="Kmsi" value="true" checked />
<input id="optionForms" type="hidden" name="AuthMethod" value="FormsAuthentication"/>
<span id="submitButton" class="submit" role="button">Sign in</span></form></body></html>"""


@pytest.mark.parametrize("page, expected, user_field", [
    (SHIBBOLETH_LOGIN, [("csrf_token", "_abc&def"), ("j_username", "alice"), ("j_password", "pw"),
                        ("_eventId_proceed", "")], "j_username"),
    (ADFS_LOGIN, [("UserName", "alice"), ("Password", "pw"), ("Kmsi", "true"), ("AuthMethod", "FormsAuthentication")],
     "UserName"),
])
def test_the_login_form_is_found_and_filled_whatever_the_product(page, expected, user_field):
    form = saml._login_form(saml.read_page(page))
    assert saml._fill_login(form, "alice", "pw") == (expected, user_field)


def test_auto_submit_forms_and_the_saml_response_are_recognised():
    relay = saml.read_page('<form method="post" action="https://x/y"><input type="hidden" name="shib_idp_ls_value" value="1">'
                           '<input type="hidden" name="_eventId_proceed" value=""></form>')
    assert saml._auto_form(relay) is not None and saml._login_form(relay) is None
    consent = saml.read_page('<form method="post"><input type="hidden" name="a" value="1"><input type="radio" name="c" value="y">'
                             '<input name="comment"></form>')
    assert saml._auto_form(consent) is None  # a visible field needs a person
    done = saml.read_page('<form method="post" action="https://signin.aws.amazon.com/saml">'
                          '<input type="hidden" name="SAMLResponse" value="PHg+&#x0A;PC94Pg==" /></form>')
    data, encoded = saml.decode_saml_response(saml._saml_response(done), "x")
    assert data == b"<x></x>" and encoded == "PHg+PC94Pg=="


def test_plain_http_targets_other_than_loopback_are_refused():
    saml._safe_target("http://127.0.0.1:8080/x", "idp")
    saml._safe_target("https://idp.example.edu/x", "idp")
    with pytest.raises(ServiceError, match="not https"):
        saml._safe_target("http://idp.example.edu/login", "the IdP")


# -- the provider, with fakes at the seams -------------------------------------------------------
class FakeSession:
    idp = {"name": "campus", "url": "https://idp", "flow": "ecp"}

    def __init__(self, assertion):
        self._a = assertion

    def assertion(self):
        return self._a

    def describe(self):
        return "fake"


def provider(monkeypatch, assertion, arn=None, duration=3600):
    from credproc.core import sts
    from credproc.sources.saml import provider as ps

    calls = []

    def call(client, operation, context, **params):
        calls.append((operation, params))
        return {"Credentials": {"AccessKeyId": "ASIA1", "SecretAccessKey": "s", "SessionToken": "t",
                                "Expiration": iso(NOW + 900)}}, NOW

    monkeypatch.setattr(sts, "client", lambda *a: None)
    monkeypatch.setattr(sts, "call", call)
    role = {"name": "r", "arn": arn, "duration": duration}
    return ps.SamlProvider(None, FakeSession(assertion), role, "us-east-1", None), calls


def test_the_session_duration_caps_the_role_duration_never_raises_it(monkeypatch):
    p, calls = provider(monkeypatch, read(response(duration=1800)), arn=ADMIN)
    p.retrieve()
    assert calls[0][1]["DurationSeconds"] == 1800 and calls[0][1]["PrincipalArn"] == PROVIDER
    p, calls = provider(monkeypatch, read(response(duration=7200)), arn=ADMIN, duration=3600)
    p.retrieve()
    assert calls[0][1]["DurationSeconds"] == 3600


def test_a_role_not_offered_and_no_role_at_all_are_access_denied(monkeypatch):
    p, calls = provider(monkeypatch, read(response()), arn=READ)
    with pytest.raises(AccessDenied, match=f"does not offer {READ}; it offers: {ADMIN}"):
        p.retrieve()
    p, calls = provider(monkeypatch, read(response(roles=())))
    with pytest.raises(AccessDenied, match="offers no AWS role"):
        p.retrieve()
    assert calls == []


@pytest.mark.parametrize("name", [None, "a", "x" * 65, "has space"])
def test_a_missing_or_invalid_role_session_name_is_not_sent(monkeypatch, name):
    p, calls = provider(monkeypatch, read(response(session_name=name)), arn=ADMIN)
    with pytest.raises(ServiceError, match="no valid RoleSessionName"):
        p.retrieve()
    assert calls == []


def test_one_offered_role_is_taken_without_arn(monkeypatch):
    p, calls = provider(monkeypatch, read(response(roles=(f"{PROVIDER},{READ}",))))
    p.retrieve()
    assert calls[0][1]["RoleArn"] == READ


# -- configuration -----------------------------------------------------------------------------
def parse(text):
    from credproc import config

    return config.parse("c.toml", text.encode())


def test_configuration_defaults_and_problems():
    from credproc.core.errors import ConfigError

    cfg = parse('[idp.s]\ntype = "saml"\nurl = "https://idp.example.edu/idp/profile/SAML2/SOAP/ECP"\n'
                '[role.r]\nidp = "s"\n')
    idp = cfg.idps["s"]
    from credproc.sources.saml.provider import timeout_of

    assert (idp["flow"], idp["mfa"], idp["sp_entity_id"], timeout_of(idp)) == ("ecp", "none", None, 30)
    assert timeout_of(parse('[idp.s]\ntype = "saml"\nurl = "https://x"\nmfa = "push"\n').idps["s"]) == 120
    assert timeout_of(parse('[idp.s]\ntype = "saml"\nurl = "https://x"\nmfa = "push"\ntimeout = 7\n').idps["s"]) == 7
    with pytest.raises(ConfigError) as e:
        parse('[idp.s]\ntype = "saml"\nflow = "form"\nurl = "http://idp.example.edu/"\nmfa = "push"\nrealm = "x"\n'
              '[role.r]\nidp = "s"\nsession_name = "me"\nexternal_id = "x"\n')
    text = str(e.value)
    for problem in ["idp.s.realm: unknown key", "idp.s.url: 'http://idp.example.edu/' must be an https:// URL",
                    'idp.s.mfa: works only with flow = "ecp"',
                    "role.r.session_name: has no effect for a role over a saml identity provider",
                    "role.r.external_id: has no effect"]:
        assert problem in text
    with pytest.raises(ConfigError, match="idp.s.url: is required"):
        parse('[idp.s]\ntype = "saml"\n')


# -- the session: one sign-on shared, kept until NotOnOrAfter ----------------------------------
class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def session_env(tmp_path, monkeypatch):
    """(make_session(terminal, force=False), sign_ons list, clock): SamlSession over a real encrypted
    store in tmp_path, with the network step replaced by a fake that issues a 300 s assertion."""
    from credproc import config
    from credproc.context import Context
    from credproc.core.store import EncryptedFileCache
    from credproc.sources.saml import provider as ps

    clock = Clock()
    sign_ons = []

    def fake_ecp(url, username, password, sp, acs, clock, timeout, ca_bundle=None, mfa=None, passcode=None):
        sign_ons.append((username, password, sp, acs, timeout))
        now = clock()
        data = response(not_after=int(now) + 300, not_before=int(now) - 30)
        return saml.read_response(data, base64.b64encode(data).decode(), sp, now, "fake")

    monkeypatch.setattr(saml, "ecp_sign_on", fake_ecp)
    cfg = config.parse("c.toml", b'[idp.s]\ntype = "saml"\nurl = "https://idp.example.edu/ecp"\nusername = "alice"\n'
                                 b'[role.r]\nidp = "s"\n')
    store = EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "key"))

    def make(terminal, force=False):
        return ps.SamlSession(Context(cfg, store, terminal, force=force, clock=clock), cfg.idps["s"])

    return make, sign_ons, clock


def test_one_sign_on_is_shared_until_its_not_on_or_after(session_env):
    from tests.fakes import ScriptedTerminal

    make, sign_ons, clock = session_env
    first = make(ScriptedTerminal(["pw"])).assertion()
    assert sign_ons == [("alice", "pw", AWS, "https://signin.aws.amazon.com/saml", 30)]
    again = make(ScriptedTerminal(None)).assertion()  # another process, no terminal: the cached one
    assert again.encoded == first.encoded and len(sign_ons) == 1
    clock.now += 300 - 30  # 30 s left: not worth sending
    make(ScriptedTerminal(["pw2"])).assertion()
    assert len(sign_ons) == 2
    make(ScriptedTerminal(["pw3"]), force=True).assertion()  # login --force signs on again
    assert len(sign_ons) == 3


def test_without_a_terminal_or_password_command_nothing_is_sent(session_env):
    from credproc.core.errors import LoginRequired
    from tests.fakes import ScriptedTerminal

    make, sign_ons, _ = session_env
    with pytest.raises(LoginRequired, match="the password for the SAML IdP at https://idp.example.edu/ecp is needed"):
        make(ScriptedTerminal(None)).assertion()
    assert sign_ons == []


def test_a_tampered_cache_entry_is_a_new_sign_on(session_env, tmp_path):
    from tests.fakes import ScriptedTerminal

    make, sign_ons, _ = session_env
    make(ScriptedTerminal(["pw"])).assertion()
    for name in (tmp_path / "cache").iterdir():
        if not name.name.endswith(".lock"):
            data = bytearray(name.read_bytes())
            data[-1] ^= 1
            name.write_bytes(bytes(data))
    make(ScriptedTerminal(["pw"])).assertion()
    assert len(sign_ons) == 2


@pytest.mark.parametrize("code, cls, fragment", [
    ("InvalidIdentityToken", AuthenticationFailed, "STS rejected the SAML assertion of alice from idp: bad sig"),
    ("ExpiredTokenException", AuthenticationFailed, "STS rejected the SAML assertion"),
    ("AccessDenied", AccessDenied, f"alice from idp is not allowed to assume {ADMIN}: bad sig; the role's trust policy "
                                   f"must allow sts:AssumeRoleWithSAML for the SAML provider {PROVIDER}"),
    ("IDPRejectedClaim", AccessDenied, "is not allowed to assume"),
])
def test_sts_answers_to_assume_role_with_saml(code, cls, fragment):
    from botocore.exceptions import ClientError

    from credproc.core import sts

    e = ClientError({"Error": {"Code": code, "Message": "bad sig"}}, "AssumeRoleWithSAML")
    err = sts.translate_client_error(e, "AssumeRoleWithSAML", "alice from idp",
                                     {"RoleArn": ADMIN, "PrincipalArn": PROVIDER, "SAMLAssertion": "PHNhbWxwOlJlc3BvbnNl"})
    assert isinstance(err, cls) and fragment in str(err) and "PHNhbWxw" not in str(err)


# -- regression: which Assertion credproc checks (the one STS verifies), refusing ambiguity --------
def _wrapped(extra, where="after_status"):
    """A good Response with `extra` XML put in a given place (the places signature wrapping uses)."""
    data = response()
    if where == "after_status":
        return data.replace(b"</samlp:Status>", b"</samlp:Status>" + extra)
    if where == "in_assertion":  # e.g. saml:Advice inside the real assertion
        return data.replace(b"</saml:Subject>", b"</saml:Subject>" + extra)
    if where == "extensions":
        return data.replace(b"<samlp:Status>", b"<samlp:Extensions>" + extra + b"</samlp:Extensions><samlp:Status>")
    raise AssertionError(where)


FORGED = (f'<saml:Assertion ID="_evil" Version="2.0"><saml:Issuer>https://idp.example.edu</saml:Issuer>'
          f'<saml:Conditions NotOnOrAfter="{iso(NOW + 99999)}"><saml:AudienceRestriction><saml:Audience>{AWS}'
          f'</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AttributeStatement>'
          f'<saml:Attribute Name="{saml.ROLE_ATTR}"><saml:AttributeValue>arn:aws:iam::999999999999:role/Root,'
          f'arn:aws:iam::999999999999:saml-provider/X</saml:AttributeValue></saml:Attribute>'
          f'</saml:AttributeStatement></saml:Assertion>').encode()


@pytest.mark.parametrize("extra, where", [
    (FORGED, "after_status"),  # a second sibling assertion
    (b"<saml:Advice>" + FORGED + b"</saml:Advice>", "in_assertion"),  # nested in the real one
    (FORGED, "extensions"),
    (b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Object>' + FORGED
     + b"</ds:Object></ds:Signature>", "after_status"),  # XSW: the signed original moved into a ds:Object
    (b"<saml:EncryptedAssertion>x</saml:EncryptedAssertion>", "after_status"),
    (b"<samlp:Response><samlp:Status/></samlp:Response>", "extensions"),  # a nested Response
])
def test_regression_a_second_assertion_or_response_anywhere_is_refused_not_guessed(extra, where):
    with pytest.raises(ServiceError, match="cannot tell which one AWS would read"):
        read(_wrapped(extra, where))


def test_regression_attributes_and_times_are_read_only_from_the_assertion_itself_not_nested_elements():
    # an attribute or confirmation in some other element of the assertion (not its AttributeStatement or
    # Subject) is not the assertion's: a Role there must not be offered, a later NotOnOrAfter not believed
    data = response().replace(b"</saml:Subject>", b"</saml:Subject><saml:Evidence><saml:Attribute Name=\""
                              + saml.ROLE_ATTR.encode() + b"\"><saml:AttributeValue>" + f"{READ},{PROVIDER}".encode()
                              + b"</saml:AttributeValue></saml:Attribute></saml:Evidence>")
    assert read(data).role_arns() == [ADMIN]


def test_regression_two_conditions_are_refused():
    data = response().replace(b"<saml:AttributeStatement>",
                              f'<saml:Conditions NotOnOrAfter="{iso(NOW + 9999)}"/><saml:AttributeStatement>'.encode())
    with pytest.raises(ServiceError, match="several Conditions or Subject"):
        read(data)


def test_regression_two_different_saml_responses_on_one_page_are_refused():
    page = saml.read_page('<form method="post" action="https://signin.aws.amazon.com/saml">'
                          '<input type="hidden" name="SAMLResponse" value="PHg+PC94Pg=="/></form>'
                          '<form method="post" action="https://signin.aws.amazon.com/saml">'
                          '<input type="hidden" name="SAMLResponse" value="PHk+PC95Pg=="/></form>')
    with pytest.raises(ServiceError, match="2 different SAMLResponse values"):
        saml._saml_response(page)
    same = saml.read_page('<form><input type="hidden" name="SAMLResponse" value="PHg+PC94Pg=="/>'
                          '<input type="hidden" name="SAMLResponse" value="PHg+\nPC94Pg=="/></form>')
    assert saml._saml_response(same) == "PHg+PC94Pg=="


class FakeHttp:
    """saml._http.request replaced: answers from a list, records (method, url, form, data, headers)."""

    def __init__(self, monkeypatch, answers):
        from credproc.core import http

        self.answers, self.sent = list(answers), []
        monkeypatch.setattr(saml._http, "request", self)
        self.Response = http.Response

    def __call__(self, method, url, **kw):
        self.sent.append((method, url, kw.get("form"), kw.get("data"), kw.get("headers")))
        status, headers, body = self.answers.pop(0)
        return self.Response(status, headers, body, url)


def soap(*children, bodies=1):
    body = b"<S:Body>" + b"".join(children) + b"</S:Body>"
    return (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">' + body * bodies + b"</S:Envelope>")


def ecp(monkeypatch, answer):
    fake = FakeHttp(monkeypatch, [(200, {"Content-Type": "text/xml"}, answer)])
    return saml.ecp_sign_on("https://idp.example.edu/ecp", "alice", "pw", AWS, "https://signin.aws.amazon.com/saml",
                            lambda: NOW, 30), fake


def test_ecp_answer_with_one_response_is_read(monkeypatch):
    got, fake = ecp(monkeypatch, soap(response()))
    assert got.role_arns() == [ADMIN] and base64.b64decode(got.encoded) == response()


@pytest.mark.parametrize("answer", [
    soap(response(), response(roles=(f"{READ},{PROVIDER}",))),  # two Responses in the Body
    soap(response(), b'<x:Other xmlns:x="urn:x"/>'),
    soap(response(), bodies=2),
])
def test_regression_an_ecp_answer_with_more_than_one_body_element_is_refused(monkeypatch, answer):
    with pytest.raises(ServiceError, match="cannot tell which one AWS would read"):
        ecp(monkeypatch, answer)


def login_page(action, method="post"):
    return (f'<html><form action="{action}" method="{method}"><input name="user"><input name="pw" type="password">'
            '</form></html>').encode()


@pytest.mark.parametrize("action, method, fragment", [
    ("https://collector.example.net/login", "post", "would send the password to another site (https://collector.example.net:443)"),
    ("https://idp.example.edu:8443/login", "post", "would send the password to another site"),
    ("http://idp.example.edu/login", "post", "is not https; refused"),
    ("/login", "get", "would send the password in the URL (method GET)"),
])
def test_regression_the_password_goes_only_to_the_login_pages_own_origin_by_post(monkeypatch, action, method, fragment):
    fake = FakeHttp(monkeypatch, [(200, {"Content-Type": "text/html"}, login_page(action, method))])
    with pytest.raises(ServiceError, match=re.escape(fragment)):
        saml.form_sign_on("https://idp.example.edu/sso?sp=aws", "alice", "s3cret-pw", AWS, lambda: NOW, 30)
    assert len(fake.sent) == 1 and fake.sent[0][2] is None  # only the GET of the page: the password never left


def test_the_password_is_posted_to_the_same_origin_after_a_redirect_to_another_host(monkeypatch):
    good = base64.b64encode(response()).decode()
    fake = FakeHttp(monkeypatch, [
        (302, {"Location": "https://login.example.edu/form?x=1"}, b""),
        (200, {"Content-Type": "text/html"}, login_page("?x=1")),
        (200, {"Content-Type": "text/html"}, f'<form method="post" action="https://signin.aws.amazon.com/saml">'
                                             f'<input type="hidden" name="SAMLResponse" value="{good}"></form>'.encode()),
    ])
    got = saml.form_sign_on("https://idp.example.edu/sso?sp=aws", "alice", "s3cret-pw", AWS, lambda: NOW, 30)
    assert got.role_arns() == [ADMIN]
    method, url, form, _, _ = fake.sent[1 + 1]
    assert (method, url, form) == ("POST", "https://login.example.edu/form?x=1", [("user", "alice"), ("pw", "s3cret-pw")])


@pytest.fixture
def hostile_server():
    """A real HTTP server on loopback answering every request with `body` (set by the test)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        body = b""

        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(Handler.body)))
            self.end_headers()
            self.wfile.write(Handler.body)

        do_GET = do_POST = _answer

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Handler, f"http://127.0.0.1:{server.server_address[1]}/ecp"
    server.shutdown()
    server.server_close()


def test_regression_a_huge_answer_is_refused_not_read_into_memory(hostile_server):
    handler, url = hostile_server
    handler.body = soap(response()).replace(b"<S:Body>", b"<S:Body><!--" + b"x" * (saml.MAX_ANSWER + 10) + b"-->")
    with pytest.raises(ServiceError, match=r"the SAML IdP at http://127.0.0.1:\d+/ecp sent an answer larger than "
                                           r"4194304 bytes"):
        saml.ecp_sign_on(url, "alice", "pw", AWS, "https://signin.aws.amazon.com/saml", lambda: NOW, 30)
    with pytest.raises(ServiceError, match="larger than 4194304 bytes"):
        saml.form_sign_on(url, "alice", "pw", AWS, lambda: NOW, 30)
    handler.body = b"\xff\xfe garbage <<<"
    with pytest.raises(ServiceError, match="not well-formed XML"):
        saml.ecp_sign_on(url, "alice", "pw", AWS, "https://signin.aws.amazon.com/saml", lambda: NOW, 30)


def _one_clean_line(err):
    text = str(err)
    assert "\n" not in text and "\r" not in text and all(c.isprintable() for c in text), repr(text)
    assert "\u202e" not in text
    return text


def test_regression_text_from_the_idp_cannot_break_the_one_line_message():
    data = response(status="urn:oasis:names:tc:SAML:2.0:status:Responder", assertion=False).replace(
        b"</samlp:Status>", b"<samlp:StatusMessage>bad\n\ncredproc: all good&#x9;now" + b"x" * 500
        + b"</samlp:StatusMessage></samlp:Status>")
    with pytest.raises(AuthenticationFailed) as e:
        read(data)
    assert "(SAML status Responder: bad credproc: all good now" in _one_clean_line(e.value)
    assert len(str(e.value)) < 400
    data = response(audiences=(("urn:evil\n\ncredproc: ok",),)).replace(
        b"<saml:Issuer>https://idp.example.edu</saml:Issuer>", b"<saml:Issuer>https://idp\n.example.edu&#x2028;</saml:Issuer>")
    with pytest.raises(AuthenticationFailed) as e:
        read(data)
    assert "from https://idp .example.edu is for urn:evil credproc: ok, not for" in _one_clean_line(e.value)


def test_regression_a_page_title_cannot_put_terminal_escapes_in_the_message(monkeypatch):
    FakeHttp(monkeypatch, [(200, {"Content-Type": "text/html"},
                            b"<title>Sign\x1b[2J in\n\nnow&#8238;</title><p>nothing here</p>")])
    with pytest.raises(ServiceError) as e:
        saml.form_sign_on("https://idp.example.edu/sso", "alice", "pw", AWS, lambda: NOW, 30)
    assert "showed a page titled 'Sign\\x1b[2J in now\\u202e' at https://idp.example.edu/sso" in _one_clean_line(e.value)


def test_regression_a_soap_fault_string_is_one_clean_line(monkeypatch):
    fault = b"<S:Fault><faultcode>S:Server</faultcode><faultstring>no\r\nway\tout</faultstring></S:Fault>"
    with pytest.raises(ServiceError) as e:
        ecp(monkeypatch, soap(fault))
    assert "answered with a SOAP fault: no way out" in _one_clean_line(e.value)


def test_regression_an_expired_assertion_is_removed_from_the_cache_even_when_the_sign_on_fails(session_env, tmp_path):
    from credproc.core.errors import LoginRequired
    from tests.fakes import ScriptedTerminal

    make, sign_ons, clock = session_env
    session = make(ScriptedTerminal(["pw"]))
    session.assertion()
    assert session.ctx.store.get(session.identity) is not None
    clock.now += 300  # its NotOnOrAfter
    with pytest.raises(LoginRequired):
        make(ScriptedTerminal(None)).assertion()  # nobody to type the password: no new one
    assert session.ctx.store.get(session.identity) is None
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_the_role_choice_is_remembered_and_a_choice_no_longer_offered_is_asked_again(session_env):
    from credproc.sources import rolechoice
    from tests.fakes import ScriptedTerminal

    class Menu(ScriptedTerminal):
        def __init__(self, picks):
            super().__init__([])
            self.picks, self.asked = list(picks), 0

        def choose(self, question, options, what):
            self.asked += 1
            return self.picks.pop(0)

    make, _, _ = session_env
    ctx = make(Menu([1])).ctx
    assert rolechoice.pick(ctx, "r", "s", [ADMIN], "x") == ADMIN and ctx.terminal.asked == 0  # one: no question
    assert rolechoice.pick(ctx, "r", "s", [ADMIN, READ], "x") == READ and ctx.terminal.asked == 1
    ctx = make(Menu([])).ctx
    assert rolechoice.pick(ctx, "r", "s", [READ, ADMIN], "x") == READ and ctx.terminal.asked == 0  # remembered
    other = "arn:aws:iam::123456789012:role/Other"
    ctx = make(Menu([0])).ctx
    assert rolechoice.pick(ctx, "r", "s", [ADMIN, other], "x") == ADMIN and ctx.terminal.asked == 1


@pytest.mark.parametrize("settings, role_region, sp", [
    ("", 'region = "us-gov-west-1"\n', ("urn:amazon:webservices:govcloud", "https://signin.amazonaws-us-gov.com/saml")),
    ("", 'region = "cn-north-1"\n', ("urn:amazon:webservices:cn-north-1", "https://signin.amazonaws.cn/saml")),
    ('[settings]\nregion = "us-gov-east-1"\n', "", ("urn:amazon:webservices:govcloud",
                                                    "https://signin.amazonaws-us-gov.com/saml")),
    ('[settings]\nregion = "us-gov-east-1"\n', 'region = "eu-west-1"\n', (AWS, "https://signin.aws.amazon.com/saml")),
])
def test_regression_the_partition_comes_from_the_roles_region_not_only_the_settings(tmp_path, settings, role_region, sp):
    from credproc import chain, config
    from credproc.context import Context
    from credproc.core.store import EncryptedFileCache
    from tests.fakes import ScriptedTerminal

    cfg = config.parse("c.toml", (settings + '[idp.s]\ntype = "saml"\nurl = "https://idp.example.edu/ecp"\n'
                                  '[role.r]\nidp = "s"\n' + role_region).encode())
    ctx = Context(cfg, EncryptedFileCache(str(tmp_path / "c"), str(tmp_path / "k")), ScriptedTerminal(None))
    session = chain.build(ctx, "r").inner.session
    assert (session.sp_entity_id, session.acs) == sp


@pytest.mark.parametrize("session_duration, role_duration, sent", [
    (600, 3600, 900),  # below STS's minimum: STS would refuse DurationSeconds=600
    (-5, 3600, 900),
    (1200, 3600, 1200),
    (43200, 3600, 3600),
])
def test_regression_a_session_duration_below_stss_minimum_caps_at_900_not_below(monkeypatch, session_duration,
                                                                                  role_duration, sent):
    p, calls = provider(monkeypatch, read(response(duration=session_duration)), arn=ADMIN, duration=role_duration)
    p.retrieve()
    assert calls[0][1]["DurationSeconds"] == sent


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE S:Envelope [<!ENTITY l0 "lol">'
                  + b"".join(f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">'.encode() for i in range(1, 10))
                  + b']><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>&l9;</S:Body></S:Envelope>')


def test_billion_laughs_and_xxe_from_a_real_server_are_refused_at_once(hostile_server, tmp_path):
    import time

    handler, url = hostile_server
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    xxe = (f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
           f'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>{response().decode()}'
           "</S:Body></S:Envelope>").replace("<saml:NameID>alice", "<saml:NameID>&x;").encode()
    for body in (BILLION_LAUGHS, xxe):
        handler.body = body
        start = time.monotonic()
        with pytest.raises(ServiceError, match="carries a DTD or entity declarations") as e:
            saml.ecp_sign_on(url, "alice", "pw", AWS, "https://signin.aws.amazon.com/saml", lambda: NOW, 30)
        assert time.monotonic() - start < 2 and "TOP-SECRET" not in str(e.value)
    # the same inside the form flow's SAMLResponse
    handler.body = (b'<form method="post" action="https://signin.aws.amazon.com/saml"><input type="hidden" '
                    b'name="SAMLResponse" value="' + base64.b64encode(xxe) + b'"></form>')
    with pytest.raises(ServiceError, match="carries a DTD or entity declarations"):
        saml.form_sign_on(url, "alice", "pw", AWS, lambda: NOW, 30)


def test_regression_every_saml_error_says_what_to_do():
    """House rule: one line saying what happened AND what to do. Every error credproc/sources/saml/protocol.py raises
    carries a hint (19 did not)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(saml))
    bare = [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
            and getattr(node.exc.func, "id", "") in ("ServiceError", "AuthenticationFailed", "AccessDenied")
            and not any(k.arg == "hint" for k in node.exc.keywords)]
    assert bare == []


def test_regression_an_ecp_answer_addressed_to_another_consumer_url_is_not_passed_on(monkeypatch):
    def answer(acs):
        return soap(response()).replace(b"<S:Body>", b'<S:Header><ecp:Response xmlns:ecp="urn:oasis:names:tc:SAML:2.0:'
                                        b'profiles:SSO:ecp" AssertionConsumerServiceURL="' + acs + b'"/></S:Header><S:Body>')
    assert ecp(monkeypatch, answer(b"https://signin.aws.amazon.com/saml"))[0].role_arns() == [ADMIN]
    with pytest.raises(ServiceError, match="addressed its ECP answer to https://sp.example.net/acs, not to AWS's "
                                           "https://signin.aws.amazon.com/saml; refused"):
        ecp(monkeypatch, answer(b"https://sp.example.net/acs"))


def test_regression_an_unsigned_response_or_one_signing_another_id_is_not_sent():
    unsigned = response().replace(SIGNED.encode(), b"")
    with pytest.raises(ServiceError, match="is not signed"):
        read(unsigned)
    other_ref = response().replace(b'URI="#_a"', b'URI="#_elsewhere"')
    with pytest.raises(ServiceError, match="is not signed"):
        read(other_ref)
    # the Response's own signature is enough (ID _r), as is the assertion's
    response_signed = unsigned.replace(b"<samlp:Status>", SIGNED.replace("#_a", "#_r").encode() + b"<samlp:Status>")
    assert read(response_signed).role_arns() == [ADMIN]


def test_regression_two_elements_with_the_signed_id_are_refused():
    # XSW: a second element carrying the assertion's ID, for an ID lookup to find instead
    data = response().replace(b"<samlp:Status>", b'<samlp:Extensions><x:y xmlns:x="urn:x" ID="_a"/></samlp:Extensions>'
                              b"<samlp:Status>")
    with pytest.raises(ServiceError, match="two elements carry the same ID"):
        read(data)


def test_regression_an_assertion_sts_refuses_is_not_kept_for_the_next_refresh(session_env, monkeypatch):
    from credproc.core import sts
    from credproc.sources.saml import provider as ps
    from tests.fakes import ScriptedTerminal

    make, sign_ons, clock = session_env

    def refuse(client, operation, context, **params):
        raise AuthenticationFailed("STS rejected the SAML assertion of x: Invalid SAML response")

    monkeypatch.setattr(sts, "client", lambda *a: None)
    monkeypatch.setattr(sts, "call", refuse)
    session = make(ScriptedTerminal(["pw"]))
    p = ps.SamlProvider(session.ctx, session, {"name": "r", "arn": ADMIN, "duration": 3600}, "us-east-1", None)
    with pytest.raises(AuthenticationFailed):
        p.retrieve()
    assert session.ctx.store.get(session.identity) is None  # the next run signs on again
    # but an assertion another process put in its place meanwhile stays
    old = make(ScriptedTerminal(["pw"])).assertion()
    clock.now += 1
    newer = make(ScriptedTerminal(["pw"]), force=True).assertion()
    assert newer.encoded != old.encoded
    session.forget_if(old)
    assert session.ctx.store.get(session.identity) is not None


def test_regression_doctor_asks_the_idp_in_the_partition_of_its_roles():
    from credproc.sources.saml.source import SOURCE

    cfg = parse('[idp.s]\ntype = "saml"\nurl = "https://idp.example.edu/ecp"\n[role.r]\nidp = "s"\nregion = "us-gov-west-1"\n')
    [(_, _, _, region)] = SOURCE.doctor_network_checks(cfg, cfg.idps["s"])
    assert saml.service_provider(region)[0] == "urn:amazon:webservices:govcloud"
    cfg = parse('[idp.s]\ntype = "saml"\nurl = "https://idp.example.edu/ecp"\n')
    [(_, _, _, region)] = SOURCE.doctor_network_checks(cfg, cfg.idps["s"])
    assert region == "us-east-1"


def test_item20_the_password_is_in_exactly_one_request_and_nothing_after_the_login_carries_a_body(monkeypatch):
    """After the login POST (redirects, then an intermediate page, then the SAMLResponse), every
    request goes without a body, and exactly one request of the whole flow carries the password."""
    good = base64.b64encode(response()).decode()
    fake = FakeHttp(monkeypatch, [
        (200, {"Content-Type": "text/html"}, login_page("/login")),
        (302, {"Location": "https://idp.example.edu/after-login"}, b""),
        (303, {"Location": "https://idp.example.edu/continue"}, b""),
        (200, {"Content-Type": "text/html"}, f'<form method="post" action="https://signin.aws.amazon.com/saml">'
                                             f'<input type="hidden" name="SAMLResponse" value="{good}"></form>'.encode()),
    ])
    got = saml.form_sign_on("https://idp.example.edu/sso?sp=aws", "alice", "s3cret-pw", AWS, lambda: NOW, 30)
    assert got.role_arns() == [ADMIN]
    methods = [m for m, *_ in fake.sent]
    assert methods == ["GET", "POST", "GET", "GET"], fake.sent
    login = methods.index("POST")
    assert all(form is None for _, _, form, _, _ in fake.sent[login + 1:]), fake.sent
    assert sum("s3cret-pw" in repr(sent) for sent in fake.sent) == 1
