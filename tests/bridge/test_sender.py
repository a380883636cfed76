"""ParallelSender over real sockets: every chunk written once, short writes reported."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from bridge.sender import ParallelSender


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(200)]
    for ours, _ in made:
        ours.setblocking(False)
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


@pytest.fixture
def sender() -> Iterator[ParallelSender]:
    pool = ParallelSender(threads=3, min_parallel=8)
    yield pool
    pool.close()


def test_every_chunk_reaches_its_own_socket(
    pairs: list[tuple[socket.socket, socket.socket]], sender: ParallelSender
) -> None:
    chunks = [f"frame for client {i}".encode() for i in range(len(pairs))]
    written = sender.send([ours.fileno() for ours, _ in pairs], chunks)
    assert written == [len(chunk) for chunk in chunks]
    assert [theirs.recv(100) for _, theirs in pairs] == chunks


def test_small_batch_is_written_on_the_calling_thread(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    pool = ParallelSender(threads=1)
    try:
        written = pool.send([pairs[0][0].fileno()], [b"hello"])
    finally:
        pool.close()
    assert written == [5]
    assert pairs[0][1].recv(10) == b"hello"


def test_a_full_socket_reports_a_short_write() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    pool = ParallelSender(threads=1)
    try:
        chunk = b"x" * (4 * 1024 * 1024)
        (written,) = pool.send([ours.fileno()], [chunk])
        assert 0 < written < len(chunk)
        (again,) = pool.send([ours.fileno()], [chunk])
        assert again == -1
    finally:
        pool.close()
        ours.close()
        theirs.close()


def test_a_socket_whose_peer_is_gone_reports_nothing_written(
    pairs: list[tuple[socket.socket, socket.socket]], sender: ParallelSender
) -> None:
    pairs[5][1].close()
    written = sender.send([ours.fileno() for ours, _ in pairs], [b"x"] * len(pairs))
    assert written[5] == -1
    assert written[:5] == [1] * 5 and written[6:] == [1] * (len(pairs) - 6)


def test_at_least_one_thread_is_required() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ParallelSender(threads=0)
