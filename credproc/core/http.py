"""A small HTTPS client on the standard library (no extra dependency, imported only on a miss).

TLS verification is always on. Plain http:// is refused except to a loopback address, which is
what the tests' local peers use.

A hostile or broken server cannot hold credproc (and the refresh lock) or its memory: `timeout`
bounds the whole request, connection to last byte (a watchdog shuts the socket down when it runs
out, so a server sending a byte every few seconds gets no further), and a body is read only up to
`max_bytes`.
"""

import http.client
import json
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request

from .errors import ConfigError, NetworkError, ServiceError
from .urls import check_url, is_loopback  # noqa: F401 (the sources use them as http.*)

MAX_BODY_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


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


class _Deadline:
    """Shuts down the sockets of a request's connections when its whole time is up: a blocked read
    returns at once, and the request fails as a timeout."""

    def __init__(self, seconds):
        self.expired = False
        self._socks = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def track(self, conn_class):
        """A connection class whose sockets are recorded as they connect (urllib drops the
        connection's own reference once the response has begun)."""
        def make(host, **kwargs):
            conn = conn_class(host, **kwargs)
            connect = conn.connect

            def tracked_connect():
                connect()
                self._socks.append(conn.sock)
                if self.expired:
                    shutdown_socket(conn.sock)

            conn.connect = tracked_connect
            return conn

        return make

    def _expire(self):
        self.expired = True
        for sock in self._socks:
            shutdown_socket(sock)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


def shutdown_socket(sock):
    """Make every blocked read on sock return, from another thread (the plain socket's shutdown:
    an SSL socket's own would touch its TLS state under the reader)."""
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError, ValueError):
        pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline):
        super().__init__()
        self.deadline = deadline

    def http_open(self, req):
        return self.do_open(self.deadline.track(http.client.HTTPConnection), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context, deadline):
        super().__init__(context=context)
        self.deadline = deadline
        self.ssl_context = context

    def https_open(self, req):
        return self.do_open(self.deadline.track(http.client.HTTPSConnection), req, context=self.ssl_context)


class BodyTooLarge(ServiceError):
    pass


def read_capped(resp, max_bytes, what, url):
    """The body, read in chunks and abandoned as soon as it passes max_bytes."""
    declared = resp.headers.get("Content-Length") if resp.headers is not None else None
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"{what} at {url} sent an answer larger than {max_bytes} bytes")
    chunks, size = [], 0
    while True:
        chunk = resp.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"{what} at {url} sent an answer larger than {max_bytes} bytes")
        chunks.append(chunk)


def request(method, url, *, form=None, data=None, headers=None, timeout=30, ca_bundle=None, what="the server",
            cookies=None, follow_redirects=True, max_bytes=MAX_BODY_BYTES):
    """Send a request; every HTTP status comes back as a Response; transport failures become
    NetworkError, an answer larger than max_bytes ServiceError. `timeout` bounds the whole
    request. Form values (a dict or a list of pairs) and `data` (raw bytes) may be secrets:
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
    deadline = _Deadline(timeout)
    handlers = [_HTTPHandler(deadline), _HTTPSHandler(ctx, deadline),
                _SafeRedirect() if follow_redirects else _NoRedirect()]
    if cookies is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(cookies))
    opener = urllib.request.build_opener(*handlers)
    try:
        with deadline:
            try:
                with opener.open(req, timeout=timeout) as resp:
                    answer = Response(resp.status, resp.headers, read_capped(resp, max_bytes, what, url), resp.geturl())
            except urllib.error.HTTPError as e:
                try:
                    answer = Response(e.code, e.headers, read_capped(e, max_bytes, what, url), url)
                finally:
                    e.close()
            if deadline.expired:  # the body ended because the socket was shut down
                raise TimeoutError
            return answer
    except BodyTooLarge:
        raise
    except Exception:
        if deadline.expired:  # whatever the shut-down socket made the read raise
            raise NetworkError(f"{what} at {url} did not answer within {timeout} s",
                               hint="the server is too slow or sends its answer too slowly") from None
        try:
            raise
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
