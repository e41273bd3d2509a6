"""ID token validation, before anything goes to STS: every forgery is rejected with a reason."""

import pytest

from credproc.core.store import EncryptedFileCache
from credproc.sources.oidc.protocol import InvalidToken, Issuer
from tests.fake_issuer import FORGERIES, FakeIssuer


@pytest.fixture
def fake():
    f = FakeIssuer()
    yield f
    f.stop()


def issuer_for(fake, tmp_path):
    idp = {"name": "corp", "issuer": fake.url, "client_id": fake.client_id, "timeout": 5, "flow": "password"}
    return Issuer(idp, _store(tmp_path))


def _store(tmp_path):
    return EncryptedFileCache(str(tmp_path / "cache"), str(tmp_path / "data" / "key"))


def test_a_genuine_token_validates(fake, tmp_path):
    claims = issuer_for(fake, tmp_path).validate(fake.sign(fake.claims()))
    assert claims["sub"] == "alice" and claims["aws_roles"] == fake.roles


@pytest.mark.parametrize("forgery, reason", [
    ("other_key", "signature does not verify"),
    ("wrong_iss", "does not come from"),
    ("wrong_aud", "is not for client cli"),
    ("expired", "has expired"),
    ("alg_none", "uses algorithm 'none'"),
    ("hs256_public_key", "uses algorithm 'HS256'"),
    ("unknown_kid", "not in its JWKS"),
])
def test_forged_tokens_are_rejected(fake, tmp_path, forgery, reason):
    token = FORGERIES[forgery](fake, fake.claims())
    with pytest.raises(InvalidToken, match=reason):
        issuer_for(fake, tmp_path).validate(token)


def test_the_nonce_must_match(fake, tmp_path):
    token = fake.sign(fake.claims(nonce="n-1"))
    issuer = issuer_for(fake, tmp_path)
    assert issuer.validate(token, nonce="n-1")["nonce"] == "n-1"
    with pytest.raises(InvalidToken, match="nonce"):
        issuer.validate(token, nonce="n-2")


def test_key_rotation_refetches_the_jwks_once(fake, tmp_path):
    issuer = issuer_for(fake, tmp_path)
    issuer.validate(fake.sign(fake.claims()))  # JWKS cached with k1
    from tests.fake_issuer import new_rsa

    fake.key, fake.kid = new_rsa(), "k2"  # the issuer rotates
    fresh = Issuer(issuer.idp, _store(tmp_path))  # a later run, with the cached metadata
    assert fresh.validate(fake.sign(fake.claims()))["sub"] == "alice"


def test_several_audiences_need_azp(fake, tmp_path):
    issuer = issuer_for(fake, tmp_path)
    with pytest.raises(InvalidToken, match="azp"):
        issuer.validate(fake.sign(fake.claims(aud=["cli", "other"])))
    assert issuer.validate(fake.sign(fake.claims(aud=["cli", "other"], azp="cli")))["azp"] == "cli"


def test_a_discovery_document_naming_another_issuer_is_refused(fake, tmp_path):
    from credproc.core.errors import ServiceError

    fake.discovery = lambda: {"issuer": "https://evil.example.com", "token_endpoint": fake.url + "/token",
                              "jwks_uri": fake.url + "/jwks"}
    with pytest.raises(ServiceError, match="names another issuer"):
        issuer_for(fake, tmp_path).metadata()
