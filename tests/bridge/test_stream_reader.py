"""StreamReader: a blocking stream read on a thread, delivered on the loop in order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from bridge.stream_reader import StreamReader
from tests.support.timing import scaled


class FakeCall:
    """A blocking stream: yields what the test releases, then ends or fails."""

    def __init__(self, events: list[bytes], error: Exception | None = None) -> None:
        self.events = events
        self.error = error
        self.cancelled = threading.Event()
        self.release = threading.Semaphore(0)
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        for event in self.events:
            while not self.release.acquire(timeout=0.01):
                if self.cancelled.is_set():
                    raise RuntimeError("cancelled")
            self.read += 1
            yield event
        if self.error is not None:
            raise self.error

    def cancel(self) -> bool:
        self.cancelled.set()
        return True

    def release_all(self) -> None:
        for _ in self.events:
            self.release.release()


async def test_every_event_is_delivered_on_the_loop_in_order_before_run_returns() -> None:
    call = FakeCall([str(i).encode() for i in range(500)])
    call.release_all()
    delivered: list[bytes] = []
    loop_thread = threading.get_ident()

    def deliver(event: bytes) -> None:
        assert threading.get_ident() == loop_thread
        delivered.append(event)

    async with asyncio.timeout(scaled(10)):
        await StreamReader(lambda: call, deliver).run()
    assert delivered == call.events


async def test_the_streams_error_is_raised_after_the_events_before_it() -> None:
    call = FakeCall([b"a", b"b"], error=ConnectionError("stream broke"))
    call.release_all()
    delivered: list[bytes] = []
    with pytest.raises(ConnectionError, match="stream broke"):
        async with asyncio.timeout(scaled(10)):
            await StreamReader(lambda: call, delivered.append).run()
    assert delivered == [b"a", b"b"]


async def test_an_error_in_deliver_cancels_the_stream_and_is_raised() -> None:
    call = FakeCall([b"ok", b"bad", b"never"])
    call.release.release()
    call.release.release()

    def deliver(event: bytes) -> None:
        if event == b"bad":
            raise ValueError("gap")

    with pytest.raises(ValueError, match="gap"):
        async with asyncio.timeout(scaled(10)):
            await StreamReader(lambda: call, deliver).run()
    assert call.cancelled.is_set()


async def test_a_full_queue_holds_the_reading_thread_back() -> None:
    call = FakeCall([str(i).encode() for i in range(50)])
    call.release_all()
    reader = StreamReader(lambda: call, lambda event: None, limit=5)
    task = asyncio.create_task(reader.run())
    await asyncio.sleep(0)  # run() starts the thread
    # The loop is not given a chance to drain: the thread fills the queue and waits.
    deadline = asyncio.get_running_loop().time() + scaled(5)
    while call.read < 6 and asyncio.get_running_loop().time() < deadline:
        threading.Event().wait(0.01)
    assert call.read == 6, "the thread read past the queue's bound"
    async with asyncio.timeout(scaled(10)):
        await task
    assert call.read == 50


async def test_cancelling_run_cancels_the_stream_and_ends_the_thread() -> None:
    call = FakeCall([b"a", b"b"])
    task = asyncio.create_task(StreamReader(lambda: call, lambda event: None).run())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(scaled(10)):
            await task
    assert call.cancelled.is_set()
    assert not any(t.name == "bridge-upstream" for t in threading.enumerate())
