"""The loops `make bench-instructions` counts do the work they stand for."""

from __future__ import annotations

from bench.instructions import PUSH_BATCHES, bridge_events, run_bridge, run_collector


def test_the_collector_loop_delivers_every_pushed_batch_to_its_subscriber() -> None:
    # The first message created the source: its updates reach the subscriber in
    # the snapshot that announces it.
    assert run_collector(100) == 100 - PUSH_BATCHES


def test_the_bridge_loop_applies_every_update_in_order() -> None:
    data = bridge_events(50)
    assert len(data) == 51  # the snapshot at seq 1, then seqs 2..51
    assert run_bridge(data) == 51
