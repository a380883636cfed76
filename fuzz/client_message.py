"""Coverage-guided fuzzing (atheris, libFuzzer) of the ClientMessage path: `make fuzz`.

Each input is split into client frames (a 2-byte length before each); they go
through `Hub.receive` -> `Session.receive` for one connected client, with a
channel to subscribe to and ticks in between. A bad frame may close the
client with a documented code (a `ClientError`); any other exception, or a
close with an undocumented code, is a crash libFuzzer reports with its input.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from bridge.config import BridgeConfig
    from bridge.errors import CloseCode
    from bridge.frame import Frame
    from bridge.hub import ClientPolicy, Hub
    from bridge.session import Timers
    from metrics_bridge.v1 import collector_pb2, metrics_pb2

DOCUMENTED = {int(code) for code in CloseCode}


class Sink:
    def __init__(self) -> None:
        self.bytes = 0
        self.closed: int | None = None

    def buffered(self) -> int:
        return self.bytes

    def write(self, frame: Frame) -> int:
        self.bytes += len(frame.wire)
        return len(frame.wire)

    def ping(self, payload: bytes) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        self.closed = code


SNAPSHOT = collector_pb2.CollectorEvent(
    snapshot=metrics_pb2.Snapshot(source="svc", epoch=7, seq=0)
).SerializeToString()


def frames(data: bytes) -> list[bytes]:
    out = []
    while len(data) >= 2 and len(out) < 64:
        size = int.from_bytes(data[:2], "big") % 4096
        out.append(data[2 : 2 + size])
        data = data[2 + size :]
    return out


def test_one_input(data: bytes) -> None:
    hub = Hub(
        limits=BridgeConfig().limits(),
        timers=Timers(heartbeat_interval=1, ping_interval=2, ping_timeout=2),
        policy=ClientPolicy(buffer_bytes=64 * 1024, slow_timeout=5),
        max_connections=4,
        server_version="fuzz",
        phase=lambda: 1.0,
        random_bytes=lambda n: b"\0" * n,
    )
    hub.apply_event("c1", SNAPSHOT, 0.0)
    sink = Sink()
    client = hub.connect(sink, 0.0)
    now = 0.0
    for i, frame in enumerate(frames(data)):
        if client not in hub.clients:
            break
        hub.receive(client, frame, now)
        now += 0.05
        if i % 4 == 3:
            hub.tick(now)
            sink.bytes = 0  # the client read everything
    if sink.closed is not None and sink.closed not in DOCUMENTED:
        raise AssertionError(f"closed with undocumented code {sink.closed}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
