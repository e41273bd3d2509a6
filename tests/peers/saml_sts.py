"""A recording proxy in front of moto for AssumeRoleWithSAML.

It records each STS request's parameters exactly as credproc sent them (tests assert on RoleArn,
PrincipalArn, DurationSeconds and the assertion). moto 5 cannot read a multi-valued Role attribute
(a TypeError, HTTP 500; see ../shared/reference/saml-peers.md), so before forwarding it narrows
the Role attribute of the copy it sends to moto to the value naming the requested RoleArn. moto
checks no signature, so it accepts that copy; real STS would get credproc's untouched assertion,
which is what `calls` holds.
"""

from tests.peers.net import LoopbackHTTPServer
import base64
import http.server
import re
import threading
import urllib.parse

from .net import forward

ROLE_ATTR = "https://aws.amazon.com/SAML/Attributes/Role"


def narrow_roles(xml, role_arn):
    """The Response with only the Role AttributeValue(s) naming role_arn (for moto only)."""
    def fix(attr):
        def keep(value):
            return value.group(0) if role_arn in [p.strip() for p in value.group(2).split(",")] else ""

        return re.sub(r"<(\w+:)?AttributeValue\b[^>]*>(.*?)</(?:\w+:)?AttributeValue>", keep, attr.group(0), flags=re.S)

    pattern = r"<(\w+:)?Attribute\b[^>]*Name=\"" + re.escape(ROLE_ATTR) + r"\"[^>]*>.*?</(?:\w+:)?Attribute>"
    return re.sub(pattern, fix, xml, flags=re.S)


class SamlStsProxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.calls = []  # (Action, {param: value}) in arrival order
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("latin-1")).items()}
                with proxy._lock:  # "_signed": whether the request carried SigV4 (it must not: the assertion is the credential)
                    proxy.calls.append((params.get("Action", "?"), dict(params, _signed="Authorization" in self.headers)))
                if params.get("Action") == "AssumeRoleWithSAML" and params.get("SAMLAssertion"):
                    xml = base64.b64decode(params["SAMLAssertion"]).decode()
                    params["SAMLAssertion"] = base64.b64encode(narrow_roles(xml, params.get("RoleArn", "")).encode()).decode()
                    body = urllib.parse.urlencode(params).encode()
                forward(self, proxy.upstream, body)

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def saml_calls(self):
        with self._lock:
            return [p for a, p in self.calls if a == "AssumeRoleWithSAML"]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
