"""StreamReader: a blocking stream read on a thread, delivered on the loop in order, stamped."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator

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


def collect(into: list[bytes]) -> Callable[[bytes, float], None]:
    return lambda event, received: into.append(event)


async def test_every_event_is_delivered_on_the_loop_in_order_before_run_returns() -> None:
    call = FakeCall([str(i).encode() for i in range(500)])
    call.release_all()
    delivered: list[bytes] = []
    loop_thread = threading.get_ident()

    def deliver(event: bytes, received: float) -> None:
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
            await StreamReader(lambda: call, collect(delivered)).run()
    assert delivered == [b"a", b"b"]


async def test_an_error_in_deliver_cancels_the_stream_and_is_raised() -> None:
    call = FakeCall([b"ok", b"bad", b"never"])
    call.release.release()
    call.release.release()

    def deliver(event: bytes, received: float) -> None:
        if event == b"bad":
            raise ValueError("gap")

    with pytest.raises(ValueError, match="gap"):
        async with asyncio.timeout(scaled(10)):
            await StreamReader(lambda: call, deliver).run()
    assert call.cancelled.is_set()


async def test_a_full_queue_holds_the_reading_thread_back() -> None:
    call = FakeCall([str(i).encode() for i in range(50)])
    call.release_all()
    reader = StreamReader(lambda: call, lambda event, received: None, limit=5)
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
    task = asyncio.create_task(StreamReader(lambda: call, lambda event, received: None).run())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(scaled(10)):
            await task
    assert call.cancelled.is_set()
    assert not any(t.name == "bridge-upstream" for t in threading.enumerate())


async def test_each_event_carries_the_clock_reading_of_its_read_and_passes_end_with_drained() -> (
    None
):
    call = FakeCall([str(i).encode() for i in range(200)])
    call.release_all()
    seen: list[tuple[bytes, float] | str] = []
    reader = StreamReader(
        lambda: call,
        lambda event, received: seen.append((event, received)),
        clock=lambda: 1000.0 + call.read,  # the thread stamps event i once it read i + 1
        drained=lambda: seen.append("drained"),
    )
    async with asyncio.timeout(scaled(10)):
        await reader.run()
    events = [item for item in seen if item != "drained"]
    assert events == [(str(i).encode(), 1001.0 + i) for i in range(200)]
    assert seen[-1] == "drained"
    assert seen[0] != "drained", "a pass that delivered nothing calls drained()"
    for i, item in enumerate(seen[:-1]):
        assert not (item == "drained" and seen[i + 1] == "drained")


async def test_a_drain_pass_ends_while_the_thread_keeps_feeding() -> None:
    limit = 8
    passes: list[int] = []
    taken = 0

    class Endless:
        """A stream that has its next message at once, until the test has seen enough passes."""

        cancelled = False

        def __iter__(self) -> Iterator[bytes]:
            while len(passes) < 50 and not self.cancelled:
                yield b"x"

        def cancel(self) -> bool:
            self.cancelled = True
            return True

    def deliver(event: bytes, received: float) -> None:
        nonlocal taken
        taken += 1
        assert taken <= limit, "a drain pass took more than was queued when it started"
        threading.Event().wait(0.0005)  # lets the thread queue more meanwhile

    def drained() -> None:
        nonlocal taken
        passes.append(taken)
        taken = 0

    reader = StreamReader(Endless, deliver, limit=limit, drained=drained)
    async with asyncio.timeout(scaled(20)):
        await reader.run()
    assert len(passes) >= 50


async def test_the_oldest_queued_event_tells_its_receive_time() -> None:
    call = FakeCall([str(i).encode() for i in range(20)])
    call.release_all()
    stamps = itertools.count(50)
    reader = StreamReader(
        lambda: call, lambda event, received: None, limit=5, clock=lambda: float(next(stamps))
    )
    assert reader.oldest_received() is None
    task = asyncio.create_task(reader.run())
    await asyncio.sleep(0)  # run() starts the thread; the loop does not drain meanwhile
    deadline = asyncio.get_running_loop().time() + scaled(5)
    while call.read < 6 and asyncio.get_running_loop().time() < deadline:
        threading.Event().wait(0.01)
    assert reader.oldest_received() == 50.0
    async with asyncio.timeout(scaled(10)):
        await task
    assert reader.oldest_received() is None


async def test_a_pass_stops_at_its_time_budget_and_the_next_one_goes_on_in_order() -> None:
    call = FakeCall([str(i).encode() for i in range(30)])
    call.release_all()
    seen: list[bytes | str] = []
    reader = StreamReader(
        lambda: call,
        lambda event, received: seen.append(event),
        drained=lambda: seen.append("drained"),
        budget=0.0,
    )
    async with asyncio.timeout(scaled(10)):
        await reader.run()
    assert [item for item in seen if item != "drained"] == call.events
    assert seen == [item for event in call.events for item in (event, "drained")], (
        "with no budget, every pass delivers one message"
    )
