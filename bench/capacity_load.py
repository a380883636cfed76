"""The capacity sweep's load process: lean WebSocket clients, grown and shrunk on command.

Each connection subscribes to the same `--channels` and counts what arrives:
updates, and resync snapshots (a snapshot after the ones that answer the
subscribe: the bridge skipped updates for it). Every socket is read with
recvmsg and stamped with the kernel's receive time (SO_TIMESTAMPNS on Linux),
so this process's own backlog is not counted as the server's latency. Sockets
are bound to the `--source-addresses` in turn (127.0.0.2, 127.0.0.3, ...), so
the ephemeral ports of one source address are not the limit.

Rules:
- A connection is synced once it has a snapshot of every channel; connecting
  fails after `--sync-timeout` and is tried three times.
- About `--latency-clients` connections, spread evenly over the pool, decode
  updates in a window: receive time minus the update's `bench_publish_time_ms`
  gauge (the series id learned from any connection's snapshot of the channel).
- Others only read frame headers and the body's tag: cheap enough that one
  process serves thousands of connections. Every socket sits in one epoll set
  that the asyncio loop watches as a whole and reads into one shared buffer
  (about 7 us per small frame here, half of an asyncio Protocol's cost).
- A read's timestamp is its last segment's: decoding connections read at most
  512 bytes at a time, so a backlog in this process is not stamped late.

Driven over stdin/stdout by bench.capacity, one JSON object per line:
  stdin  "target N"      open or close connections until N are open;
         stdout {"event": "target", "clients": open, "failed": ..., "connect_s": ...}
  stdin  "window T0 T1"  count what is received between wall-clock times T0 and T1
  stdin  "result"        stdout {"event": "result", ...} for the last window, once
         every decoding connection has read what it received until T1
         (`catch_up_s`: how long that took, the process's own lag)
  stdin  "exit"          close everything and exit
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import select
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.load import PUBLISH_SERIES, client_frame, handshake_request
from metrics_bridge.v1 import bridge_pb2

__all__ = ["CapacityClient", "Tally", "body_tag"]

SO_TIMESTAMPNS = 35  # Linux; Python's socket module does not name it
IP_BIND_ADDRESS_NO_PORT = 24  # Linux: pick the port at connect, per destination
_TIMESTAMP_SPACE = socket.CMSG_SPACE(16)
KERNEL_TIMESTAMPS = sys.platform == "linux"
# Every socket reads into this one buffer: recv(n) would allocate n bytes per call, which
# costs more than the rest of a small frame's handling together.
_READ_BUFFER = bytearray(65536)
_READ_VIEW = memoryview(_READ_BUFFER)
# A read's kernel timestamp is that of the last segment it takes: a decoding connection
# that fell behind reads a little at a time, so a backlog is not stamped as received late.
DECODER_READ = 512
SNAPSHOT_TAG = 0x52  # ServerMessage field 10, length-delimited
UPDATE_TAG = 0x5A  # field 11


def body_tag(buf: bytes | bytearray, start: int, end: int) -> int:
    """The tag byte of a ServerMessage's body, past its optional `channel` field (1)."""
    if end - start < 2:
        return -1
    if buf[start] != 0x0A:
        return buf[start]
    length = buf[start + 1]
    if length & 0x80:  # a channel name of 128+ bytes: not one the bench uses
        return -1
    at = start + 2 + length
    return buf[at] if at < end else -1


@dataclass
class Tally:
    """What the connections of one process received in the current window."""

    channels: int = 1
    opens: float = 0.0
    closes: float = 0.0
    updates: int = 0
    resyncs: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    publish_ids: dict[str, int] = field(default_factory=dict)

    def inside(self, now: float) -> bool:
        return self.opens <= now < self.closes

    def start(self, opens: float, closes: float) -> None:
        self.opens, self.closes = opens, closes
        self.updates = self.resyncs = 0
        self.latencies_ms = []


class CapacityClient:
    """One connection's protocol, without its socket: bytes in, bytes to send out."""

    __slots__ = (
        "buffer",
        "decoder",
        "last_seen",
        "open",
        "request",
        "snapshots",
        "subscribe",
        "tally",
    )

    def __init__(self, tally: Tally, request: bytes, subscribe: bytes) -> None:
        self.tally = tally
        self.request = request
        self.subscribe = subscribe
        self.buffer = bytearray()
        self.open = False
        self.snapshots = 0
        self.decoder = False
        self.last_seen = 0.0

    @property
    def synced(self) -> bool:
        return self.snapshots >= self.tally.channels

    def feed(self, data: bytes | memoryview, now: float) -> list[bytes]:
        """Bytes received at wall-clock time `now`; returns the frames to send back."""
        self.last_seen = now
        self.buffer += data
        out: list[bytes] = []
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return out
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            if b" 101 " not in status + b" ":
                raise ConnectionError(status.decode("latin-1"))
            del self.buffer[: end + 4]
            self.open = True
            out.append(client_frame(0x2, self.subscribe))
        self._frames(now, out)
        return out

    def _frames(self, now: float, out: list[bytes]) -> None:
        buf = self.buffer
        size = len(buf)
        pos = 0
        tally = self.tally
        while size - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if size - pos < head + length:
                break
            opcode = buf[pos] & 0x0F
            start = pos + head
            pos = start + length
            if opcode == 0x2:
                tag = body_tag(buf, start, pos)
                if tag == UPDATE_TAG:
                    if tally.inside(now):
                        tally.updates += 1
                        if self.decoder:
                            self._latency(bytes(buf[start:pos]), now)
                elif tag == SNAPSHOT_TAG:
                    if not self.synced:
                        self._learn(bytes(buf[start:pos]))
                        self.snapshots += 1
                    elif tally.inside(now):
                        tally.resyncs += 1
            elif opcode == 0x9:
                out.append(client_frame(0xA, bytes(buf[start:pos])))
            elif opcode == 0x8:
                out.append(client_frame(0x8, bytes(buf[start : start + 2])))
        del buf[:pos]

    def _learn(self, payload: bytes) -> None:
        message = bridge_pb2.ServerMessage.FromString(payload)
        for series in message.snapshot.series:
            if series.name == PUBLISH_SERIES:
                self.tally.publish_ids[message.channel] = series.id

    def _latency(self, payload: bytes, now: float) -> None:
        message = bridge_pb2.ServerMessage.FromString(payload)
        wanted = self.tally.publish_ids.get(message.channel)
        values = message.update.values
        for series_id, number in zip(values.ids, values.numbers, strict=False):
            if series_id == wanted:
                self.tally.latencies_ms.append(now * 1000 - number)
                return


class Readers:
    """Sockets in one epoll set that the asyncio loop watches as a whole: one loop
    callback serves every readable socket (a loop callback per socket costs about as
    much again as reading it). Without epoll, each socket is the loop's reader."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.callbacks: dict[int, Callable[[], None]] = {}
        self.epoll = select.epoll() if hasattr(select, "epoll") else None
        if self.epoll is not None:
            loop.add_reader(self.epoll.fileno(), self._drain)

    def add(self, fd: int, callback: Callable[[], None]) -> None:
        if self.epoll is None:
            self.loop.add_reader(fd, callback)
            return
        self.callbacks[fd] = callback
        self.epoll.register(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        if self.epoll is None:
            self.loop.remove_reader(fd)
        elif self.callbacks.pop(fd, None) is not None:
            self.epoll.unregister(fd)

    def _drain(self) -> None:
        assert self.epoll is not None
        callbacks = self.callbacks
        for fd, _ in self.epoll.poll(0, 4096):
            callback = callbacks.get(fd)
            if callback is not None:
                callback()

    def close(self) -> None:
        if self.epoll is not None:
            self.loop.remove_reader(self.epoll.fileno())
            self.epoll.close()


class Connection:
    """A CapacityClient on a non-blocking socket read with recvmsg (kernel timestamps)."""

    def __init__(self, sock: socket.socket, client: CapacityClient, readers: Readers) -> None:
        self.sock = sock
        self.client = client
        self.readers = readers
        self.loop = asyncio.get_running_loop()
        self.synced: asyncio.Future[None] = self.loop.create_future()
        self.fd = sock.fileno()

    @classmethod
    async def open(
        cls, client: CapacityClient, readers: Readers, host: str, port: int, source: str | None
    ) -> Connection:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if KERNEL_TIMESTAMPS:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if source is not None:
                if sys.platform == "linux":
                    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((source, 0))
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError:
            sock.close()
            raise
        connection = cls(sock, client, readers)
        readers.add(connection.fd, connection._readable)
        connection.send(client.request)
        return connection

    def send(self, data: bytes) -> None:
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):
            self.loop.create_task(self.loop.sock_sendall(self.sock, data[sent:]))

    def _readable(self) -> None:
        try:
            size, ancillary, _, _ = self.sock.recvmsg_into(
                [_READ_VIEW[:DECODER_READ] if self.client.decoder else _READ_VIEW],
                _TIMESTAMP_SPACE,
            )
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            size, ancillary = 0, []
        if not size:
            self.close()
            return
        data = _READ_VIEW[:size]
        now = time.time()
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                seconds, nanoseconds = struct.unpack("qq", raw[:16])
                now = seconds + nanoseconds / 1e9
        try:
            replies = self.client.feed(data, now)
        except ConnectionError as exc:
            self.close(exc)
            return
        for reply in replies:
            self.send(reply)
        if self.client.synced and not self.synced.done():
            self.synced.set_result(None)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self, reason: Exception | None = None) -> None:
        if self.fd < 0:
            return
        self.readers.remove(self.fd)
        self.fd = -1
        self.sock.close()
        if not self.synced.done():
            self.synced.set_exception(reason or ConnectionError("closed before its snapshots"))
            self.synced.exception()  # a connect that gave up waiting has no one to read it


def queued(fd: int) -> int:
    """Bytes waiting in a socket's receive queue."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


class Pool:
    """The process's connections, grown and shrunk to a target."""

    def __init__(self, args: argparse.Namespace) -> None:
        parts = urlsplit(args.url)
        self.url = args.url
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        channels = args.channels.split(",")
        self.tally = Tally(channels=len(channels))
        self.subscribe = bridge_pb2.ClientMessage(
            subscribe=bridge_pb2.Subscribe(
                channels=[bridge_pb2.ChannelRequest(channel=c) for c in channels]
            )
        ).SerializeToString()
        self.sources = [a for a in args.source_addresses.split(",") if a] or [None]
        self.latency_clients = args.latency_clients
        self.concurrency = args.connect_concurrency
        self.sync_timeout = args.sync_timeout
        self.connections: list[Connection] = []
        self.opened = 0
        self.readers = Readers(asyncio.get_running_loop())

    async def _one(self, gate: asyncio.Semaphore) -> Connection | None:
        async with gate:
            for attempt in range(3):
                client = CapacityClient(
                    self.tally, handshake_request(self.url, False), self.subscribe
                )
                source = self.sources[self.opened % len(self.sources)]
                self.opened += 1
                connection: Connection | None = None
                try:
                    connection = await Connection.open(
                        client, self.readers, self.host, self.port, source
                    )
                    await asyncio.wait_for(asyncio.shield(connection.synced), self.sync_timeout)
                    return connection
                except (OSError, ConnectionError, TimeoutError):
                    if connection is not None:
                        connection.close()
                    await asyncio.sleep(0.05 * (attempt + 1))
            return None

    async def target(self, count: int) -> dict[str, object]:
        began = time.monotonic()
        self.connections = [c for c in self.connections if not c.closed]
        while len(self.connections) > count:
            self.connections.pop().close()
        gate = asyncio.Semaphore(self.concurrency)
        added = await asyncio.gather(
            *(self._one(gate) for _ in range(count - len(self.connections)))
        )
        self.connections += [c for c in added if c is not None]
        every = max(1, len(self.connections) // max(1, self.latency_clients))
        for index, connection in enumerate(self.connections):
            connection.client.decoder = self.latency_clients > 0 and index % every == 0
        return {
            "event": "target",
            "clients": len(self.connections),
            "failed": sum(1 for c in added if c is None),
            "connect_s": time.monotonic() - began,
        }

    def caught_up(self) -> bool:
        """Every decoding connection has read all it received until the window closed."""
        closes = self.tally.closes
        return all(
            c.client.last_seen >= closes or queued(c.fd) == 0
            for c in self.connections
            if c.client.decoder and not c.closed
        )

    async def result(self, within: float = 30.0) -> dict[str, object]:
        """The window's figures once caught up: a busy load process is late, not wrong."""
        began = time.monotonic()
        for _ in range(int(within / 0.02)):
            if self.caught_up():
                break
            await asyncio.sleep(0.02)
        tally = self.tally
        return {
            "event": "result",
            "catch_up_s": time.monotonic() - began,
            "seconds": tally.closes - tally.opens,
            "updates": tally.updates,
            "resyncs": tally.resyncs,
            "latencies_ms": tally.latencies_ms,
            "clients": len(self.connections),
            "open": sum(1 for c in self.connections if not c.closed),
        }

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.readers.close()


def emit(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> int:
    pool = Pool(args)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit({"event": "ready"})
    try:
        while line := (await reader.readline()).decode().strip():
            command, *words = line.split()
            if command == "target":
                emit(await pool.target(int(words[0])))
            elif command == "window":
                pool.tally.start(float(words[0]), float(words[1]))
            elif command == "result":
                emit(await pool.result())
            elif command == "exit":
                break
    finally:
        pool.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.capacity_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", required=True, help="ws://HOST:PORT/ of the bridge")
    parser.add_argument("--channels", required=True, help="channels, comma-separated")
    parser.add_argument(
        "--source-addresses", default="", help="local addresses to bind, comma-separated"
    )
    parser.add_argument("--latency-clients", type=int, default=100)
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--sync-timeout", type=float, default=30.0)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
