"""Instructions per event on the pipeline's two hot paths, counted by callgrind.

Wall-clock figures on a shared machine move 20-30 % between runs of the same
code; the number of instructions an in-process loop executes does not. This
runs the bench pipeline's own batches (`bench.pipeline.pipeline_batches`: 10
gauges, consecutive batches all different) through:

- the collector's path, as PushBatches and Subscribe take it: messages of
  `PUSH_BATCHES` batches split by `encoded_batches`, each batch checked by
  `PushCall.validate_encoded` and applied through the message's
  `SourceFeed`, then a subscriber that takes deltas popping the updates in
  batches (`collector.event_batch.take_batch`);
- the bridge's path, as a bridge serving one client pays it: the updates
  in Subscribe messages of `MESSAGE_EVENTS` (CollectorEvent{batch}, split by
  `bridge.event_batch.events_of`), stamped as read and handed to
  `Hub.apply_event` in drain passes of `PASS_MESSAGES` messages, each pass
  ending with `Hub.release_held` and a flush of the `WriteBatch`; one client
  (the pipeline's checking client) is connected and subscribed through the
  hub's own `connect` and `receive`, and its frames go through a real
  `ConnectionSink` to a stand-in sender (no socket, no clock, no send()).
  Two loops: `bridge`, where every event waited past `Hub.coalesce_after`,
  so each pass reaches the client as one merged update
  (`ChannelState.merged_frame`) as in the pipeline, whose bridge is behind
  most of the time (py-spy puts ~12 % of its CPU in the merge); and
  `bridge-kept-up`, where none did and every event is its own frame.

Each is run under `valgrind --tool=callgrind` at two event counts; the
difference divided by the difference in events is the cost per event, free
of start-up. Pure-Python changes move it as they move CPU time; a change
that trades Python for C code (protobuf, struct) can move the two apart, so
time those with alternating runs as well.

Run: `make bench-instructions` (installs valgrind), or
`python -m bench.instructions [--events N]`. Without valgrind it says so
and exits 2.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from bench.pipeline import BATCHES_PER_MESSAGE, batches_messages, pipeline_batches

__all__ = [
    "MESSAGE_EVENTS",
    "PASS_MESSAGES",
    "bridge_events",
    "bridge_messages",
    "run_bridge",
    "run_collector",
]

REPO = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
PUSH_BATCHES = BATCHES_PER_MESSAGE
"""Batches per PushBatches message of the collector loop, as in the pipeline bench."""
MESSAGE_EVENTS = 50
"""Updates per Subscribe message (CollectorEvent{batch}) the bridge loop reads."""
PASS_MESSAGES = 2
"""Messages per drain pass of the bridge loop: each pass ends with `Hub.release_held`."""
_BRIDGE_LOOPS = {"bridge": True, "bridge-kept-up": False}
"""The bridge loops, and whether their events waited long enough to be merged."""


def run_collector(events: int) -> int:
    """Push `events` batches through a collector hub as the PushBatches service does
    (messages of `PUSH_BATCHES` split by `encoded_batches`, each batch validated
    and applied through the message's `SourceFeed`), a subscriber that takes
    deltas popping them in batches after each message, as Subscribe does;
    returns the updates it got (the first message's are in the snapshot that
    announces the source it created)."""
    from collector.config import CollectorConfig
    from collector.event_batch import take_batch
    from collector.fanout import Event
    from collector.hub import CollectorHub
    from collector.validation import PushCall, encoded_batches
    from metrics_bridge.v1 import metrics_pb2

    config = CollectorConfig()
    hub = CollectorHub(config.hub_limits(), clock=time.monotonic)
    queue = hub.subscribe(deltas=True)
    call = PushCall(config.max_batch_samples)
    messages = batches_messages(pipeline_batches("svc", 10, 64, seed=1), PUSH_BATCHES)

    got = 0

    def resolve(item: object) -> bytes:
        nonlocal got
        if isinstance(item, Event):
            got += 1
            return item.data
        return hub.snapshot(item.source, item.reason)  # type: ignore[attr-defined]

    n = 0
    while n < events:
        feed = None
        for batch in encoded_batches(messages[n // PUSH_BATCHES % len(messages)])[: events - n]:
            samples, time_unix_ms = call.validate_encoded(batch)
            if feed is None:
                feed = hub.feed(
                    call.source, metrics_pb2.SOURCE_KIND_PUSH, received=0.0, instance=call.instance
                )
            feed.apply(samples, time_unix_ms or 1_700_000_000_000 + n)
            n += 1
        assert feed is not None
        feed.close()
        first = queue.pop()
        while first is not None:
            take_batch(resolve(first), queue, resolve, 256)
            first = queue.pop()
    return got


def bridge_events(events: int) -> list[bytes]:
    """A snapshot, then `events` updates of one pushed source, as a bridge receives them."""
    from collector.config import CollectorConfig
    from collector.fanout import Event
    from collector.hub import CollectorHub
    from collector.validation import PushCall
    from metrics_bridge.v1 import metrics_pb2

    hub = CollectorHub(CollectorConfig().hub_limits())
    queue = hub.subscribe(deltas=True)
    call = PushCall(1000)
    batches = pipeline_batches("svc", 10, 64, seed=1)
    out: list[bytes] = []
    for n in range(events + 1):
        samples, _ = call.validate_encoded(batches[n % len(batches)])
        hub.apply(call.source, metrics_pb2.SOURCE_KIND_PUSH, samples, 1 + n, received=0.0)
        if n == 0:
            out.append(hub.snapshot("svc"))
            queue.pop()  # the resync that the snapshot stands for
        while (item := queue.pop()) is not None:
            if isinstance(item, Event):
                out.append(item.data)
    return out


class _Socket:
    def fileno(self) -> int:
        return 1_000  # never written to: `_Sender` stands in for the sends


class _Transport:
    """A plain-socket transport that holds nothing: the sink writes through the batch."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return _Socket() if name == "socket" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        raise AssertionError("the batch writes to the socket: nothing goes through the transport")


class _Connection:
    """What `ConnectionSink` reads of a `BridgeConnection`: an open one, no extension."""

    def __init__(self) -> None:
        from websockets.protocol import OPEN

        self.transport = _Transport()
        self.protocol = self
        self.state = OPEN
        self.extensions: list[object] = []


class _Loop:
    """The `Scheduler` of the write batch: a flush runs when the bench loop says so."""

    def __init__(self) -> None:
        self.due: Callable[[], object] | None = None

    def time(self) -> float:
        return 0.0

    def call_soon(self, callback: Callable[[], object]) -> None:
        self.due = callback

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        self.due = callback

    def run(self) -> None:
        due, self.due = self.due, None
        if due is not None:
            due()


class _Sender:
    """Every chunk written whole; keeps the last one, to see where the client got."""

    def __init__(self) -> None:
        self.last = b""

    def send(self, fds: Sequence[int], chunks: Sequence[bytes]) -> list[int]:
        self.last = chunks[-1]
        return [len(chunk) for chunk in chunks]


def bridge_messages(events: list[bytes]) -> list[bytes]:
    """The snapshot, then the updates as Subscribe messages of `MESSAGE_EVENTS` each."""
    from metrics_bridge.v1 import collector_pb2

    updates = events[1:]
    return [events[0]] + [
        collector_pb2.CollectorEvent(
            batch=collector_pb2.EventBatch(events=updates[i : i + MESSAGE_EVENTS])
        ).SerializeToString()
        for i in range(0, len(updates), MESSAGE_EVENTS)
    ]


def run_bridge(messages: list[bytes], behind: bool = True) -> int:
    """Feed a snapshot and batches of updates to a bridge hub with one subscribed client,
    as its stream reader does; returns the seq of the last update the client got.

    `behind`: every event waited longer than `Hub.coalesce_after` (each drain
    pass's events reach the client as one merged update), else none did (one
    frame per event)."""
    from bridge.config import BridgeConfig
    from bridge.event_batch import events_of
    from bridge.hub import Hub
    from bridge.pacing import FlushPacer
    from bridge.transport import BridgeConnection, ConnectionSink
    from bridge.write_batch import WriteBatch
    from metrics_bridge.v1 import bridge_pb2

    config = BridgeConfig()
    hub = Hub(
        limits=config.limits(),
        timers=config.timers(),
        policy=config.client_policy(),
        max_connections=config.max_connections,
        server_version="bench",
        history=config.history_limits(),
        wall_ms=lambda: 1_700_000_000_000,
    )
    hub.apply_event("c1", messages[0], 0.0)
    loop, sender = _Loop(), _Sender()
    batch = WriteBatch(loop, sender, FlushPacer(), hub.hops.flush)
    connection = cast(BridgeConnection, _Connection())
    client = hub.connect(ConnectionSink(connection, batch), 0.0)
    subscribe = bridge_pb2.Subscribe(channels=[bridge_pb2.ChannelRequest(channel="c1/svc")])
    hub.receive(client, bridge_pb2.ClientMessage(subscribe=subscribe).SerializeToString(), 0.0)
    loop.run()
    waited = 2 * hub.coalesce_after if behind else 0.0
    for start in range(1, len(messages), PASS_MESSAGES):
        received = float(start)
        now = received + waited
        for message in messages[start : start + PASS_MESSAGES]:
            for data in events_of(message):
                hub.apply_event("c1", data, now, received)
        hub.release_held(now)
        loop.run()
    return _last_seq(sender.last)


def _last_seq(chunk: bytes) -> int:
    """The seq of the last update in a chunk of unmasked WebSocket frames (0: none)."""
    from metrics_bridge.v1 import bridge_pb2

    seq, pos = 0, 0
    while pos < len(chunk):
        length, head = chunk[pos + 1] & 0x7F, 2
        if length == 126:
            length, head = int.from_bytes(chunk[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            length, head = int.from_bytes(chunk[pos + 2 : pos + 10], "big"), 10
        message = bridge_pb2.ServerMessage.FromString(chunk[pos + head : pos + head + length])
        if message.HasField("update"):
            seq = message.update.seq
        pos += head + length
    return seq


def _count(path: str, events: int) -> int:
    """Instructions of one run of this module's loop for `path` at `events` events."""
    command = [
        *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
        *(sys.executable, "-m", "bench.instructions", "--loop", path, "--events", str(events)),
    ]
    # str hashes are randomized per process, which moves dict and set work by up
    # to ~1 % between runs of the same code; a fixed seed keeps counts comparable.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _loop(path: str, events: int) -> None:
    if path == "collector":
        run_collector(events)
    else:
        # The same messages whatever `events` is (only applying differs), in whole messages.
        messages = bridge_messages(bridge_events(3000))
        run_bridge(messages[: 1 + -(-events // MESSAGE_EVENTS)], _BRIDGE_LOOPS[path])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description="Instructions per event on the collector's and the bridge's hot "
        "paths, counted by valgrind's callgrind at two event counts.",
    )
    parser.add_argument("--events", type=int, default=2500, help="events of the longer run")
    parser.add_argument("--loop", choices=("collector", *_BRIDGE_LOOPS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop:
        _loop(args.loop, args.events)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: run `make bench-instructions`", file=sys.stderr)
        return 2
    short = max(1, args.events // 5)
    if args.events > 3000 or short >= args.events:
        parser.error("--events must be between 2 and 3000")
    for path in ("collector", *_BRIDGE_LOOPS):
        per_event = (_count(path, args.events) - _count(path, short)) / (args.events - short)
        print(f"{path:14} {per_event:10,.0f} instructions per event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
