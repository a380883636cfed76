"""WriteBatch: when a batch is flushed, and which way each connection's bytes leave."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from bridge.hops import DelayHistogram
from bridge.pacing import FlushPacer
from bridge.sender import ParallelSender
from bridge.write_batch import WriteBatch
from tests.bridge.fake_loop import FakeLoop


@dataclass
class Transport:
    buffered: int = 0
    written: list[bytes] = field(default_factory=list)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)


@dataclass
class Sink:
    """A connection with pending bytes, as the batch sees it."""

    fd: int = -1
    transport: Transport = field(default_factory=Transport)
    pending: bytes | None = None

    def take(self) -> bytes | None:
        data, self.pending = self.pending, None
        return data


@dataclass
class Sender:
    """Writes `counts[i]` bytes of chunk i (-1: nothing), and remembers what it was asked."""

    counts: list[int]
    sent: list[tuple[list[int], list[bytes]]] = field(default_factory=list)

    def send(self, fds: Sequence[int], chunks: Sequence[bytes]) -> list[int]:
        self.sent.append((list(fds), list(chunks)))
        return self.counts[: len(fds)]


def pending(batch: WriteBatch, sink: Sink, data: bytes) -> None:
    sink.pending = data
    batch.mark(sink)


def test_a_batch_is_flushed_on_the_next_iteration_when_the_bridge_keeps_up() -> None:
    loop = FakeLoop()
    batch = WriteBatch(loop, Sender([]), FlushPacer())
    sink = Sink()
    pending(batch, sink, b"frames")
    assert loop.waits == [0.0]
    assert sink.transport.written == []
    loop.run_due()
    assert sink.transport.written == [b"frames"]


def test_connections_marked_before_the_flush_share_it() -> None:
    loop = FakeLoop()
    batch = WriteBatch(loop, Sender([]), FlushPacer())
    one, two = Sink(), Sink()
    pending(batch, one, b"1")
    pending(batch, two, b"2")
    assert loop.waits == [0.0]
    loop.run_due()
    assert (one.transport.written, two.transport.written) == ([b"1"], [b"2"])


def test_after_a_long_flush_the_next_batch_waits_and_gathers() -> None:
    loop = FakeLoop()
    pacer = FlushPacer(share=1.0, max_gap=0.05)
    pacer.flushed(loop.time() - 0.05, loop.time())
    batch = WriteBatch(loop, Sender([]), pacer)
    one, two = Sink(), Sink()
    pending(batch, one, b"1")
    assert loop.waits == [pytest.approx(0.05)]
    loop.advance(0.01)
    assert one.transport.written == []
    pending(batch, two, b"2")
    loop.advance(0.035)
    assert one.transport.written == []
    loop.advance(0.01)
    assert (one.transport.written, two.transport.written) == ([b"1"], [b"2"])
    assert loop.waits == []


@dataclass
class SlowTransport(Transport):
    """A write that takes `seconds` of the loop's time."""

    loop: FakeLoop = field(default_factory=FakeLoop)
    seconds: float = 0.0

    def write(self, data: bytes) -> None:
        super().write(data)
        self.loop.now += self.seconds


def test_the_next_batch_waits_after_a_slow_flush_by_as_much_as_the_pacer_says() -> None:
    loop = FakeLoop()
    batch = WriteBatch(loop, Sender([]), FlushPacer(share=0.5, max_gap=0.05))
    pending(batch, Sink(transport=SlowTransport(loop=loop, seconds=0.02)), b"1")
    loop.run_due()
    pending(batch, Sink(), b"2")
    assert loop.waits == [pytest.approx(0.01)]


def test_each_flush_records_how_long_its_first_frame_waited_until_written() -> None:
    loop = FakeLoop()
    pacer = FlushPacer(share=1.0, max_gap=0.05)
    pacer.flushed(loop.time() - 0.05, loop.time())
    delays = DelayHistogram()
    batch = WriteBatch(loop, Sender([]), pacer, delays)
    pending(batch, Sink(transport=SlowTransport(loop=loop, seconds=0.02)), b"1")
    loop.advance(0.01)
    pending(batch, Sink(), b"2")
    loop.advance(0.1)
    assert delays.count == 1, "once per flush, not per connection"
    assert delays.sum == pytest.approx(0.05 + 0.02)


def test_a_plain_socket_with_nothing_buffered_is_written_directly(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    loop = FakeLoop()
    batch = WriteBatch(loop, ParallelSender(1), FlushPacer())
    sink = Sink(fd=pair[0].fileno())
    pending(batch, sink, b"one" * 100)
    loop.run_due()
    assert pair[1].recv(1000) == b"one" * 100
    assert sink.transport.written == []


def test_a_transport_holding_bytes_gets_the_chunk_after_them() -> None:
    loop = FakeLoop()
    sender = Sender([])
    batch = WriteBatch(loop, sender, FlushPacer())
    sink = Sink(fd=7, transport=Transport(buffered=10))
    pending(batch, sink, b"next")
    loop.run_due()
    assert sink.transport.written == [b"next"]
    assert sender.sent == []


def test_the_rest_of_a_short_direct_write_goes_through_the_transport() -> None:
    loop = FakeLoop()
    sender = Sender([2, -1, 5])
    batch = WriteBatch(loop, sender, FlushPacer())
    short, failed, whole = Sink(fd=3), Sink(fd=4), Sink(fd=5)
    for sink in (short, failed, whole):
        pending(batch, sink, b"abcde")
    loop.run_due()
    assert sender.sent == [([3, 4, 5], [b"abcde"] * 3)]
    assert short.transport.written == [b"cde"]
    assert failed.transport.written == [b"abcde"]
    assert whole.transport.written == []


def test_a_sink_with_nothing_to_take_is_skipped() -> None:
    loop = FakeLoop()
    sender = Sender([])
    batch = WriteBatch(loop, sender, FlushPacer())
    sink = Sink(fd=3)
    pending(batch, sink, b"dropped")
    sink.pending = None  # closed meanwhile
    loop.run_due()
    assert sender.sent == []
    assert sink.transport.written == []
