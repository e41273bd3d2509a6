"""`type = "process"` without running credproc: the strict parse of a helper's document, the idp's
config checks, the chain it builds, and the provider against small real helper processes
(python -c ...), in-process. The installed executable is tested in tests/integration/test_process.py."""

import json
import sys

import pytest

from credproc import config
from credproc.context import Context
from credproc.core.credentials import MAX_PROCESS_OUTPUT, parse_process_document
from credproc.core.errors import AuthenticationFailed, ConfigError, ServiceError
from credproc.core.prompt import Terminal
from credproc.sources.assume_role import AssumeRoleProvider
from credproc.sources.cached import CachedProvider

GOOD = {"Version": 1, "AccessKeyId": "ASIAHELPEREXAMPLE001", "SecretAccessKey": "s/ecret+KEY",
        "SessionToken": "tok==", "Expiration": "2026-11-21T09:54:56Z", "AccountId": "111111111111"}


def doc(**changes):
    d = {**GOOD, **changes}
    return json.dumps({k: v for k, v in d.items() if v is not None}).encode()


def test_a_good_document_parses_with_every_field():
    c = parse_process_document(doc())
    assert (c.access_key_id, c.secret_access_key, c.session_token, c.expiration, c.account_id) == \
        ("ASIAHELPEREXAMPLE001", "s/ecret+KEY", "tok==", 1795254896, "111111111111")


@pytest.mark.parametrize("changes, expiration", [
    ({"SessionToken": None, "AccountId": None, "Expiration": None}, None),  # long-lived keys: never expire
    ({"Expiration": "2026-11-21T10:54:56.123+01:00"}, 1795254896),  # the AWS CLI's export-credentials form
    ({"Extra": "ignored"}, 1795254896),
])
def test_optional_fields_and_other_forms(changes, expiration):
    assert parse_process_document(doc(**changes)).expiration == expiration


@pytest.mark.parametrize("data, reason", [
    (b"", "nothing"),
    (b"hello\n", "not a JSON document"),
    (b"[1]", "not a JSON object"),
    (doc() + b"\nmore", "not a JSON document"),
    (b"\xff\xfe", "not UTF-8"),
    (doc(Version="1"), "no Version 1"),
    (doc(Version=True), "no Version 1"),
    (doc(Version=1.0), "no Version 1"),
    (doc(Version=2), "no Version 1"),
    (doc(AccessKeyId=None), "no AccessKeyId"),
    (doc(SecretAccessKey=""), "SecretAccessKey is not a non-empty string"),
    (doc(SessionToken=5), "SessionToken is not a non-empty string"),
    (doc(SecretAccessKey="a\x1b]0;x\x07"), "SecretAccessKey holds characters"),
    (doc(SessionToken="tok en"), "SessionToken holds characters"),
    (doc(AccessKeyId="asia-lower-case-1"), "AccessKeyId is not an access key id"),
    (doc(AccountId="1111"), "AccountId is not 12 digits"),
    (doc(Expiration="2026-11-21T09:54:56"), "Expiration is not an RFC 3339 time with a zone"),
    (doc(Expiration="tomorrow"), "Expiration is not an RFC 3339 time with a zone"),
    (doc(Expiration="9999-99-99T99:99:99Z"), "Expiration is not an RFC 3339 time with a zone"),
    (b"[" * 60000, "not a JSON"),  # nested past the recursion limit
    (b" " * (MAX_PROCESS_OUTPUT + 1), "more than 64 KiB"),
])
def test_anything_else_is_refused_naming_what_is_wrong_but_never_the_value(data, reason):
    with pytest.raises(ValueError) as e:
        parse_process_document(data)
    assert reason in str(e.value)
    assert "s/ecret+KEY" not in str(e.value) and "\x1b" not in str(e.value)


# -- configuration ------------------------------------------------------------------------------------

def parse(idp_lines, role_lines='arn = "arn:aws:iam::111111111111:role/Admin"'):
    text = f'[idp.h]\ntype = "process"\n{idp_lines}\n\n[role.r]\nidp = "h"\n{role_lines}\n'
    return config.parse("c.toml", text.encode())


def test_defaults():
    idp = parse('command = "helper --x"').idps["h"]
    assert (idp["command"], idp["env"], idp["timeout"], idp["interactive"]) == ("helper --x", None, 60, False)


@pytest.mark.parametrize("lines, problem", [
    ('command = "  "', "idp.h.command: must not be empty"),
    ('command = "helper \'unclosed"', "idp.h.command: cannot be split as the SDKs split a credential_process line"),
    ('command = "h"\nenv = { A = 1 }', "idp.h.env: A: values must be strings"),
    ('command = "h"\ntimeout = 0', "idp.h.timeout: must be between 1 and 3600 seconds, not 0"),
    ('command = "h"\ninteractive = "yes"', 'idp.h.interactive: must be true or false, not "yes"'),
    ("", "idp.h.command: is required"),
])
def test_bad_keys_are_configuration_errors(lines, problem):
    with pytest.raises(ConfigError) as e:
        parse(lines)
    assert problem in str(e.value)


def test_timeout_and_interactive_do_not_shape_the_credentials():
    a, b = parse('command = "h"'), parse('command = "h"\ntimeout = 300\ninteractive = true')
    assert a.idp_fingerprint("h") == b.idp_fingerprint("h") and a.fingerprint("r") == b.fingerprint("r")
    assert parse('command = "h2"').idp_fingerprint("h") != a.idp_fingerprint("h")
    assert parse('command = "h"\nenv = { A = "1" }').fingerprint("r") != a.fingerprint("r")


# -- the chain and the provider -----------------------------------------------------------------------

class MemoryStore:
    def __init__(self):
        self.entries = {}

    def get(self, identity, quiet=False):
        return self.entries.get(identity)

    def put(self, identity, entry):
        self.entries[identity] = entry

    def delete(self, identity):
        self.entries.pop(identity, None)

    def lock(self, identity, what):
        class Lock:
            def acquire(self, deadline):
                return False

            def release(self):
                pass

        return Lock()


def context(cfg):
    return Context(cfg, MemoryStore(), Terminal("credproc login --role r", interactive=False))


def python(code):
    return f"{sys.executable} -c {json.dumps(code)}"


def test_the_chain_assumes_the_role_over_the_cached_helper_or_is_the_helper():
    from credproc.chain import build

    cfg = parse('command = "h"')
    outer = build(context(cfg), "r")
    assert isinstance(outer.inner, AssumeRoleProvider)
    cfg = parse('command = "h"', role_lines="")
    helper = build(context(cfg), "r").inner
    assert isinstance(helper, CachedProvider) and helper.identity == "idp:h"


def provider(code, extra=""):
    from credproc.sources.process.source import SOURCE

    cfg = parse(f"command = {json.dumps(python(code))}\n{extra}", role_lines="")
    ctx = context(cfg)
    return SOURCE.helper_provider(ctx, cfg.idps["h"]), ctx


def test_the_provider_caches_expiring_credentials_and_not_the_others():
    code = ("import json,time; print(json.dumps({'Version': 1, 'AccessKeyId': 'ASIAHELPEREXAMPLE001', "
            "'SecretAccessKey': 's', 'Expiration': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time()+7200))}))")
    cached, ctx = provider(code)
    creds = cached.retrieve()
    assert creds.access_key_id == "ASIAHELPEREXAMPLE001" and "idp:h" in ctx.store.entries
    assert "process-noexp:h" not in ctx.store.entries
    cached, ctx = provider("print('{\"Version\": 1, \"AccessKeyId\": \"AKIAHELPEREXAMPLE01\", \"SecretAccessKey\": \"s\"}')")
    assert cached.retrieve().expiration is None
    assert "idp:h" not in ctx.store.entries and "process-noexp:h" in ctx.store.entries
    from credproc.sources.process.source import SOURCE

    (session,) = SOURCE.sessions(ctx.config, ctx.store, ctx.config.idps["h"], ctx.now())
    assert session["refresh"] == "every call" and session["state"] == "none"
    assert "runs on every call" in SOURCE.session_columns(session)[1]


def test_credentials_too_close_to_expiry_are_refused():
    code = ("import json,time; print(json.dumps({'Version': 1, 'AccessKeyId': 'ASIAHELPEREXAMPLE001', "
            "'SecretAccessKey': 's', 'Expiration': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time()+600))}))")
    cached, _ = provider(code)
    with pytest.raises(ServiceError) as e:
        cached.retrieve()
    assert "returned credentials that expire in" in e.value.message and "15 minutes" in str(e.value)


def test_a_failing_helper_shows_its_last_stderr_line_cleaned():
    cached, _ = provider("import sys; sys.stderr.write('first\\nlast \\x1b[2J line\\n\\n'); sys.exit(2)")
    with pytest.raises(AuthenticationFailed) as e:
        cached.retrieve()
    assert e.value.message.endswith("failed with exit code 2: last \\x1b[2J line")
    assert "\x1b" not in str(e.value)


def test_a_huge_stderr_keeps_only_its_tail():
    cached, _ = provider("import sys; sys.stderr.write('x' * 5000000 + '\\nthe end\\n'); sys.exit(1)")
    with pytest.raises(AuthenticationFailed) as e:
        cached.retrieve()
    assert e.value.message.endswith(": the end")
