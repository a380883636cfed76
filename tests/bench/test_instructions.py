"""The loops `make bench-instructions` counts do the work they stand for."""

from __future__ import annotations

from bench.instructions import bridge_events, run_bridge, run_collector


def test_the_collector_loop_delivers_every_pushed_batch_to_its_subscriber() -> None:
    assert run_collector(100) == 99  # the first one created the source: a snapshot


def test_the_bridge_loop_applies_every_update_in_order() -> None:
    data = bridge_events(50)
    assert len(data) == 51  # the snapshot at seq 1, then seqs 2..51
    assert run_bridge(data) == 51
