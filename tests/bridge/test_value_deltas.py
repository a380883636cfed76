"""The bridge folds whole-number deltas into the state it serves: snapshots it
builds (history, resync) and merged updates give every value in full."""

from __future__ import annotations

from bridge.history import SourceState
from metrics_bridge.v1 import metrics_pb2


def test_deltas_add_to_the_numbers_the_bridge_holds() -> None:
    state = SourceState.of_snapshot(
        metrics_pb2.Snapshot(
            epoch=1,
            seq=1,
            series=[metrics_pb2.SeriesDescriptor(id=1, name="bytes")],
            values=metrics_pb2.Values(ids=[1, 2], numbers=[1000.0, 0.5]),
        )
    )
    state.apply(
        metrics_pb2.Update(
            epoch=1,
            seq=2,
            values=metrics_pb2.Values(ids=[2], numbers=[0.75], delta_ids=[1], deltas=[-300]),
        )
    )
    snapshot = state.snapshot("svc", metrics_pb2.SOURCE_KIND_PUSH)
    assert dict(zip(snapshot.values.ids, snapshot.values.numbers, strict=True)) == {
        1: 700.0,
        2: 0.75,
    }
    assert not snapshot.values.delta_ids
