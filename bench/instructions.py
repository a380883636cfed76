"""Instructions per event on the pipeline's two hot paths, counted by callgrind.

Wall-clock figures on a shared machine move 20-30 % between runs of the same
code; the number of instructions an in-process loop executes does not. This
runs the bench pipeline's own batches (`bench.pipeline.pipeline_batches`: 10
gauges, consecutive batches all different) through:

- the collector's path: `PushCall.validate_encoded`, `CollectorHub.apply`
  and a subscriber that takes deltas popping them in batches, as Subscribe
  does (`collector.event_batch.take_batch`);
- the bridge's path: `Hub.apply_event` with the bridge's default limits.

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
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.pipeline import pipeline_batches

__all__ = ["bridge_events", "run_bridge", "run_collector"]

REPO = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def run_collector(events: int) -> int:
    """Push `events` batches through a collector hub; returns the updates a subscriber got
    (the first batch creates the source: its subscriber gets a snapshot instead)."""
    from collector.config import CollectorConfig
    from collector.event_batch import take_batch
    from collector.fanout import Event
    from collector.hub import CollectorHub
    from collector.validation import PushCall
    from metrics_bridge.v1 import metrics_pb2

    config = CollectorConfig()
    hub = CollectorHub(config.hub_limits(), clock=time.monotonic)
    queue = hub.subscribe(deltas=True)
    call = PushCall(config.max_batch_samples)
    batches = pipeline_batches("svc", 10, 64, seed=1)

    got = 0

    def resolve(item: object) -> bytes:
        nonlocal got
        if isinstance(item, Event):
            got += 1
            return item.data
        return hub.snapshot(item.source, item.reason)  # type: ignore[attr-defined]

    for n in range(events):
        samples, time_unix_ms = call.validate_encoded(batches[n % len(batches)])
        hub.apply(
            call.source,
            metrics_pb2.SOURCE_KIND_PUSH,
            samples,
            time_unix_ms or 1_700_000_000_000 + n,
            received=0.0,
            instance=call.instance,
        )
        if n in (0, events - 1) or n % 32 == 31:  # as often as a PushBatches message ends
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


def run_bridge(data: list[bytes]) -> int:
    """Apply a snapshot and its updates to a bridge hub; returns the channel's seq."""
    from bridge.config import BridgeConfig
    from bridge.hub import Hub

    config = BridgeConfig()
    hub = Hub(
        limits=config.limits(),
        timers=config.timers(),
        policy=config.client_policy(),
        max_connections=config.max_connections,
        server_version="bench",
        history=config.history_limits(),
    )
    for event in data:
        hub.apply_event("c1", event, 0.0)
    return hub.channels["c1/svc"].seq


def _count(path: str, events: int) -> int:
    """Instructions of one run of this module's loop for `path` at `events` events."""
    command = [
        *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
        *(sys.executable, "-m", "bench.instructions", "--loop", path, "--events", str(events)),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _loop(path: str, events: int) -> None:
    if path == "collector":
        run_collector(events)
    else:
        data = bridge_events(3000)  # the same set whatever `events` is: only applying differs
        run_bridge(data[: events + 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description="Instructions per event on the collector's and the bridge's hot "
        "paths, counted by valgrind's callgrind at two event counts.",
    )
    parser.add_argument("--events", type=int, default=2500, help="events of the longer run")
    parser.add_argument("--loop", choices=("collector", "bridge"), help=argparse.SUPPRESS)
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
    for path in ("collector", "bridge"):
        per_event = (_count(path, args.events) - _count(path, short)) / (args.events - short)
        print(f"{path:9} {per_event:10,.0f} instructions per event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
