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


# What a credential_process helper may print (the whole document; a session token is ~1-4 KB).
MAX_PROCESS_OUTPUT = 64 * 1024
_KEY_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _printable_ascii(value):
    return all(" " < ch < "\x7f" for ch in value)


def parse_process_document(data):
    """Credentials from a credential_process helper's stdout, checked as strictly as the consumers
    check ours (../shared/reference/consumers.md): one JSON object, `Version` the integer 1,
    `AccessKeyId` and `SecretAccessKey` non-empty, `SessionToken` optional, `Expiration` RFC 3339
    with a zone (absent: never expires), `AccountId` 12 digits when present; other keys ignored.
    Raises ValueError whose text names what is wrong and never quotes a value (the document holds
    the secret)."""
    if len(data) > MAX_PROCESS_OUTPUT:
        raise ValueError(f"more than {MAX_PROCESS_OUTPUT // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    if not text.strip():
        raise ValueError("nothing")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("not a JSON document (stdout must hold the document and nothing else)") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    version = doc.get("Version")
    if type(version) is not int or version != 1:
        raise ValueError("no Version 1 (the JSON integer 1)")
    fields = {}
    for name in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "AccountId"):
        value = doc.get(name)
        if value is None and name not in ("AccessKeyId", "SecretAccessKey"):
            continue
        if not isinstance(value, str) or not value:
            raise ValueError(f"no {name}" if value is None else f"{name} is not a non-empty string")
        if not _printable_ascii(value):
            raise ValueError(f"{name} holds characters no AWS credential has (spaces, control characters or "
                             "non-ASCII)")
        fields[name] = value
    key_id = fields["AccessKeyId"]
    if not (16 <= len(key_id) <= 128 and set(key_id) <= _KEY_ID_CHARS):
        raise ValueError("AccessKeyId is not an access key id (16-128 capital letters and digits)")
    if len(fields["SecretAccessKey"]) > 1024 or len(fields.get("SessionToken", "")) > 16384:
        raise ValueError("SecretAccessKey or SessionToken is implausibly long")
    account = fields.get("AccountId")
    if account is not None and not (len(account) == 12 and account.isdigit()):
        raise ValueError("AccountId is not 12 digits")
    expiration = None
    if "Expiration" in fields:
        raw = fields["Expiration"]
        if len(raw) > 40 or not (raw.endswith(("Z", "z")) or raw[-6:-5] in ("+", "-") and raw[-3:-2] == ":"):
            raise ValueError("Expiration is not an RFC 3339 time with a zone (e.g. 2026-11-21T12:34:56Z)")
        try:
            expiration = parse_expiration(raw)
        except (ValueError, OverflowError):
            raise ValueError("Expiration is not an RFC 3339 time with a zone (e.g. 2026-11-21T12:34:56Z)") from None
    return Credentials(key_id, fields["SecretAccessKey"], fields.get("SessionToken"), expiration, account)
