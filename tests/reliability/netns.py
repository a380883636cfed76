"""A network namespace for one test: its own loopback, nftables rules and tc qdiscs.

Servers run in it with `ip netns exec`; the test's own clients run in it on a
thread that joined it with setns(2) (network namespaces are per thread), so
everything stays on the namespace's loopback and the host's network is never
touched. `Namespace.create()` raises `Unavailable` (the test skips) when the
tools are missing or namespaces are not permitted here.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Namespace", "Unavailable"]

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class Unavailable(Exception):
    """Why network namespaces cannot be used here."""


class Namespace:
    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def create(cls) -> Namespace:
        for tool in ("ip", "nft", "tc"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool} is not installed (make net-deps)")
        name = f"mb-{uuid.uuid4().hex[:8]}"
        made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if made.returncode != 0:
            raise Unavailable(f"cannot create a network namespace: {made.stderr.strip()}")
        namespace = cls(name)
        try:
            # A 1500-byte MTU, so that tc's token bucket sees wire-sized packets.
            namespace.run_command("ip", "link", "set", "lo", "mtu", "1500", "up")
        except subprocess.CalledProcessError as exc:
            namespace.delete()
            raise Unavailable(f"cannot configure the namespace: {exc.stderr}") from None
        return namespace

    def link(self, other: Namespace, address: str, other_address: str) -> str:
        """A veth pair from this namespace to `other` (addresses like 10.200.0.1/30);
        returns the name of this side's interface."""
        mine, theirs = f"v{self.name[-6:]}", f"v{other.name[-6:]}"
        subprocess.run(
            ["ip", "link", "add", mine, "netns", self.name, "type", "veth",
             "peer", "name", theirs, "netns", other.name],
            check=True, capture_output=True,
        )  # fmt: skip
        for ns, device, cidr in ((self, mine, address), (other, theirs, other_address)):
            ns.run_command("ip", "addr", "add", cidr, "dev", device)
            ns.run_command("ip", "link", "set", device, "up")
        return mine

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def prefix(self) -> list[str]:
        """Put this in front of a command to run it in the namespace."""
        return ["ip", "netns", "exec", self.name]

    def run_command(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*self.prefix(), *args], input=stdin, capture_output=True, text=True, check=True
        )
        return done.stdout

    def nft(self, script: str) -> None:
        self.run_command("nft", "-f", "-", stdin=script)

    def drop_port(self, table: str, port: int) -> None:
        """Drop every TCP packet to or from `port` on the namespace's loopback."""
        match = f"tcp sport {port} drop; tcp dport {port} drop;"
        self.nft(
            f"table inet {table} {{\n"
            f"  chain input {{ type filter hook input priority 0; {match} }}\n"
            f"  chain output {{ type filter hook output priority 0; {match} }}\n"
            "}\n"
        )

    def delete_table(self, table: str) -> None:
        self.run_command("nft", "delete", "table", "inet", table)

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """Run `asyncio.run(main())` on a thread inside the namespace; return its result."""
        result: list[T] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                finally:
                    os.close(fd)
                result.append(asyncio.run(main()))  # type: ignore[arg-type]
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]
