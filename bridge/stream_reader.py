"""A collector's Subscribe stream read on a thread of its own, handed to the loop in batches.

grpc.aio hands over one message per event-loop round trip, so while the loop
is busy fanning a frame out, the next event waits, and one stream delivered a
few hundred events a second. Here a thread reads the stream with grpc's
blocking API (which releases the GIL while it waits), and the loop takes
every event that arrived meanwhile in one go, so that their frames leave in
one flush.

Rules:
- Events reach `deliver(event, received_at)` on the event loop, in stream
  order; `received_at` is the `clock` (monotonic, the loop's) when the
  thread read the message off the stream.
- The loop takes events in drain passes. A pass takes at most what was
  queued when it started, so it ends even while the thread keeps feeding,
  and stops once it has run `budget` seconds (by `clock`), leaving the rest
  to the next pass, so that the frames it made are flushed meanwhile rather
  than wait for a long pass to end. After each pass that delivered
  anything, `drained()` runs (the hub releases what it held back for
  staleness there).
- `oldest_received()` is the receive time of the oldest event still queued
  (None when none is): the age of what waits at the hand-off.
- At most `limit` events wait for the loop; a full queue blocks the reading
  thread, so gRPC flow control holds the collector back, and the collector
  resyncs a subscriber that falls that far behind with a snapshot.
- `run()` returns when the stream ends, after every event read before the
  end was delivered; it raises the stream's `grpc.RpcError`, or what
  `deliver` raised (the stream is then cancelled). Cancelling `run()`
  cancels the stream and ends the thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

__all__ = ["PASS_BUDGET", "StreamCall", "StreamReader"]

PASS_BUDGET = 0.05
"""Seconds a drain pass may run before it lets the loop flush what it made."""


class StreamCall(Protocol):
    """A running server-streaming call of grpc's blocking API."""

    def __iter__(self) -> Iterator[bytes]: ...

    def cancel(self) -> bool: ...


def _nothing() -> None:
    pass


class StreamReader:
    """Reads one call on a thread; `deliver(event, received_at)` runs on the event loop."""

    def __init__(
        self,
        start: Callable[[], StreamCall],
        deliver: Callable[[bytes, float], None],
        limit: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        drained: Callable[[], None] = _nothing,
        budget: float = PASS_BUDGET,
    ) -> None:
        self.start = start
        self.deliver = deliver
        self.clock = clock
        self.drained = drained
        self.budget = budget
        self._events: queue.Queue[tuple[bytes, float]] = queue.Queue(maxsize=limit)
        self._woken = False
        self._lock = threading.Lock()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        call = self.start()
        stopping = threading.Event()

        def finish(error: BaseException | None) -> None:
            if ended.done():
                return
            if self._drain(loop, call, ended):
                loop.call_soon(finish, error)
                return
            if ended.done():
                return
            if error is None:
                ended.set_result(None)
            else:
                ended.set_exception(error)

        def read() -> None:
            error: BaseException | None = None
            try:
                for event in call:
                    item = (event, self.clock())
                    while not stopping.is_set():
                        try:
                            self._events.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    self._wake(loop, call, ended)
            except BaseException as exc:  # handed to the loop, which raises it from run()
                error = exc
            if not stopping.is_set():
                loop.call_soon_threadsafe(finish, error)

        thread = threading.Thread(target=read, name="bridge-upstream", daemon=True)
        thread.start()
        try:
            await ended
        finally:
            stopping.set()
            call.cancel()
            await asyncio.to_thread(thread.join)

    def _wake(
        self, loop: asyncio.AbstractEventLoop, call: StreamCall, ended: asyncio.Future[None]
    ) -> None:
        with self._lock:
            if self._woken:
                return
            self._woken = True
        loop.call_soon_threadsafe(self._drain, loop, call, ended)

    def oldest_received(self) -> float | None:
        """When the oldest event still waiting for the loop was read; None if none waits."""
        with self._events.mutex:
            waiting = self._events.queue
            return waiting[0][1] if waiting else None

    def _drain(
        self, loop: asyncio.AbstractEventLoop, call: StreamCall, ended: asyncio.Future[None]
    ) -> bool:
        """One pass; True when it left events queued (another pass is scheduled)."""
        with self._lock:
            self._woken = False
        deadline = self.clock() + self.budget
        left = self._events.qsize()
        taken = 0
        while left and not ended.done():
            try:
                event, received = self._events.get_nowait()
            except queue.Empty:
                break
            left -= 1
            taken += 1
            try:
                self.deliver(event, received)
            except BaseException as exc:
                call.cancel()
                ended.set_exception(exc)
            if self.clock() >= deadline:
                break
        if taken:
            try:
                self.drained()
            except BaseException as exc:
                call.cancel()
                if not ended.done():
                    ended.set_exception(exc)
        more = not ended.done() and not self._events.empty()
        if more:
            self._wake(loop, call, ended)
        return more
