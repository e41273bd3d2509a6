"""SAML protocol client: the checks credproc makes before an assertion goes to STS (which the test
peers cannot show: SimpleSAMLphp issues what it is asked for and moto checks nothing), safe XML,
the ECP cut-out, the login-form finder, and the provider's role and duration choices with fakes."""

import base64

import pytest

from credproc import saml
from credproc.errors import AccessDenied, AuthenticationFailed, ServiceError

NOW = 1_800_000_000
AWS = "urn:amazon:webservices"
ADMIN = "arn:aws:iam::123456789012:role/Admin"
READ = "arn:aws:iam::123456789012:role/ReadOnly"
PROVIDER = "arn:aws:iam::123456789012:saml-provider/SSP"


def iso(epoch):
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


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
    body = (f"<{a}:Assertion ID=\"_a\" Version=\"2.0\"><{a}:Issuer>https://idp.example.edu</{a}:Issuer>"
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
    from credproc import sts
    from credproc.providers import saml as ps

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
    from credproc.errors import ConfigError

    cfg = parse('[idp.s]\ntype = "saml"\nurl = "https://idp.example.edu/idp/profile/SAML2/SOAP/ECP"\n'
                '[role.r]\nidp = "s"\n')
    idp = cfg.idps["s"]
    from credproc.providers.saml import timeout_of

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
    from credproc.providers import saml as ps
    from credproc.store import EncryptedFileCache

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
    from credproc.errors import LoginRequired
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

    from credproc import sts

    e = ClientError({"Error": {"Code": code, "Message": "bad sig"}}, "AssumeRoleWithSAML")
    err = sts.translate_client_error(e, "AssumeRoleWithSAML", "alice from idp",
                                     {"RoleArn": ADMIN, "PrincipalArn": PROVIDER, "SAMLAssertion": "PHNhbWxwOlJlc3BvbnNl"})
    assert isinstance(err, cls) and fragment in str(err) and "PHNhbWxw" not in str(err)
