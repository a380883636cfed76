"""FlushPacer: flush at once while keeping up, gather for a while after a long flush."""

from __future__ import annotations

import pytest

from bridge.pacing import FlushPacer


def test_first_batch_is_flushed_at_once() -> None:
    assert FlushPacer().delay(100.0) == 0.0


def test_batch_right_after_a_long_flush_waits_a_share_of_it() -> None:
    pacer = FlushPacer(share=0.25, max_gap=0.01)
    pacer.flushed(started=1.000, ended=1.020)
    assert pacer.delay(1.021) == pytest.approx(0.004)


def test_gap_is_capped() -> None:
    pacer = FlushPacer(share=0.25, max_gap=0.01)
    pacer.flushed(started=1.0, ended=1.2)
    assert pacer.delay(1.2) == pytest.approx(0.01)


def test_batch_after_the_gap_has_passed_is_flushed_at_once() -> None:
    pacer = FlushPacer(share=0.25, max_gap=0.01)
    pacer.flushed(started=1.000, ended=1.020)
    assert pacer.delay(1.1) == 0.0


def test_short_flushes_leave_next_to_no_gap() -> None:
    pacer = FlushPacer(share=0.25, max_gap=0.01)
    pacer.flushed(started=1.0, ended=1.0002)
    assert pacer.delay(1.0002) == pytest.approx(0.00005)
