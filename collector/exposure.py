"""Whether the collector may start on the addresses it was given. Sans-I/O.

Rules (secure by default once exposed, as the bridge's --allow-anonymous):
- Listening on loopback only (`metrics_shared.address.is_loopback`) needs nothing.
- A listener on any other address (0.0.0.0 and :: included) needs
  * TLS (--tls-cert/--tls-key): metrics, and tokens, cross the network;
  * client certificates (--client-ca): Subscribe, ListSources and GetSnapshot
    carry no token, mTLS is what keeps readers (bridges) to the trusted ones;
  * --push-tokens or --client-ca: someone must decide who may push.
- Missing any of these, the collector refuses to start and says what is
  missing, unless --allow-insecure is given; then it starts and logs the same
  as a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from metrics_shared.address import Address, is_loopback

__all__ = ["Exposure", "exposure"]


@dataclass(frozen=True, slots=True)
class Exposure:
    exposed: tuple[Address, ...]
    """Listeners not on loopback."""
    gaps: tuple[str, ...]
    """What protection they lack; empty when the collector is safe to start."""

    def describe(self) -> str:
        where = ", ".join(str(a) for a in self.exposed)
        return f"listening on {where} (not loopback) {'; '.join(self.gaps)}"


def exposure(
    listeners: Sequence[Address], *, tls: bool, client_ca: bool, push_tokens: bool
) -> Exposure:
    exposed = tuple(a for a in listeners if not is_loopback(a.host))
    gaps: list[str] = []
    if exposed:
        if not tls:
            gaps.append("without TLS (--tls-cert, --tls-key): metrics and tokens travel in clear")
        if not client_ca:
            gaps.append(
                "without client certificates (--client-ca): anyone who reaches the port can "
                "Subscribe to every source"
            )
        if not (push_tokens or client_ca):
            gaps.append("without --push-tokens or --client-ca: anyone can push any source")
    return Exposure(exposed, tuple(gaps))
