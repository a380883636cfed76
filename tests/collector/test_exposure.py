"""A collector listening beyond loopback needs TLS, client certificates and push control."""

from __future__ import annotations

from collector.exposure import exposure
from metrics_shared.address import Address

LOOPBACK = Address("127.0.0.1", 50051)
ANY = Address("0.0.0.0", 50051)
OTLP = Address("10.0.0.5", 4317)


def test_loopback_needs_nothing() -> None:
    found = exposure(
        [LOOPBACK, Address("::1", 4317)], tls=False, client_ca=False, push_tokens=False
    )
    assert found.exposed == () and found.gaps == ()


def test_an_exposed_listener_without_protection_names_every_gap() -> None:
    found = exposure([LOOPBACK, OTLP], tls=False, client_ca=False, push_tokens=False)
    assert found.exposed == (OTLP,)
    text = found.describe()
    assert text.startswith("listening on 10.0.0.5:4317 (not loopback) without TLS")
    assert "--client-ca" in text and "--push-tokens" in text


def test_tls_with_client_certificates_is_enough() -> None:
    assert exposure([ANY], tls=True, client_ca=True, push_tokens=False).gaps == ()


def test_tls_and_tokens_still_leave_reading_open() -> None:
    gaps = exposure([ANY], tls=True, client_ca=False, push_tokens=True).gaps
    assert len(gaps) == 1 and "anyone who reaches the port can Subscribe" in gaps[0]
