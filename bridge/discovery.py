"""Collectors found through DNS: one name, every address it resolves to. No I/O.

`--collector dns:///HOST:PORT` names a set of collectors rather than one, e.g.
a Kubernetes headless service whose name resolves to one address per ready pod.

Rules:
- Every address HOST resolves to is followed as a collector of its own, named
  by what it reports (as a collector given without NAME is).
- HOST is resolved again every `--collector-resolve-interval` seconds. An
  address that appears is followed from the next answer on.
- An address missing from `absent_rounds` answers in a row (default 2, so a
  single partial answer removes nothing) is dropped: its upstream stops and its
  channels are removed, so its clients get Status REMOVED, as for a source
  that left its collector. A name it had claimed is released.
- A failed lookup or an empty answer changes nothing: a DNS outage must not
  remove collectors that are still there. The caller logs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from metrics_shared.address import Address

__all__ = ["DNS_SCHEME", "DnsChanges", "DnsCollectors", "split_dns_target"]

DNS_SCHEME = "dns:///"


def split_dns_target(text: str) -> str | None:
    """HOST:PORT of a `dns:///HOST:PORT` target, or None for a plain address."""
    return text[len(DNS_SCHEME) :] if text.startswith(DNS_SCHEME) else None


@dataclass(frozen=True, slots=True)
class DnsChanges:
    added: tuple[Address, ...] = ()
    removed: tuple[Address, ...] = ()


class DnsCollectors:
    """The addresses followed for one `dns:///HOST:PORT` target."""

    def __init__(self, target: Address, absent_rounds: int = 2) -> None:
        if absent_rounds < 1:
            raise ValueError("absent_rounds must be at least 1")
        self.target = target
        self.absent_rounds = absent_rounds
        self.following: dict[Address, int] = {}
        """Followed addresses, each with the answers in a row that lacked it."""

    def answer(self, hosts: Iterable[str]) -> DnsChanges:
        """Take one lookup's answer (IP addresses); what to start and what to stop."""
        current = {Address(host, self.target.port) for host in hosts}
        if not current:
            return DnsChanges()
        added = tuple(sorted(current - self.following.keys(), key=str))
        removed: list[Address] = []
        for address in list(self.following):
            if address in current:
                self.following[address] = 0
                continue
            self.following[address] += 1
            if self.following[address] >= self.absent_rounds:
                del self.following[address]
                removed.append(address)
        for address in added:
            self.following[address] = 0
        return DnsChanges(added, tuple(sorted(removed, key=str)))
