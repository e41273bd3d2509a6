"""Which URLs credproc talks to: https, or plain http only to a loopback address (the tests' local
peers). Apart from http.py so that checking a config's URLs does not import the HTTP client
(http.client, ssl, email...: ~40 ms that `status` and every refresh's config check paid)."""

import re

from .errors import ConfigError

# The common case, decided without urllib.parse (~3 ms with the ipaddress module it imports): a
# plain https URL with a lower-case DNS name or IPv4 address as its host, an optional port, and a
# path of printable ASCII. urlsplit gives every such URL the scheme "https" and a non-empty
# hostname, so this only ever accepts what the full check below accepts; anything else (userinfo,
# brackets, upper case, http, spaces...) goes through urlsplit.
_PLAIN_HTTPS = re.compile(r"https://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?(?:/[!-~]*)?\Z")


def is_loopback(host):
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url, key):
    """ConfigError unless url is https, or http to a loopback address."""
    if _PLAIN_HTTPS.match(url):
        return
    import urllib.parse

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
