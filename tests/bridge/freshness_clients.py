"""Many WebSocket clients of one channel in a process of their own, timing the data they get.

Run by tests/bridge/test_freshness_stack.py as
`python -m tests.bridge.freshness_clients URL CHANNEL CLIENTS MEASURING`:
every connection subscribes to CHANNEL and reads everything as fast as it
can; the first MEASURING of them parse what they read and, for each snapshot
or update of the channel, take its age: the receive time (wall clock) minus
the data's `time_unix_ms`. The test runs the measuring connections in a
process of their own, apart from the load, so that their ages are not the
lag of a process reading hundreds of connections. Prints {"event": "ready"}
once every connection got its first data; then reads "measure SECONDS" on
stdin, times what arrives for that long and prints {"event": "result",
"ages_ms": [...], ...}. The bridge must not ping (a long --ping-interval):
the reading-only connections never answer.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import sys
import termios
import time
from urllib.parse import urlsplit

from metrics_bridge.v1 import bridge_pb2

PROTOCOL = "metrics-bridge.v1"


def _masked_frame(payload: bytes) -> bytes:
    """A client's binary frame (RFC 6455 5.3: masked), for payloads under 64 KiB."""
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    head = (
        bytes([0x82, 0x80 | length])
        if length < 126
        else bytes([0x82, 0xFE]) + length.to_bytes(2, "big")
    )
    return head + key + masked


class Connection(asyncio.Protocol):
    def __init__(self, host: str, port: int, channel: str, measuring: bool) -> None:
        self.channel = channel
        self.measuring = measuring
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.synced = asyncio.get_running_loop().create_future()
        self.window_end = 0.0
        self.ages_ms: list[float] = []
        self.marked: dict[int, int] = {}
        self.deliveries = 0
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {PROTOCOL}\r\n\r\n"
        ).encode()

    def unread_bytes(self) -> int:
        """Bytes the kernel holds for this connection that the process has not read yet."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(raw, sys.byteorder) + len(self.buffer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.synced.done():
            self.synced.set_exception(ConnectionError(f"closed before any data: {exc}"))

    def data_received(self, data: bytes) -> None:
        now_ms = time.time() * 1000
        if self.open and not self.measuring and self.synced.done():
            return
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[: end + 4]
            self.open = True
            request = bridge_pb2.ChannelRequest(channel=self.channel)
            subscribe = bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=[request]))
            assert self.transport is not None
            self.transport.write(_masked_frame(subscribe.SerializeToString()))
        self._frames(now_ms)

    def _frames(self, now_ms: float) -> None:
        buf = self.buffer
        pos = 0
        while len(buf) - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if len(buf) - pos < head + length:
                break
            opcode = buf[pos] & 0x0F
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            if opcode != 0x2:
                continue
            message = bridge_pb2.ServerMessage.FromString(payload)
            body = message.WhichOneof("body")
            if body not in ("snapshot", "update") or message.channel != self.channel:
                continue
            if not self.synced.done():
                self.synced.set_result(None)
            if now_ms / 1000 < self.window_end:
                data = message.snapshot if body == "snapshot" else message.update
                self.deliveries += 1
                self.ages_ms.append(now_ms - data.time_unix_ms)
                if message.resync:
                    self.marked[message.resync] = self.marked.get(message.resync, 0) + 1
        del buf[:pos]


async def main(url: str, channel: str, clients: int, measuring: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    connections = [Connection(host, port, channel, i < measuring) for i in range(clients)]
    gate = asyncio.Semaphore(50)

    async def start(connection: Connection) -> None:
        async with gate:
            await loop.create_connection(lambda: connection, host, port)
            await asyncio.wait_for(asyncio.shield(connection.synced), 30)

    await asyncio.gather(*(start(c) for c in connections))
    print(json.dumps({"event": "ready", "clients": len(connections)}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    command, seconds = (await reader.readline()).decode().split()
    assert command == "measure"
    end = time.time() + float(seconds)
    timed = [c for c in connections if c.measuring]
    for connection in timed:
        connection.window_end = end
    await asyncio.sleep(float(seconds))
    unread = sum(c.unread_bytes() for c in timed)
    marked: dict[int, int] = {}
    for connection in timed:
        for reason, count in connection.marked.items():
            marked[reason] = marked.get(reason, 0) + count
    result = {
        "event": "result",
        "ages_ms": sorted(age for c in timed for age in c.ages_ms),
        "deliveries": sum(c.deliveries for c in timed),
        "measuring": len(timed),
        "marked": marked,
        "unread_bytes": unread,
        "open": sum(1 for c in connections if c.transport and not c.transport.is_closing()),
    }
    print(json.dumps(result), flush=True)
    for connection in connections:
        if connection.transport is not None:
            connection.transport.abort()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
