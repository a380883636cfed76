"""TokenVerifier and Grant: what a token grants, on an injected clock, without sockets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.auth import (
    Grant,
    OpenAccess,
    TokenRefused,
    TokenVerifier,
    jwks_keys,
    public_key,
    secret_key,
)
from tests.support.tokens import AUDIENCE, SECRET, token

NOW = 1_800_000_000.0


def verifier(keys: object = None, **kwargs: object) -> TokenVerifier:
    options: dict[str, object] = {"audience": AUDIENCE, "wall_clock": lambda: NOW, **kwargs}
    return TokenVerifier(keys or secret_key(SECRET), **options)  # type: ignore[arg-type]


def refusal(check: TokenVerifier, text: str) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        check.verify(text)
    return caught.value


def test_a_valid_token_grants_its_channels_until_exp() -> None:
    grant = verifier().verify(token(now=NOW, ttl=60, channels=["web-1/*"], sub="ana"))
    assert grant.channels == ("web-1/*",)
    assert grant.subject == "ana"
    assert not grant.expired(NOW + 60)
    assert grant.expired(NOW + 65)  # exp plus the 5 s leeway


def test_a_token_without_a_channels_claim_may_read_every_channel() -> None:
    grant = verifier().verify(token(now=NOW))
    assert grant.channels is None and grant.allows("any/thing")


def test_channel_globs_match_whole_names_and_star_crosses_the_slash() -> None:
    grant = Grant(channels=("web-1/*", "*/checkout"))
    assert grant.allows("web-1/host") and grant.allows("db/checkout")
    assert not grant.allows("web-2/host") and not grant.allows("db/checkout-2")
    assert Grant(channels=()).allows("web-1/host") is False


@pytest.mark.parametrize(
    ("text", "reason", "retry"),
    [
        ("", "missing_token", False),
        ("not-a-jwt", "malformed", False),
        (token(b"another-secret-of-at-least-32-bytes", now=NOW), "bad_signature", False),
        (token(now=NOW - 3600, ttl=60), "expired", True),
        (token(now=NOW, aud="someone-else"), "wrong_audience", False),
        (token(now=NOW, aud=None), "missing_claim", False),
        (token(now=NOW, nbf=NOW + 600), "not_yet_valid", False),
        (token(now=NOW, channels="web-1/*"), "malformed", False),
        (jwt.encode({"aud": AUDIENCE}, SECRET, "HS256"), "missing_claim", False),
    ],
    ids=[
        "empty",
        "malformed",
        "bad-signature",
        "expired",
        "wrong-aud",
        "no-aud",
        "nbf-ahead",
        "channels-not-a-list",
        "no-exp",
    ],
)
def test_refusals_name_their_reason_and_only_expiry_is_worth_a_retry(
    text: str, reason: str, retry: bool
) -> None:
    refused = refusal(verifier(), text)
    assert (refused.reason, refused.retry) == (reason, retry)


def test_the_issuer_is_checked_when_configured() -> None:
    check = verifier(issuer="https://auth.example.com")
    assert check.verify(token(now=NOW, iss="https://auth.example.com")).channels is None
    assert refusal(check, token(now=NOW, iss="https://evil.example.com")).reason == "wrong_issuer"


def test_the_key_decides_the_algorithm_not_the_token_header() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    check = verifier(public_key(pem))
    claims = {"aud": AUDIENCE, "exp": NOW + 60}
    assert check.verify(jwt.encode(claims, private, "RS256")).channels is None
    # HS256 signed with the public key's bytes as a secret: the classic confusion attack.
    forged = _hs256_with_raw_key(claims, pem)  # PyJWT itself refuses to sign this
    assert refusal(check, forged).reason == "bad_signature"


def _hs256_with_raw_key(claims: dict[str, object], key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def test_es256_public_key_and_jwks_by_kid() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"aud": AUDIENCE, "exp": NOW + 60, "channels": ["a/*"]}
    assert verifier(public_key(pem)).verify(jwt.encode(claims, private, "ES256")).channels == (
        "a/*",
    )
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    keys = jwks_keys(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256"}]}))
    check = verifier(keys)
    signed = jwt.encode(claims, private, "ES256", headers={"kid": "k1"})
    assert check.verify(signed).channels == ("a/*",)
    other = jwt.encode(claims, private, "ES256", headers={"kid": "k2"})
    assert refusal(check, other).reason == "unknown_key"


def test_a_short_hs256_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        secret_key(b"short")


def test_open_access_needs_no_token_and_grants_everything() -> None:
    assert OpenAccess.required is False
    assert OpenAccess().verify("").allows("any/channel")
