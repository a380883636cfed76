"""The benchmark's load client: thousands of lean WebSocket clients in one process.

A raw asyncio Protocol per connection (handshake, frame parsing, pongs) keeps
the load client from being the bottleneck; websockets' full client costs
several times more per frame. Each connection subscribes to one channel with a
`ClientMessage` (the baselines read the same message) and counts *deliveries*:
data frames, i.e. a Snapshot or Update for the bridge and the broadcast/raw
baselines, any text frame for the naive JSON baseline.

Driven over stdin/stdout by bench.run, one JSON object per line:
  stdout {"event": "ready", ...}  once every connection got its first delivery
  stdin  "window MODE T0 T1"  measure frames received between wall-clock times
         T0 and T1; MODE is count, latency or bytes
  stdin  "result"  stdout {"event": "result", ...} for the last window
  stdin  "stats"  stdout {"event": "stats", "deliveries": total so far}
  stdin  "exit"   closes every connection and exits
Windows are set by receive timestamps, not by when a command is read, so a
load process too busy to read stdin promptly still measures the right span.
In latency and bytes windows connections decode deliveries (inflating
permessage-deflate when negotiated), count update sizes and compare the pushed
`bench_publish_time_ms` gauge with the receive time (in updates, and in
snapshots received inside the window: resyncs, whose data is as old as the
gauge says), and with the data's `time_unix_ms` (the collector's stamp when
the pusher leaves it to the collector: the Push hop before it, collector and
server after it); `seq_advance` sums how far their positions moved (a merged
update or a resync covers many events in one delivery). Only every k-th
connection decodes, so at most --latency-clients connections pay for it; on
Linux those read with recvmsg and take the kernel's receive timestamp
(SO_TIMESTAMPNS), so the load process's own backlog does not count as latency.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from metrics_bridge.v1 import bridge_pb2, metrics_pb2

PUBLISH_SERIES = "bench_publish_time_ms"
_DATA_TAGS = (0x52, 0x5A)  # ServerMessage fields 10 (snapshot) and 11 (update), length-delimited
# Linux's SO_TIMESTAMPNS (Python's socket module does not name it): every recvmsg then
# carries the time the kernel received the data, whatever the load process was busy with.
SO_TIMESTAMPNS = 35
_TIMESTAMP_SPACE = socket.CMSG_SPACE(16)
KERNEL_TIMESTAMPS = sys.platform == "linux"
# A read's timestamp is that of the last segment it takes: small reads keep a backlog
# in this process's receive buffers from being stamped with the time it was read
# (up to 128 of them per wakeup, as much as one large read took before).
TIMED_READ_BYTES = 2048
TIMED_READS = 128


class Wire(Protocol):
    """What a LeanClient writes to: an asyncio transport or a TimestampedSocket."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


@dataclass
class Totals:
    mode: str | None = None
    opens: float = 0.0
    closes: float = 0.0
    deliveries: int = 0
    delivered_bytes: int = 0
    updates: int = 0
    update_bytes: int = 0
    all_deliveries: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    stamp_lags_ms: list[float] = field(default_factory=list)
    after_stamp_ms: list[float] = field(default_factory=list)
    resyncs_timed: int = 0
    seq_advance: int = 0
    max_latency_samples: int = 500_000

    def active(self, now: float) -> str | None:
        """The window's mode if `now` is inside it."""
        if self.mode is not None and self.opens <= now < self.closes:
            return self.mode
        return None


def _mask(payload: bytes) -> bytes:
    key = os.urandom(4)
    count = len(payload)
    repeated = (key * (count // 4 + 1))[:count]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return key + masked.to_bytes(count, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    count = len(payload)
    if count < 126:
        header = bytes([0x80 | opcode, 0x80 | count])
    elif count < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + count.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + count.to_bytes(8, "big")
    return header + (_mask(payload) if payload else os.urandom(4))


_READ_BYTES = 65536
_READ_INTO = memoryview(bytearray(_READ_BYTES))
"""One read buffer for every client of the process: asyncio calls them one at a
time, and each copies what it got before returning. A plain Protocol would be
handed a fresh 256 KiB bytes object per read (asyncio's read size), mmap'd
and unmapped each time."""


class LeanClient(asyncio.BufferedProtocol):
    def __init__(
        self, totals: Totals, request: bytes, subscribe: bytes, channel: str, decoder: bool
    ) -> None:
        self.totals = totals
        self.request = request
        self.subscribe = subscribe
        self.channel = channel
        self.decoder = decoder
        self.transport: Wire | None = None
        self.buffer = bytearray()
        self.open = False
        self.deflate = False
        self.reset_context = False
        self.window_bits = 15
        self.inflater: zlib._Decompress | None = None
        self.synced = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.publish_id: int | None = None
        self.last_seq: int | None = None
        self.negotiated = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.start(transport)

    def start(self, wire: Wire) -> None:
        self.transport = wire
        wire.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.synced.done():
            self.synced.set_exception(ConnectionError(f"closed before first delivery: {exc}"))

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_INTO

    def buffer_updated(self, nbytes: int) -> None:
        self.feed(_READ_INTO[:nbytes], time.time())

    def feed(self, data: bytes | memoryview, now: float) -> None:
        """Bytes received at wall-clock time `now`."""
        self.buffer += data
        if not self.open and not self._handshake():
            return
        self._frames(now)

    def _handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        lines = head.split("\r\n")
        if " 101 " not in lines[0] + " ":
            assert self.transport is not None
            self.transport.close()
            if not self.synced.done():
                self.synced.set_exception(ConnectionError(lines[0]))
            return False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                self.negotiated = value.strip()
                self._configure_deflate(value)
        self.open = True
        assert self.transport is not None
        self.transport.write(client_frame(0x2, self.subscribe))
        return True

    def _configure_deflate(self, header: str) -> None:
        params = [p.strip() for p in header.split(";")]
        if params[0] != "permessage-deflate":
            return
        self.deflate = True
        for param in params[1:]:
            key, _, value = param.partition("=")
            if key == "server_no_context_takeover":
                self.reset_context = True
            elif key == "server_max_window_bits" and value:
                self.window_bits = int(value.strip('"'))
        self.inflater = zlib.decompressobj(-self.window_bits)

    def _frames(self, now: float) -> None:
        buf = self.buffer
        pos = 0
        size = len(buf)
        totals = self.totals
        mode = totals.active(now)
        decode = self.decoder and mode != "count"
        while size - pos >= 2:
            first = buf[pos]
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
            start = pos + head
            pos = start + length
            opcode = first & 0x0F
            if opcode in (1, 2, 0):
                compressed = bool(first & 0x40)
                payload = None
                if compressed or decode or not self.synced.done():
                    payload = self._payload(buf[start:pos], compressed)
                    is_data = opcode == 1 or _is_data(payload)
                elif opcode == 1:
                    is_data = True
                else:
                    is_data = _is_data_at(buf, start, pos)
                if not is_data:
                    continue
                if not self.synced.done():
                    self.synced.set_result(None)
                totals.all_deliveries += 1
                if payload is not None and decode:
                    self._measure(payload, opcode, head + length, now, mode is not None)
                if mode is not None:
                    totals.deliveries += 1
                    totals.delivered_bytes += head + length
            elif opcode == 0x9:
                assert self.transport is not None
                self.transport.write(client_frame(0xA, bytes(buf[start:pos])))
            elif opcode == 0x8:
                assert self.transport is not None
                self.transport.write(client_frame(0x8, bytes(buf[start : start + 2])))
                self.transport.close()
        del buf[:pos]

    def _payload(self, data: bytearray, compressed: bool) -> bytes:
        if not compressed or self.inflater is None:
            return bytes(data)
        out = self.inflater.decompress(bytes(data) + b"\x00\x00\xff\xff")
        if self.reset_context:
            self.inflater = zlib.decompressobj(-self.window_bits)
        return out

    def _measure(self, payload: bytes, opcode: int, wire: int, now: float, record: bool) -> None:
        """Counts an update's wire bytes and, if it carries the publish time, its latency;
        a snapshot (a resync, inside a window) counts for latency, not for bytes."""
        totals = self.totals
        published: float | None = None
        stamp = 0
        if opcode == 1:
            message = json.loads(payload)
            if message.get("snapshot"):
                return
            published = next(
                (v["value"] for v in message["values"] if v["name"] == PUBLISH_SERIES), None
            )
        else:
            server = bridge_pb2.ServerMessage()
            server.ParseFromString(payload)
            body = server.WhichOneof("body")
            if body == "snapshot":
                data: metrics_pb2.Snapshot | metrics_pb2.Update = server.snapshot
                described = server.snapshot.series
            elif body == "update":
                data = server.update
                described = server.update.added
            else:
                return
            for series in described:
                if series.name == PUBLISH_SERIES:
                    self.publish_id = series.id
            if self.publish_id is not None:
                values = data.values
                for series_id, number in zip(values.ids, values.numbers, strict=False):
                    if series_id == self.publish_id:
                        published = number
            stamp = data.time_unix_ms
            if record and self.last_seq is not None and data.seq > self.last_seq:
                totals.seq_advance += data.seq - self.last_seq
            self.last_seq = data.seq
            if body == "snapshot":
                if record and published is not None:
                    totals.resyncs_timed += 1
                    self._time(now, published, stamp)
                return
        if not record:
            return
        totals.updates += 1
        totals.update_bytes += wire
        if published is not None:
            self._time(now, published, stamp)

    def _time(self, now: float, published: float, stamp: int) -> None:
        totals = self.totals
        if len(totals.latencies_ms) < totals.max_latency_samples:
            totals.latencies_ms.append(now * 1000 - published)
            if stamp:
                totals.stamp_lags_ms.append(stamp - published)
                totals.after_stamp_ms.append(now * 1000 - stamp)


class TimestampedSocket:
    """A client socket read with recvmsg, each read stamped with the kernel's receive time.

    Latency is measured on these connections only, so the load process's own
    queueing (thousands of sockets served one after another) is not counted as
    the server's delay.
    """

    def __init__(self, sock: socket.socket, client: LeanClient) -> None:
        self.sock = sock
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.fd = sock.fileno()
        self.loop.add_reader(self.fd, self._readable)

    @classmethod
    async def connect(cls, client: LeanClient, host: str, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError:
            sock.close()
            raise
        client.start(cls(sock, client))

    def write(self, data: bytes) -> None:
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.abort()
            return
        if sent < len(data):
            self.loop.create_task(self.loop.sock_sendall(self.sock, data[sent:]))

    def _readable(self) -> None:
        for _ in range(TIMED_READS):
            try:
                data, ancillary, _, _ = self.sock.recvmsg(TIMED_READ_BYTES, _TIMESTAMP_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, ancillary = b"", []
            if not data:
                self.abort()
                return
            now = time.time()
            for level, kind, raw in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", raw[:16])
                    now = seconds + nanoseconds / 1e9
            self.client.feed(data, now)
            if len(data) < TIMED_READ_BYTES or self.fd < 0:
                return

    def close(self) -> None:
        self.abort()

    def abort(self) -> None:
        if self.fd < 0:
            return
        self.loop.remove_reader(self.fd)
        self.fd = -1
        self.sock.close()
        self.client.connection_lost(None)


def _is_data_at(buf: bytearray, start: int, end: int) -> bool:
    if end - start < 3 or buf[start] != 0x0A:
        return end - start > 0 and buf[start] in _DATA_TAGS
    tag_at = start + 2 + buf[start + 1]
    return tag_at < end and buf[tag_at] in _DATA_TAGS


def _is_data(payload: bytes) -> bool:
    return _is_data_at(bytearray(payload[:160]), 0, min(len(payload), 160))


def handshake_request(url: str, deflate: bool) -> bytes:
    parts = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: metrics-bridge.v1",
    ]
    if deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def connect_all(args: argparse.Namespace, totals: Totals) -> list[LeanClient]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    subscribe = bridge_pb2.ClientMessage(
        subscribe=bridge_pb2.Subscribe(channels=[bridge_pb2.ChannelRequest(channel=args.channel)])
    ).SerializeToString()
    every = max(1, args.clients // max(1, args.latency_clients))
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(args.connect_concurrency)
    clients: list[LeanClient] = []

    async def one(index: int) -> None:
        async with gate:
            for attempt in range(5):
                request = handshake_request(args.url, args.compression == "deflate")
                client = LeanClient(totals, request, subscribe, args.channel, index % every == 0)
                try:
                    if client.decoder and KERNEL_TIMESTAMPS:
                        await TimestampedSocket.connect(client, host, port)
                    else:
                        await loop.create_connection(lambda c=client: c, host, port)
                    await asyncio.wait_for(asyncio.shield(client.synced), args.sync_timeout)
                except (OSError, ConnectionError, TimeoutError):
                    if client.transport is not None:
                        client.transport.abort()
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                clients.append(client)
                return

    await asyncio.gather(*(one(i) for i in range(args.clients)))
    return clients


def summarize(totals: Totals, clients: list[LeanClient]) -> dict[str, object]:
    elapsed = totals.closes - totals.opens
    result: dict[str, object] = {
        "event": "result",
        "window": totals.mode,
        "seconds": elapsed,
        "deliveries": totals.deliveries,
        "deliveries_per_s": totals.deliveries / elapsed if elapsed > 0 else 0.0,
        "bytes_per_delivery": totals.delivered_bytes / totals.deliveries
        if totals.deliveries
        else 0.0,
        "updates_timed": totals.updates,
        "bytes_per_update": totals.update_bytes / totals.updates if totals.updates else 0.0,
        "clients": len(clients),
        "open": sum(1 for c in clients if not c.closed.done()),
    }
    samples = sorted(totals.latencies_ms)
    if samples:
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        result.update(
            p50_ms=cuts[49], p99_ms=cuts[98], max_ms=samples[-1], mean_ms=statistics.fmean(samples)
        )
    for prefix, values in (("stamp", totals.stamp_lags_ms), ("after_stamp", totals.after_stamp_ms)):
        if values:
            cuts = statistics.quantiles(sorted(values), n=100, method="inclusive")
            result[f"{prefix}_p50_ms"], result[f"{prefix}_p99_ms"] = cuts[49], cuts[98]
            result[f"{prefix}_mean_ms"] = statistics.fmean(values)
    result["resyncs_timed"] = totals.resyncs_timed
    result["seq_advance"] = totals.seq_advance
    return result


def emit(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> int:
    totals = Totals()
    began = time.monotonic()
    clients = await connect_all(args, totals)
    negotiated = sum(1 for c in clients if c.deflate)
    emit(
        {
            "event": "ready",
            "clients": len(clients),
            "failed": args.clients - len(clients),
            "deflate": negotiated,
            "extensions": clients[0].negotiated if clients else "",
            "connect_s": time.monotonic() - began,
        }
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        command, *words = line.split()
        if command == "window":
            totals.deliveries = totals.delivered_bytes = totals.updates = totals.update_bytes = 0
            totals.latencies_ms = []
            totals.stamp_lags_ms = []
            totals.after_stamp_ms = []
            totals.resyncs_timed = 0
            totals.seq_advance = 0
            totals.mode, totals.opens, totals.closes = words[0], float(words[1]), float(words[2])
        elif command == "result":
            emit(summarize(totals, clients))
            totals.mode = None
        elif command == "stats":
            emit({"event": "stats", "deliveries": totals.all_deliveries})
        elif command == "exit":
            break
    for client in clients:
        if client.transport is not None:
            client.transport.abort()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", required=True, help="ws://HOST:PORT/ of the server under test")
    parser.add_argument("--channel", required=True, help="channel every client subscribes to")
    parser.add_argument("--clients", type=int, default=100, help="connections to open")
    parser.add_argument("--compression", choices=["none", "deflate"], default="none")
    parser.add_argument(
        "--latency-clients", type=int, default=500, help="connections that decode for latency"
    )
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--sync-timeout", type=float, default=30.0)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
