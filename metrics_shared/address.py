"""A listening or dialling address, and its HOST:PORT parser."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass

__all__ = ["BRIDGE_ADDRESS", "COLLECTOR_ADDRESS", "Address", "is_loopback", "parse_address"]


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps a server on this machine: "localhost", 127.0.0.0/8
    or ::1. Every other host is exposed, "0.0.0.0", "::" and "" (all interfaces) and any
    other name included."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


COLLECTOR_ADDRESS = Address("127.0.0.1", 50051)
"""Where a collector listens by default, so where a bridge looks for one by default."""

BRIDGE_ADDRESS = Address("127.0.0.1", 8765)
"""Where a bridge listens by default, so where `metrics-bridge tail` looks for one."""


def parse_address(text: str) -> Address:
    """HOST:PORT, [IPv6]:PORT; port 0 picks a free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.removeprefix("[").removesuffix("]")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number in {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 in {text!r}")
    return Address(host, number)
