"""Fixtures for the collector's tests: a real collector process on an ephemeral
loopback port and a subscriber that records what the stream delivers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import grpc
import pytest

from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2
from tests.collector.replica import SourceReplica
from tests.support.processes import ServerProcess, running
from tests.support.timing import async_wait_until

FAST = ["--listen", "127.0.0.1:0", "--interval", "0.1", "--host-source", "testhost"]


@pytest.fixture(scope="module")
def shared_collector() -> Iterator[ServerProcess]:
    """One collector for a test module whose tests use distinct source names."""
    with running("collector", FAST) as server:
        yield server


@pytest.fixture
def collector() -> Iterator[ServerProcess]:
    """A collector of the test's own (for tests that stop it or fill it up)."""
    with running("collector", FAST) as server:
        yield server


@pytest.fixture
async def channel(shared_collector: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(shared_collector.addresses["grpc"]) as ch:
        yield ch


@dataclass
class Recorder:
    """Reads a Subscribe stream in the background, keeping every event and a
    replica per source from its first snapshot on (until SourceRemoved); a gap
    fails the recorder."""

    call: grpc.aio.UnaryStreamCall[collector_pb2.SubscribeRequest, collector_pb2.CollectorEvent]
    events: list[collector_pb2.CollectorEvent] = field(default_factory=list)
    replicas: dict[str, SourceReplica] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    ended: bool = False
    task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            while (event := await self.call.read()) is not grpc.aio.EOF:
                assert isinstance(event, collector_pb2.CollectorEvent)
                self.events.append(event)
                kind = event.WhichOneof("event")
                if kind == "snapshot":
                    self.replicas.setdefault(event.snapshot.source, SourceReplica()).apply_snapshot(
                        event.snapshot
                    )
                elif kind == "update" and event.update.source in self.replicas:
                    self.replicas[event.update.source].apply_update(event.update)
                elif kind == "source_removed":
                    self.replicas.pop(event.source_removed.source, None)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(exc)
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self.ended = True

    def of(self, source: str, kind: str) -> list[collector_pb2.CollectorEvent]:
        return [
            e
            for e in self.events
            if e.WhichOneof("event") == kind and getattr(e, kind).source == source
        ]

    async def wait_for(self, predicate: Callable[[], object], seconds: float, what: str) -> None:
        def check() -> bool:
            if self.errors:
                raise AssertionError(f"stream failed: {self.errors[0]!r}")
            return bool(predicate())

        await async_wait_until(check, seconds, what)


@contextlib.asynccontextmanager
async def recording(
    ch: grpc.aio.Channel,
    sources: list[str] | None = None,
    resume: dict[str, metrics_pb2.Position] | None = None,
) -> AsyncIterator[Recorder]:
    stub = collector_pb2_grpc.MetricsCollectorStub(ch)
    call = stub.Subscribe(collector_pb2.SubscribeRequest(sources=sources or [], resume=resume))
    recorder = Recorder(call)
    recorder.task = asyncio.create_task(recorder.run())
    try:
        yield recorder
    finally:
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recorder.task
