"""flow = "browser": the user signs in to the IdP in a real browser window, however the IdP wants
(number matching, push, passkeys, device checks), and credproc takes the SAMLResponse that the IdP's
page POSTs to AWS's sign-in endpoint, without that POST ever being sent.

The browser is the user's own kind (Chrome, Edge, Chromium, Brave) with a profile directory of
credproc's per idp (kept, so "remember this device" and the IdP's session cookies work next time),
driven through the DevTools protocol over a pipe (core/devtools.py). Every page the browser opens is
attached before it runs (auto-attach, waiting for the debugger) and has its requests to AWS's SAML
endpoints paused (Fetch domain): the one carrying the SAMLResponse is answered by credproc itself with
a "signed in" page. As a backstop, the browser is also told that AWS's sign-in hosts do not resolve,
so an assertion can never leave the machine even if interception failed."""

import base64
import time
import urllib.parse

from ...core import devtools, log, paths
from ...core.errors import AuthenticationFailed, LoginRequired, ServiceError

# Every partition's SAML endpoint, global and regional (region.signin.aws.amazon.com/saml)
SIGNIN_HOSTS = ("signin.aws.amazon.com", "signin.amazonaws-us-gov.com", "signin.amazonaws.cn")
PATTERNS = [{"urlPattern": f"https://{prefix}{host}/saml*", "requestStage": "Request"}
            for host in SIGNIN_HOSTS for prefix in ("", "*.")]
RESOLVER_RULES = ", ".join(f"MAP {prefix}{host} ~NOTFOUND" for host in SIGNIN_HOSTS for prefix in ("", "*."))

DONE_PAGE = (b"<!doctype html><meta charset=utf-8><title>credproc: signed in</title>"
             b"<body style='font-family:sans-serif;margin:3em'><h2>Signed in.</h2>"
             b"<p>credproc has what it needs. You can close this window.</p></body>")
DONE_SHOWN = 1.0  # seconds the page stays before credproc closes the browser


def profile_dir(idp_name):
    """The browser profile of an idp's sign-ins, kept between them (the IdP's cookies)."""
    return paths.browser_profile_dir(f"saml-{idp_name}")


def _is_signin(url):
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in SIGNIN_HOSTS)


def _form_value(post_data, name):
    """A field of an application/x-www-form-urlencoded body, or None."""
    for key, value in urllib.parse.parse_qsl(post_data, keep_blank_values=True):
        if key == name:
            return value
    return None


def _post_data(request):
    """The request body as text: postData, or the bytes of postDataEntries (newer browsers)."""
    if isinstance(request.get("postData"), str):
        return request["postData"]
    parts = []
    for entry in request.get("postDataEntries") or []:
        if isinstance(entry, dict) and isinstance(entry.get("bytes"), str):
            try:
                parts.append(base64.b64decode(entry["bytes"]))
            except ValueError:
                return None
    return b"".join(parts).decode("latin-1") if parts else None


class SignOn:
    """One sign-on in a browser window; run() returns the SAMLResponse form value."""

    def __init__(self, command, profile_dir, url, acs, timeout, where, clock=time.monotonic):
        """command: the browser's argv (devtools.find)."""
        self.command = command
        self.exe = command[0]
        self.profile_dir = profile_dir
        self.url = url
        self.acs = acs
        self.timeout = timeout
        self.where = where
        self.clock = clock
        self.pages = {}  # targetId -> sessionId of every open page
        self.navigated = False

    def run(self):
        browser = devtools.Browser(self.command, self.profile_dir, flags=(f"--host-resolver-rules={RESOLVER_RULES}",))
        try:
            # every page, the first one and any the IdP opens, is attached before it runs
            browser.call("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True})
            browser.call("Target.setDiscoverTargets", {"discover": True})
            return self._watch(browser)
        except EOFError:
            raise AuthenticationFailed(f"the browser window for {self.where} was closed before the sign-in finished",
                                       hint="run the command again and sign in in the window that opens") from None
        finally:
            browser.close()

    def _watch(self, browser):
        start = self.clock()
        deadline = start + self.timeout
        answer_by = start + devtools.ANSWER_WAIT
        while True:
            now = self.clock()
            if not self.navigated and now >= answer_by:
                raise ServiceError(f"the browser {self.exe} did not open a page on its DevTools pipe",
                                   hint="is it a Chromium-family browser (Chrome, Edge, Chromium, Brave)? set browser to one")
            if now >= deadline:
                raise LoginRequired(f"no sign-in at {self.where} within {self.timeout} s",
                                    hint="run the command again and finish signing in within the time (or raise "
                                         "signin_timeout in the idp's table)")
            message = browser.read(min(deadline, answer_by if not self.navigated else deadline) - now)
            if message is None:
                continue
            value = self._handle(browser, message)
            if value is not None:
                return value

    def _handle(self, browser, message):
        method, params, session = message.get("method"), message.get("params") or {}, message.get("sessionId")
        if not isinstance(params, dict):
            return None
        if method == "Target.attachedToTarget":
            info = params.get("targetInfo") or {}
            child = params.get("sessionId")
            if info.get("type") == "page" and child:
                browser.send("Fetch.enable", {"patterns": PATTERNS}, child)
                self.pages[info.get("targetId")] = child
                if not self.navigated:  # the first page: after Fetch.enable (same session, in order)
                    browser.send("Page.navigate", {"url": self.url}, child)
                    self.navigated = True
            if params.get("waitingForDebugger") and child:
                browser.send("Runtime.runIfWaitingForDebugger", {}, child)
        elif method == "Target.targetDestroyed" or method == "Target.detachedFromTarget":
            self.pages.pop(params.get("targetId"), None)
            if self.navigated and not self.pages:
                raise EOFError("every window was closed")
        elif method == "Fetch.requestPaused":
            return self._paused(browser, params, session)
        return None

    def _paused(self, browser, params, session):
        """A request to an AWS sign-in host: never sent. The SAMLResponse POST is answered with the
        done page; anything else there is failed (blocked), which the IdP's page will show."""
        request = params.get("request") or {}
        request_id = params.get("requestId")
        url = request.get("url") if isinstance(request.get("url"), str) else ""
        value = None
        if request.get("method") == "POST" and _is_signin(url):
            value = _form_value(_post_data(request) or "", "SAMLResponse")
        if value is None:
            log.debug("browser sign-in: blocked a %s to %s without a SAMLResponse", request.get("method"),
                      url.split("?")[0][:200])
            browser.send("Fetch.failRequest", {"requestId": request_id, "errorReason": "BlockedByClient"}, session)
            return None
        if url.split("?")[0].rstrip("/") != self.acs.rstrip("/"):
            log.debug("browser sign-in: the SAMLResponse went to %s, not %s", url.split("?")[0][:200], self.acs)
        browser.send("Fetch.fulfillRequest", {
            "requestId": request_id, "responseCode": 200,
            "responseHeaders": [{"name": "Content-Type", "value": "text/html; charset=utf-8"},
                                {"name": "Cache-Control", "value": "no-store"}],
            "body": base64.b64encode(DONE_PAGE).decode()}, session)
        end = self.clock() + DONE_SHOWN
        while self.clock() < end:  # let the page show; the answers and events are of no interest now
            try:
                browser.read(max(0.0, end - self.clock()))
            except EOFError:
                break
        return value
