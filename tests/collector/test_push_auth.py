"""Push tokens: which calls are admitted and which sources each may write (no sockets)."""

from __future__ import annotations

import hashlib

import pytest

from collector.errors import PermissionDenied, Unauthenticated
from collector.push_auth import Grant, PushAccess, TokenFileError

CHECKOUT = "checkout-token-0123456789"
WEB = "web-token-abcdefghijklmn"
WEB_DIGEST = hashlib.sha256(WEB.encode()).hexdigest()
FILE = f"""
# token                     sources
{CHECKOUT}   checkout,checkout-*   # the checkout service
sha256:{WEB_DIGEST} web-?
"""


@pytest.fixture
def access() -> PushAccess:
    return PushAccess.parse(FILE, host_source="box1")


def test_a_known_bearer_token_is_admitted_with_its_line_and_sources(access: PushAccess) -> None:
    assert access.admit(f"Bearer {CHECKOUT}") == Grant(3, ("checkout", "checkout-*"))
    assert access.admit(f"bearer  {CHECKOUT} ") == Grant(3, ("checkout", "checkout-*"))


def test_a_token_given_by_its_sha256_digest_is_admitted(access: PushAccess) -> None:
    assert access.admit(f"Bearer {WEB}") == Grant(4, ("web-?",))
    with pytest.raises(Unauthenticated):
        access.admit(f"Bearer sha256:{WEB_DIGEST}")  # the digest itself is no token


@pytest.mark.parametrize(
    ("authorization", "problem"),
    [
        (None, "missing 'authorization: Bearer <token>' metadata"),
        (CHECKOUT, "must be 'Bearer <token>'"),
        (f"Basic {CHECKOUT}", "must be 'Bearer <token>'"),
        ("Bearer ", "must be 'Bearer <token>'"),
        ("Bearer checkout-token-012345678", "unknown push token"),
    ],
)
def test_a_missing_malformed_or_unknown_token_is_unauthenticated(
    access: PushAccess, authorization: str | None, problem: str
) -> None:
    with pytest.raises(Unauthenticated, match=problem.replace("(", r"\(")) as caught:
        access.admit(authorization)
    assert CHECKOUT not in str(caught.value)


def test_a_token_pushes_only_the_sources_its_globs_match(access: PushAccess) -> None:
    grant = access.admit(f"Bearer {CHECKOUT}")
    access.check(grant, "checkout")
    access.check(grant, "checkout-eu")
    with pytest.raises(PermissionDenied) as caught:
        access.check(grant, "web-1")
    message = str(caught.value)
    assert "'web-1'" in message and "line 3" in message
    assert CHECKOUT not in message
    web = access.admit(f"Bearer {WEB}")
    access.check(web, "web-1")
    with pytest.raises(PermissionDenied):
        access.check(web, "web-12")
    with pytest.raises(PermissionDenied):
        access.check(web, "Web-1")  # globs are case-sensitive


def test_no_token_may_push_the_host_source_even_with_a_match_all_glob() -> None:
    access = PushAccess.parse(f"{CHECKOUT} *\n", host_source="box1")
    grant = access.admit(f"Bearer {CHECKOUT}")
    access.check(grant, "anything")
    with pytest.raises(PermissionDenied, match="'box1' is the collector's host source"):
        access.check(grant, "box1")


def test_without_a_tokens_file_every_call_is_admitted() -> None:
    access = PushAccess.open()
    grant = access.admit(None)
    assert grant is None
    access.check(grant, "anything")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no tokens in it"),
        ("# only a comment\n", "no tokens in it"),
        (f"{CHECKOUT}\n", "line 1: expected 'TOKEN SOURCE-GLOB"),
        (f"{CHECKOUT} a b\n", "line 1: expected 'TOKEN SOURCE-GLOB"),
        (f"\n{CHECKOUT} ,\n", "line 2: no source globs"),
        ("short-token a\n", "line 1: a token needs at least 16 characters"),
        ("sha256:abc a\n", "line 1: sha256: needs 64 hex digits"),
        (f"{CHECKOUT} a\n{CHECKOUT} b\n", "line 2: the same token as line 1"),
        (f"{WEB} a\nsha256:{WEB_DIGEST} b\n", "line 2: the same token as line 1"),
    ],
)
def test_a_bad_tokens_file_names_the_line(text: str, problem: str) -> None:
    with pytest.raises(TokenFileError, match=problem) as caught:
        PushAccess.parse(text, host_source="box1")
    assert CHECKOUT not in str(caught.value) and WEB not in str(caught.value)
