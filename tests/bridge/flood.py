"""A pusher flat out: Push streams to one source as fast as the collector takes them.

Run by tests/bridge/test_freshness_stack.py as
`python -m tests.bridge.flood ADDRESS SOURCE`: one Push stream of prebuilt
requests (a gauge per series, the values moving every request, `time_unix_ms`
left to the collector); each line "count" on stdin prints {"pushed": N} (requests
handed to gRPC so far); stdin closed stops it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
from collections.abc import Iterator

import grpc

from metrics_bridge.v1 import collector_pb2, metrics_pb2

SERIES = 10
DISTINCT = 1000


def requests(source: str, stop: threading.Event, counter: list[int]) -> Iterator[bytes]:
    prebuilt = [
        collector_pb2.PushRequest(
            source=source,
            samples=[
                collector_pb2.Sample(
                    name="load",
                    labels=[metrics_pb2.Label(name="i", value=str(i))],
                    kind=metrics_pb2.METRIC_KIND_GAUGE,
                    number=float(n * SERIES + i),
                )
                for i in range(SERIES)
            ],
        ).SerializeToString()
        for n in range(DISTINCT)
    ]
    for request in itertools.cycle(prebuilt):
        if stop.is_set():
            return
        counter[0] += 1
        yield request


def main(address: str, source: str) -> None:
    stop = threading.Event()
    counter = [0]
    with grpc.insecure_channel(address) as channel:
        push = channel.stream_unary(
            "/metrics_bridge.v1.MetricsCollector/Push",
            request_serializer=None,
            response_deserializer=collector_pb2.PushResponse.FromString,
        )
        call = push.future(requests(source, stop, counter))
        for line in sys.stdin:
            if line.strip() == "count":
                print(json.dumps({"pushed": counter[0]}), flush=True)
        stop.set()
        with contextlib.suppress(grpc.RpcError):
            call.result(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
