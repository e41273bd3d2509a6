"""A small HTTPS client on the standard library (no extra dependency, imported only on a miss).

TLS verification is always on. Plain http:// is refused except to a loopback address, which is
what the tests' local peers use.
"""

import http.client
import ipaddress
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

from .errors import ConfigError, NetworkError


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url, key):
    """ConfigError unless url is https, or http to a loopback address."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise ConfigError(f"{key}: {url!r} is not a valid URL") from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host and is_loopback(host):
        return
    raise ConfigError(f"{key}: {url!r} must be an https:// URL (plain http is allowed only to a loopback address)")


class Response:
    def __init__(self, status, headers, body, url=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow a redirect of a GET only to https (or http on loopback); never re-send a POST (it may
    carry a password or a client secret) anywhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.get_method() != "GET":
            return None
        try:
            parts = urllib.parse.urlsplit(newurl)
            host = parts.hostname or ""
        except ValueError:
            return None
        if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand every redirect back to the caller as a Response (it decides, e.g. after a login POST)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def request(method, url, *, form=None, data=None, headers=None, timeout=30, ca_bundle=None, what="the server",
            cookies=None, follow_redirects=True):
    """Send a request; every HTTP status comes back as a Response; transport failures become
    NetworkError. Form values (a dict or a list of pairs) and `data` (raw bytes) may be secrets:
    they are never logged. `cookies`: a http.cookiejar.CookieJar to keep and send cookies in.
    follow_redirects=False: a redirect comes back as a Response instead of being followed."""
    hdrs = {"User-Agent": "credproc", "Accept": "*/*"}
    hdrs.update(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        ctx = ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"ca_bundle {ca_bundle!r} is not a usable PEM CA file: {getattr(e, 'strerror', None) or e}") from None
    handlers = [urllib.request.HTTPSHandler(context=ctx), _SafeRedirect() if follow_redirects else _NoRedirect()]
    if cookies is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(cookies))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return Response(resp.status, resp.headers, resp.read(), resp.geturl())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read(), url)
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise NetworkError(f"TLS certificate of {what} ({url}) could not be verified: {reason.verify_message}",
                               hint="set ca_bundle to your organisation's CA certificate file") from None
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise NetworkError(f"{what} at {url} did not answer within {timeout} s") from None
        detail = getattr(reason, "strerror", None) or str(reason)
        raise NetworkError(f"cannot reach {what} at {url}: {detail}", hint="check the URL, the network and any proxy") from None
    except (socket.timeout, TimeoutError):
        raise NetworkError(f"{what} at {url} did not answer within {timeout} s") from None
    except ssl.SSLError as e:
        raise NetworkError(f"TLS error talking to {what} at {url}: {e.reason}") from None
    except OSError as e:
        raise NetworkError(f"cannot reach {what} at {url}: {e.strerror or e}") from None
    except http.client.HTTPException as e:  # a garbled answer: a proxy, a captive portal
        raise NetworkError(f"{what} at {url} sent a malformed HTTP answer ({type(e).__name__})",
                           hint="check any proxy between you and it") from None
