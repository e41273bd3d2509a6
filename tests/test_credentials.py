import datetime as dt
import json

import pytest

from credproc.core.credentials import Credentials, format_expiration, parse_expiration

T = 1795254896  # 2026-11-21T09:54:56Z


@pytest.mark.parametrize("value", [
    "2026-11-21T09:54:56Z", "2026-11-21T09:54:56.843493Z", "2026-11-21T09:54:56.8Z", "2026-11-21T10:54:56+01:00",
    "2026-11-21T09:54:56.999999999Z", dt.datetime(2026, 11, 21, 9, 54, 56, 843493, tzinfo=dt.timezone.utc),
    "2026-11-21 09:54:56.843493+00:00",
])
def test_expirations_parse_to_whole_seconds_rounded_down(value):
    assert parse_expiration(value) == T


def test_document_is_what_every_sdk_accepts():
    doc = json.loads(Credentials("ASIA1", "s3cr3t", "tok", T + 0.9, "111111111111").to_process_json())
    assert doc == {"Version": 1, "AccessKeyId": "ASIA1", "SecretAccessKey": "s3cr3t", "SessionToken": "tok",
                   "Expiration": "2026-11-21T09:54:56Z", "AccountId": "111111111111"}
    assert type(doc["Version"]) is int
    assert format_expiration(T) == "2026-11-21T09:54:56Z"


def test_round_trip():
    c = Credentials("ASIA1", "s", "t", T, None)
    assert Credentials.from_process_json(c.to_process_json()) == c


def test_repr_hides_the_secrets():
    text = repr(Credentials("ASIAABCDEFGHIJKL", "very-secret", "very-token", T))
    assert "very-secret" not in text and "very-token" not in text and "ASIAABCDEFGHIJKL" not in text
