"""A real SAML 2.0 IdP on loopback: SimpleSAMLphp (Debian package) under PHP's built-in server,
with its own config directory, serving the IdP-initiated login form and ECP (SOAP, HTTP Basic).

See ../shared/reference/saml-peers.md. Installed by tests/peers/install-saml-idp.sh.

    with SamlIdp(users) as idp:
        idp.ecp_url, idp.initiated_url(), idp.sign_ons()

`users` maps "name" -> {"password": ..., "roles": [...], "session_name": ..., "session_duration": ...}.
Users and the assertion lifetime can be changed while it runs (`set_users`, `set_lifetime`): the IdP
reads its config files on every request.
"""

from tests.peers.net import LoopbackHTTPServer
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from .net import forward, free_port, stop_process

SSP_WWW = "/usr/share/simplesamlphp/www"
AWS_SP = "urn:amazon:webservices"
OTHER_SP = "urn:example:another-service"  # a second SP: its assertions carry another audience
ACS = "https://signin.aws.amazon.com/saml"
ROLE_ATTR = "https://aws.amazon.com/SAML/Attributes/Role"
SESSION_NAME_ATTR = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
SESSION_DURATION_ATTR = "https://aws.amazon.com/SAML/Attributes/SessionDuration"


def missing():
    """Why the IdP cannot run here, or None."""
    if not shutil.which("php"):
        return "php is not installed (tests/peers/install-saml-idp.sh installs it)"
    if not os.path.isfile(os.path.join(SSP_WWW, "saml2", "idp", "SSOService.php")):
        return "SimpleSAMLphp is not installed (tests/peers/install-saml-idp.sh installs it)"
    if not shutil.which("openssl"):
        return "openssl is not installed"
    try:
        out = subprocess.run(["php", "-m"], capture_output=True, timeout=20).stdout.decode()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"php -m failed: {e}"
    if not re.search(r"^dom$", out, re.M):
        return "php-xml (the DOM extension) is not installed (tests/peers/install-saml-idp.sh installs it)"
    return None


def _php(value):
    """A PHP literal for a str, int, bool, list or dict."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_php(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{_php(k)} => {_php(v)}" for k, v in value.items()) + "]"
    if value is None:
        return "null"
    raise TypeError(type(value))


def _write(path, text):
    """Write a new file and rename it over the old one: the IdP never reads half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class SamlIdp:
    def __init__(self, users, lifetime=300, ecp=True, static_user=None):
        """static_user: sign every IdP-initiated sign-on in as this user without asking (SimpleSAMLphp's
        exampleauth:StaticSource), as an IdP does where the browser already has a session; a browser
        then goes straight to the auto-POST page."""
        self.static_user = static_user
        self.users = users
        self.lifetime = lifetime
        self.ecp = ecp
        self.dir = tempfile.mkdtemp(prefix="saml-idp-")
        self.proc = None
        self.token = "test-" + secrets.token_hex(8)
        for sub in ("config", "metadata", "cert", "tmp", "data", "log", "sessions"):
            os.makedirs(os.path.join(self.dir, sub))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                        "-keyout", self._p("cert/idp.key"), "-out", self._p("cert/idp.crt"), "-days", "3650",
                        "-subj", "/CN=SAML test IdP"], check=True, capture_output=True, timeout=60)

    def _p(self, rel):
        return os.path.join(self.dir, rel)

    # -- config files ----------------------------------------------------------------------
    def _write_config(self):
        d = self.dir + "/"
        config = {
            "baseurlpath": self.url + "/", "certdir": d + "cert/", "loggingdir": d + "log/", "datadir": d + "data/",
            "tempdir": d + "tmp", "metadatadir": d + "metadata/", "secretsalt": secrets.token_hex(16),
            "auth.adminpassword": secrets.token_hex(16), "technicalcontact_name": self.token,
            "technicalcontact_email": "test@example.org", "timezone": "UTC", "admin.checkforupdates": False,
            "showerrors": True, "errorreporting": False, "logging.handler": "file",
            "logging.logfile": "simplesamlphp.log", "statistics.out": [],
            "enable.saml20-idp": True, "enable.shib13-idp": False, "enable.adfs-idp": False,
            "module.enable": {"core": True, "saml": True, "exampleauth": True},
            "store.type": "phpsession", "session.phpsession.savepath": d + "sessions",
            "session.cookie.secure": False, "session.cookie.samesite": None,
            "language.cookie.secure": False, "language.cookie.samesite": None,
        }
        body = _php(config)[1:-1]
        _write(self._p("config/config.php"),
               f"<?php\n$config = [{body}, 'logging.level' => SimpleSAML\\Logger::INFO];\n")
        _write(self._p("metadata/saml20-idp-hosted.php"), "<?php\n$metadata[" + _php(self.entity_id) + "] = " + _php({
            "host": "__DEFAULT__", "privatekey": "idp.key", "certificate": "idp.crt",
            "auth": "static" if self.static_user else "users",
            "saml20.ecp": self.ecp, "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            "signature.algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"}) + ";\n")
        self.set_users(self.users)
        self.set_lifetime(self.lifetime)

    def set_users(self, users):
        self.users = users
        entries = ["'exampleauth:UserPass'"]
        static = ["'exampleauth:StaticSource'"]
        for name, u in users.items():
            attrs = {"uid": [name]}
            if u.get("roles") is not None:
                attrs[ROLE_ATTR] = list(u["roles"])
            if u.get("session_name", name) is not None:
                attrs[SESSION_NAME_ATTR] = [u.get("session_name", name)]
            if u.get("session_duration") is not None:
                attrs[SESSION_DURATION_ATTR] = [str(u["session_duration"])]
            entries.append(f"{_php(name + ':' + u['password'])} => {_php(attrs)}")
            if name == self.static_user:
                static += [f"{_php(k)} => {_php(v)}" for k, v in attrs.items()]
        _write(self._p("config/authsources.php"), "<?php\n$config = ['users' => [" + ", ".join(entries) + "], "
               "'static' => [" + ", ".join(static) + "]];\n")

    def set_lifetime(self, lifetime):
        """Seconds from issue to the assertion's NotOnOrAfter; a negative one issues expired assertions."""
        self.lifetime = lifetime
        sps = []
        for entity in (AWS_SP, OTHER_SP):
            sps.append("$metadata[" + _php(entity) + "] = " + _php({
                "AssertionConsumerService": [
                    {"index": 1, "isDefault": True, "Binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                     "Location": ACS},
                    {"index": 2, "Binding": "urn:oasis:names:tc:SAML:2.0:bindings:PAOS", "Location": ACS}],
                "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                "simplesaml.nameidattribute": "uid",
                "attributes.NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
                "assertion.lifetime": lifetime}) + ";")
        _write(self._p("metadata/saml20-sp-remote.php"), "<?php\n" + "\n".join(sps) + "\n")

    # -- process ---------------------------------------------------------------------------
    def start(self, attempts=5):
        for _ in range(attempts):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.entity_id = f"{self.url}/saml2/idp/metadata.php"
            self._write_config()
            env = dict(os.environ, SIMPLESAMLPHP_CONFIG_DIR=self._p("config"))
            with open(self._p("log/php-server.log"), "ab") as out:
                self.proc = subprocess.Popen(
                    ["php", "-d", "display_errors=0", "-d", "error_reporting=22527", "-d", "log_errors=1",
                     "-d", f"error_log={self._p('log/php-errors.log')}", "-S", f"127.0.0.1:{self.port}", "-t", SSP_WWW],
                    env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            if self._ready():
                return self
            stop_process(self.proc)  # most likely the port was taken meanwhile: try another
        raise RuntimeError(f"SimpleSAMLphp did not start; see {self._p('log')}")

    def _ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.entity_id, timeout=2) as r:
                    if self.token.encode() in r.read() and self.proc.poll() is None:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what tests use --------------------------------------------------------------------
    @property
    def ecp_url(self):
        return f"{self.url}/saml2/idp/SSOService.php"

    def initiated_url(self, sp=AWS_SP):
        return f"{self.url}/saml2/idp/SSOService.php?spentityid={urllib.parse.quote(sp, safe='')}"

    def verify(self, response, element, path):
        """xmlsec1's verdict (True/False) on the enveloped signature of `element` ("Response" or
        "Assertion") in a samlp:Response, against this IdP's certificate. path: a scratch file."""
        with open(path, "wb") as f:
            f.write(response)
        r = subprocess.run(["xmlsec1", "--verify", "--pubkey-cert-pem", self._p("cert/idp.crt"), "--enabled-key-data", "rsa",
                            "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
                            "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                            "--node-xpath", f'//*[local-name()="{element}"]/*[local-name()="Signature"]', path],
                           capture_output=True, timeout=30)
        return r.returncode == 0

    def static_sign_on(self):
        """The SAMLResponse form value of one IdP-initiated sign-on as the static user (no form):
        the IdP answers its auto-POST page at once."""
        import html
        import http.cookiejar

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(self.initiated_url(), timeout=20) as r:
            text = r.read().decode()
        m = re.search(r'name="SAMLResponse" value="([^"]+)"', text)
        if not m:
            raise RuntimeError("the IdP did not answer with a SAMLResponse: " + text[:300])
        return html.unescape(m.group(1))

    def log_text(self):
        try:
            with open(self._p("log/simplesamlphp.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def sign_ons(self):
        """Assertions the IdP has issued (successful sign-ons), counted from its own log."""
        return len(re.findall(r"Sending SAML 2\.0 Response to", self.log_text()))

    def sso_requests(self):
        """Every request to the SSO endpoint the IdP handled (sign-ons tried, right password or not)."""
        return len(re.findall(r"Accessing SAML 2\.0 IdP endpoint SSOService", self.log_text()))

    def requests(self, path_part):
        """How many requests PHP's server logged for URLs containing path_part."""
        try:
            with open(self._p("log/php-server.log"), errors="replace") as f:
                return sum(1 for line in f if path_part in line and "Accepted" not in line and "Closing" not in line)
        except FileNotFoundError:
            return 0


class HeaderRecorder:
    """A reverse proxy in front of the IdP's ECP endpoint that records each request's headers
    (SimpleSAMLphp ignores Shibboleth's Duo headers; this shows what credproc sent). ECP only: it
    does not rewrite redirects."""

    def __init__(self, upstream):
        import http.server
        import threading

        self.upstream = upstream
        self.requests = []  # (method, path, {header: value})
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append((self.command, self.path, dict(self.headers.items())))
                forward(self, recorder.upstream, body)

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class ScriptedSignOn:
    """A sign-on page with no HTML form at all, as JavaScript sign-in apps have: its script fetches
    the signed SAMLResponse (taken here, server side, from the IdP's IdP-initiated sign-on) and
    submits a form it builds to AWS's ACS. A scripted form flow cannot get through it; a browser can.

    /start?delay=S waits S seconds before fetching; /start?close=1 closes the window instead
    (a user who gives up). Counts the times /start was loaded."""

    PAGE = """<!doctype html><meta charset=utf-8><title>Sign in</title><body><p>Signing you in...</p><script>
const q = new URLSearchParams(location.search);
setTimeout(() => {
  if (q.get("close")) { window.close(); return; }
  fetch("/assertion").then(r => r.json()).then(j => {
    const f = document.createElement("form"); f.method = "POST"; f.action = j.acs;
    const i = document.createElement("input"); i.type = "hidden"; i.name = "SAMLResponse"; i.value = j.value;
    f.appendChild(i); document.body.appendChild(f); f.submit();
  });
}, 1000 * Number(q.get("delay") || 0));
</script></body>"""

    def __init__(self, idp):
        import http.server
        import json
        import threading

        self.idp = idp
        self.starts = 0
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.startswith("/start"):
                    page.starts += 1
                    self._send(200, page.PAGE.encode(), "text/html; charset=utf-8")
                elif self.path == "/assertion":
                    value = page.idp.static_sign_on()
                    self._send(200, json.dumps({"acs": ACS, "value": value}).encode(), "application/json")
                else:
                    self._send(404, b"", "text/plain")

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def start_url(self, **query):
        return self.url + "/start" + ("?" + urllib.parse.urlencode(query) if query else "")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
