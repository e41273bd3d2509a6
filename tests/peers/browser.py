"""The scripted "user's browser" for the oidc-provider test peer (devInteractions pages).

    from tests.peers.browser import complete_device_flow, complete_code_flow

    page = complete_device_flow(verification_uri_complete, login="alice")          # approves
    page = complete_device_flow(verification_uri_complete, approve=False)           # user aborts
    result = complete_code_flow(authorization_url, login="alice")  # delivers the redirect to the
                                                                   # app's loopback listener

Every request has a timeout, redirects are followed by hand, and the walk is bounded (at most
`max_steps` form submissions and `max_requests` HTTP requests), so a provider that misbehaves makes
the helper raise BrowserError instead of hanging a test.
"""

from __future__ import annotations  # `str | None` on Python 3.9

import dataclasses
import html.parser
import urllib.parse

import requests

MAX_STEPS = 10
MAX_REQUESTS = 30
TIMEOUT = 5.0


class BrowserError(RuntimeError):
    pass


def followed(url):
    """The URL a browser ends up at: credproc hands browsers a private file:// page that redirects
    (so no sign-in URL is on an argv); read its target as a browser would."""
    if not url.startswith("file://"):
        return url
    import html
    import re
    import urllib.request

    path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    with open(path, encoding="utf-8") as f:
        page = f.read()
    m = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', page)
    if not m:
        raise BrowserError(f"no redirect in the page {path}")
    return html.unescape(m.group(1))


@dataclasses.dataclass
class Form:
    action: str
    method: str
    id: str | None
    inputs: list  # [(name, type, value)]

    def names(self):
        return {name for name, _type, _value in self.inputs}

    def types(self):
        return {type_ for _name, type_, _value in self.inputs}


@dataclasses.dataclass
class Page:
    url: str
    status: int
    title: str
    text: str
    html: str


@dataclasses.dataclass
class DeviceFlowResult:
    approved: bool  # True: "Sign-in Success"; False: the provider confirmed the abort
    page: Page


@dataclasses.dataclass
class CodeFlowResult:
    callback_url: str  # where the provider redirected the browser (the app's loopback redirect_uri)
    params: dict  # its query parameters (code, state, iss; or error, error_description)
    response: requests.Response | None  # the listener's answer (None when deliver=False)


class _PageParser(html.parser.HTMLParser):
    """Forms (with inputs and buttons, including ones outside the form joined by form="id"),
    links, the title and visible text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.by_id = {}
        self.orphans = []  # (form_id, name, type, value) for controls with a form= attribute
        self.links = []
        self.title = ""
        self.text = []
        self._form = None
        self._in_title = False
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower(), a.get("id"), [])
            self.forms.append(self._form)
            if self._form.id:
                self.by_id[self._form.id] = self._form
        elif tag in ("input", "button"):
            type_ = a.get("type", "text" if tag == "input" else "submit").lower()
            name = a.get("name")
            if not name:
                return
            control = (name, type_ if tag == "input" else "button", a.get("value", ""))
            if "form" in a:
                self.orphans.append((a["form"],) + control)
            elif self._form is not None:
                self._form.inputs.append(control)
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag == "form":
            self._form = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip and data.strip():
            self.text.append(data.strip())


def _parse(resp):
    p = _PageParser()
    p.feed(resp.text)
    p.close()
    page = Page(resp.url, resp.status_code, p.title.strip(), " ".join(p.text), resp.text)
    return page, p


def _origin(url):
    u = urllib.parse.urlsplit(url)
    return (u.scheme, u.netloc)


class Browser:
    def __init__(self, timeout=TIMEOUT, max_steps=MAX_STEPS, max_requests=MAX_REQUESTS):
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "credproc-test-browser/1"
        self.timeout = timeout
        self.max_steps = max_steps
        self.max_requests = max_requests
        self.history = []  # (method, url, status)

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- low level ----
    def _request(self, method, url, data=None):
        if len(self.history) >= self.max_requests:
            raise BrowserError(f"gave up after {self.max_requests} requests: {self.history}")
        resp = self.session.request(method, url, data=data, allow_redirects=False, timeout=self.timeout)
        self.history.append((method, url, resp.status_code))
        return resp

    def _walk(self, method, url, data=None, stop_at_origin_change=None):
        """Send a request and follow redirects by hand. With stop_at_origin_change=(scheme, netloc),
        return the redirect target (a string) as soon as one leaves that origin."""
        resp = self._request(method, url, data)
        while resp.is_redirect:
            target = urllib.parse.urljoin(resp.url, resp.headers["Location"])
            if stop_at_origin_change is not None and _origin(target) != stop_at_origin_change:
                return target
            resp = self._request("GET", target)
        return resp

    def _submit(self, form, page_url, extra=None, login=None, password=None):
        data = []
        for name, type_, value in form.inputs:
            if type_ == "button":
                continue  # only the button that is "clicked" is sent (see extra)
            if type_ == "password":
                value = password
            elif name == "login" and type_ in ("text", "email"):
                value = login
            data.append((name, value))
        data.extend((extra or {}).items())
        action = urllib.parse.urljoin(page_url, form.action or page_url)
        if form.method == "get":
            sep = "&" if "?" in action else "?"
            return "GET", action + sep + urllib.parse.urlencode(data), None
        return "POST", action, data

    def _forms(self, parser):
        for form_id, name, type_, value in parser.orphans:
            form = parser.by_id.get(form_id)
            if form is not None and (name, type_, value) not in form.inputs:
                form.inputs.append((name, type_, value))
        return parser.forms

    @staticmethod
    def _abort_link(parser, page_url):
        for href in parser.links:
            if urllib.parse.urlsplit(href).path.rstrip("/").endswith("/abort"):
                return urllib.parse.urljoin(page_url, href)
        return None

    # ---- device flow ----
    def complete_device_flow(self, verification_uri_complete, login="alice", password="secret", approve=True):
        """Open verification_uri_complete and go through device confirm, login and consent.
        approve=False clicks "Abort" on the device confirmation page. Returns DeviceFlowResult;
        raises BrowserError on anything unexpected (wrong/expired/used code, error page, no end)."""
        resp = self._walk("GET", followed(verification_uri_complete))
        for _step in range(self.max_steps):
            page, parser = _parse(resp)
            if page.title == "Sign-in Success" or "Sign-in Success" in page.text[:200]:
                return DeviceFlowResult(True, page)
            if "request was interrupted" in page.text:
                if approve:
                    raise BrowserError(f"device flow was interrupted: {page.text[:300]}")
                return DeviceFlowResult(False, page)
            if page.status >= 400:
                raise BrowserError(f"HTTP {page.status} at {page.url}: {page.text[:300]}")
            forms = self._forms(parser)
            if not forms:
                raise BrowserError(f"no form on {page.url} ({page.title!r}): {page.text[:300]}")
            form = forms[0]
            extra = None
            if form.id == "op.deviceInputForm":
                # the provider asks for the code again: the one we sent was not accepted
                raise BrowserError(f"user code rejected at {page.url}: {page.text[:300]}")
            if form.id == "op.deviceConfirmForm" and not approve:
                extra = {"abort": "yes"}
            elif not approve and "password" in form.types():
                abort = self._abort_link(parser, page.url)
                if abort:
                    resp = self._walk("GET", abort)
                    continue
            method, url, data = self._submit(form, page.url, extra, login, password)
            resp = self._walk(method, url, data)
        raise BrowserError(f"device flow did not finish within {self.max_steps} steps: {self.history}")

    # ---- authorization code flow ----
    def complete_code_flow(self, authorization_url, login="alice", password="secret", approve=True,
                           deliver=True, callback_timeout=10.0):
        """Open authorization_url, log in and consent until the provider redirects away from itself
        (to the app's loopback redirect_uri). With deliver=True, GET that callback URL once (as the
        browser would: the app's listener receives it) and return its response too.
        approve=False clicks the interaction's abort link (callback gets error=access_denied)."""
        authorization_url = followed(authorization_url)
        provider = _origin(authorization_url)
        result = self._walk("GET", authorization_url, stop_at_origin_change=provider)
        for _step in range(self.max_steps + 1):
            if isinstance(result, str):
                return self._deliver(result, deliver, callback_timeout)
            page, parser = _parse(result)
            if page.status >= 400:
                raise BrowserError(f"HTTP {page.status} at {page.url}: {page.text[:300]}")
            if not approve:
                abort = self._abort_link(parser, page.url)
                if abort:
                    result = self._walk("GET", abort, stop_at_origin_change=provider)
                    continue
            forms = self._forms(parser)
            if not forms:
                raise BrowserError(f"no form on {page.url} ({page.title!r}): {page.text[:300]}")
            method, url, data = self._submit(forms[0], page.url, None, login, password)
            result = self._walk(method, url, data, stop_at_origin_change=provider)
        raise BrowserError(f"code flow did not reach the redirect_uri within {self.max_steps} steps: "
                           f"{self.history}")

    def _deliver(self, callback_url, deliver, timeout):
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback_url).query))
        if not deliver:
            return CodeFlowResult(callback_url, params, None)
        host = urllib.parse.urlsplit(callback_url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise BrowserError(f"refusing to deliver a callback outside loopback: {callback_url}")
        try:
            # a fresh request, no provider cookies; the listener answers once
            resp = requests.get(callback_url, timeout=timeout, allow_redirects=False)
        except requests.RequestException as e:
            raise BrowserError(f"the app's listener at {callback_url} did not answer: {e}") from e
        self.history.append(("GET", callback_url, resp.status_code))
        return CodeFlowResult(callback_url, params, resp)


def complete_device_flow(verification_uri_complete, login="alice", approve=True, **kwargs):
    """One fresh browser (no session) completes (or aborts) a device authorization."""
    with Browser() as b:
        return b.complete_device_flow(verification_uri_complete, login=login, approve=approve, **kwargs)


def complete_code_flow(authorization_url, login="alice", approve=True, **kwargs):
    """One fresh browser logs in and consents, then delivers the redirect to the app's listener."""
    with Browser() as b:
        return b.complete_code_flow(authorization_url, login=login, approve=approve, **kwargs)
