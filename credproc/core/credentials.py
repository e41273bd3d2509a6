"""The Credentials value type and the credential_process document.

See ../shared/reference/consumers.md: Version is the integer 1, Expiration is UTC with a Z and
whole seconds, AccountId when known, nothing else on stdout.
"""

import json
import time

from .cache import MIN_REMAINING  # noqa: F401 (defined beside the cache, which the cache-hit path imports)


def format_expiration(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def parse_expiration(value):
    """Epoch seconds (rounded down) from a datetime (botocore), or an ISO-8601 string with or
    without fractional seconds (moto sends microseconds) and with Z or an offset."""
    if isinstance(value, (int, float)):
        return int(value)
    import calendar  # with datetime ~2 ms: here, for the responses that need them, not every import
    import datetime as _dt

    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return int(value.timestamp() // 1)
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:  # fromisoformat before 3.11 accepts only 3 or 6 fractional digits
        head, _, rest = text.partition(".")
        n = len(rest) - len(rest.lstrip("0123456789"))
        text = head + rest[n:]
    parsed = _dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return calendar.timegm(parsed.utctimetuple())


class Credentials:
    __slots__ = ("access_key_id", "secret_access_key", "session_token", "expiration", "account_id")

    def __init__(self, access_key_id, secret_access_key, session_token=None, expiration=None, account_id=None):
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expiration = None if expiration is None else int(expiration)
        self.account_id = account_id

    def __repr__(self):  # never the secret, nor the token
        return f"Credentials(access_key_id={mask(self.access_key_id)!r}, expiration={self.expiration!r}, account_id={self.account_id!r})"

    def __eq__(self, other):
        return isinstance(other, Credentials) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def remaining(self, now):
        return None if self.expiration is None else self.expiration - now

    def to_process_dict(self):
        doc = {"Version": 1, "AccessKeyId": self.access_key_id, "SecretAccessKey": self.secret_access_key}
        if self.session_token:
            doc["SessionToken"] = self.session_token
        if self.expiration is not None:
            doc["Expiration"] = format_expiration(self.expiration)
        if self.account_id:
            doc["AccountId"] = self.account_id
        return doc

    def to_process_json(self):
        return json.dumps(self.to_process_dict(), separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_process_json(cls, data):
        doc = json.loads(data)
        if doc.get("Version") != 1 or not doc.get("AccessKeyId") or not doc.get("SecretAccessKey"):
            raise ValueError("not a credential_process document")
        exp = doc.get("Expiration")
        return cls(doc["AccessKeyId"], doc["SecretAccessKey"], doc.get("SessionToken"),
                   parse_expiration(exp) if exp else None, doc.get("AccountId"))

    @classmethod
    def from_sts(cls, creds, account_id=None):
        """From an STS `Credentials` structure (botocore parses Expiration to a datetime)."""
        return cls(creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken"),
                   parse_expiration(creds["Expiration"]), account_id)


def mask(access_key_id):
    """AKIA…WXYZ: enough to recognise a key in the IAM console, not to use it (key ids are not
    secret, but there is no reason to print one whole)."""
    if not access_key_id:
        return "<none>"
    if len(access_key_id) <= 8:
        return "…"
    return f"{access_key_id[:4]}…{access_key_id[-4:]}"


def account_from_arn(arn):
    parts = (arn or "").split(":")
    if len(parts) >= 6 and parts[4].isdigit():
        return parts[4]
    return None
