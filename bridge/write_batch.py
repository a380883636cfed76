"""The frames written to connections, gathered and flushed so that each connection gets one send().

A burst of messages then costs one send() per connection instead of one per
message, and the sends of a flush are spread over the `ParallelSender`'s
threads.

Rules:
- The first connection marked dirty schedules a flush: on the next
  event-loop iteration (`call_soon`) if `FlushPacer.delay` is zero, else
  that many seconds later (`call_later`); connections marked meanwhile join
  it. A flush takes each dirty connection's pending bytes as one chunk.
- A chunk goes straight to the socket (through the sender) only when the
  connection has a plain socket and its transport holds nothing; otherwise,
  and for what a short direct write left over, it goes through the
  transport's `write`, which buffers it in order after what is there.
- The pacer is told how long each flush took (`FlushPacer.flushed`), and
  `delays` (when given) how long the flush's first frame waited: from its
  connection's mark to the end of the flush's writes, once per flush.

Time and scheduling come from `loop` (an asyncio event loop, or a fake in
tests); nothing here reads a clock or sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from bridge.hops import DelayHistogram
from bridge.pacing import FlushPacer

__all__ = ["BatchedSink", "Scheduler", "SocketSender", "WriteBatch", "WriteTransport"]


class Scheduler(Protocol):
    """The part of an asyncio event loop a batch uses: its clock and its callbacks."""

    def time(self) -> float: ...

    def call_soon(self, callback: Callable[[], object]) -> object: ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> object: ...


class SocketSender(Protocol):
    """Writes chunks straight to sockets (`ParallelSender`); -1: nothing was written."""

    def send(self, fds: Sequence[int], chunks: Sequence[bytes]) -> list[int]: ...


class WriteTransport(Protocol):
    """The part of an asyncio transport a batch writes through."""

    def get_write_buffer_size(self) -> int: ...

    def write(self, data: bytes) -> None: ...


class BatchedSink(Protocol):
    """A connection as the batch sees it (`transport.ConnectionSink`)."""

    @property
    def fd(self) -> int:
        """The socket's file descriptor for direct writes, or -1 if writes need the transport."""
        ...

    @property
    def transport(self) -> WriteTransport: ...

    def take(self) -> bytes | None:
        """What is pending, as one chunk; None if nothing or no longer open."""
        ...


class WriteBatch:
    """Connections with pending frames, flushed together."""

    def __init__(
        self,
        loop: Scheduler,
        sender: SocketSender,
        pacer: FlushPacer,
        delays: DelayHistogram | None = None,
    ) -> None:
        self.loop = loop
        self.sender = sender
        self.pacer = pacer
        self.delays = delays
        self.dirty: list[BatchedSink] = []
        self._marked_at = 0.0

    def mark(self, sink: BatchedSink) -> None:
        """`sink` has pending bytes; called once per flush, when the first arrive."""
        if not self.dirty:
            self._marked_at = now = self.loop.time()
            delay = self.pacer.delay(now)
            if delay > 0:
                self.loop.call_later(delay, self.flush)
            else:
                self.loop.call_soon(self.flush)
        self.dirty.append(sink)

    def flush(self) -> None:
        started = self.loop.time()
        marked_at = self._marked_at
        dirty, self.dirty = self.dirty, []
        fds: list[int] = []
        chunks: list[bytes] = []
        direct: list[BatchedSink] = []
        for sink in dirty:
            data = sink.take()
            if data is None:
                continue
            transport = sink.transport
            if sink.fd < 0 or transport.get_write_buffer_size():
                transport.write(data)
            else:
                fds.append(sink.fd)
                chunks.append(data)
                direct.append(sink)
        if direct:
            written = self.sender.send(fds, chunks)
            for sink, data, count in zip(direct, chunks, written, strict=True):
                if count != len(data):
                    sink.transport.write(data[max(count, 0) :])
        ended = self.loop.time()
        self.pacer.flushed(started, ended)
        if self.delays is not None and dirty:
            self.delays.observe(ended - marked_at)
