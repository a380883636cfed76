"""A real collector and a real bridge in front of it, plus a Push helper.

The bridge names the collector `COLLECTOR` (`--collector NAME=HOST:PORT`), so
a pushed source "svc" is the channel "c1/svc" whatever the host is called.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2
from tests.support.processes import ServerProcess, running

COLLECTOR = "c1"


@dataclass
class Stack:
    collector: ServerProcess
    bridge: ServerProcess

    @property
    def grpc_address(self) -> str:
        return self.collector.addresses["grpc"]

    @property
    def url(self) -> str:
        return self.bridge.addresses["url"]

    @property
    def bridge_args(self) -> list[str]:
        return self.bridge.args


def bridge_args(grpc_address: str, extra: Sequence[str] = ()) -> list[str]:
    return ["--listen", "127.0.0.1:0", "--collector", f"{COLLECTOR}={grpc_address}", *extra]


@contextmanager
def running_stack(
    collector_args: Sequence[str] = ("--interval", "0.1"), bridge_extra: Sequence[str] = ()
) -> Iterator[Stack]:
    with running("collector", ["--listen", "127.0.0.1:0", *collector_args]) as collector:
        args = bridge_args(collector.addresses["grpc"], bridge_extra)
        with running("bridge", args) as bridge:
            yield Stack(collector, bridge)


def gauge(name: str, value: float, **labels: str) -> collector_pb2.Sample:
    return collector_pb2.Sample(
        name=name,
        labels=[metrics_pb2.Label(name=k, value=v) for k, v in sorted(labels.items())],
        kind=metrics_pb2.METRIC_KIND_GAUGE,
        number=value,
    )


def push(
    grpc_address: str, source: str, batches: Iterable[Sequence[collector_pb2.Sample]]
) -> collector_pb2.PushResponse:
    """One Push call: each batch becomes one Update of `source`."""
    requests = (collector_pb2.PushRequest(source=source, samples=list(b)) for b in batches)
    with grpc.insecure_channel(grpc_address) as channel:
        stub = collector_pb2_grpc.MetricsCollectorStub(channel)
        response: collector_pb2.PushResponse = stub.Push(requests, timeout=30)
        return response


def get_snapshot(grpc_address: str, source: str) -> metrics_pb2.Snapshot:
    with grpc.insecure_channel(grpc_address) as channel:
        stub = collector_pb2_grpc.MetricsCollectorStub(channel)
        request = collector_pb2.GetSnapshotRequest(source=source)
        snapshot: metrics_pb2.Snapshot = stub.GetSnapshot(request, timeout=30)
        return snapshot
