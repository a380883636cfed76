"""ChannelView: snapshots replace, updates follow (epoch, seq) or are gaps."""

from __future__ import annotations

import pytest

from bridge.client.errors import ProtocolViolation
from bridge.client.state import Applied, ChannelView, ViewPosition, resync_reason
from metrics_bridge.v1 import metrics_pb2

EPOCH = 0xDEADBEEF


def descriptor(series_id: int, name: str, **labels: str) -> metrics_pb2.SeriesDescriptor:
    return metrics_pb2.SeriesDescriptor(
        id=series_id,
        name=name,
        labels=[metrics_pb2.Label(name=k, value=v) for k, v in sorted(labels.items())],
        kind=metrics_pb2.METRIC_KIND_GAUGE,
    )


def snapshot(seq: int, values: dict[int, float], epoch: int = EPOCH) -> metrics_pb2.Snapshot:
    return metrics_pb2.Snapshot(
        source="svc",
        epoch=epoch,
        seq=seq,
        series=[descriptor(1, "cpu", core="0"), descriptor(2, "mem")],
        values=metrics_pb2.Values(ids=list(values), numbers=list(values.values())),
    )


def update(
    seq: int,
    values: dict[int, float],
    *,
    epoch: int = EPOCH,
    added: list[metrics_pb2.SeriesDescriptor] | None = None,
    removed: list[int] | None = None,
) -> metrics_pb2.Update:
    return metrics_pb2.Update(
        source="svc",
        epoch=epoch,
        seq=seq,
        added=added or [],
        values=metrics_pb2.Values(ids=list(values), numbers=list(values.values())),
        removed=removed or [],
    )


def test_snapshot_sets_position_and_resolves_series_by_id() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5, 2: 100.0}))
    assert view.position == ViewPosition(EPOCH, 7)
    assert view.value("cpu", core="0") == 0.5
    assert [s.key for s in view.series()] == ['cpu{core="0"}', "mem"]


def test_update_following_the_view_overwrites_values() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5, 2: 100.0}))
    assert view.apply_update(update(8, {1: 0.75})) is Applied.APPLIED
    assert view.value("cpu", core="0") == 0.75
    assert view.value("mem") == 100.0
    assert view.position == ViewPosition(EPOCH, 8)


def test_update_adds_and_removes_series() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(1, {1: 0.5, 2: 100.0}))
    view.apply_update(update(2, {3: 9.0}, added=[descriptor(3, "disk")], removed=[2]))
    assert [s.name for s in view.series()] == ["cpu", "disk"]
    assert view.value("disk") == 9.0
    assert view.value("mem") is None


def test_skipped_seq_is_a_gap_and_leaves_the_view_untouched() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}))
    assert view.apply_update(update(9, {1: 0.9})) is Applied.GAP
    assert view.value("cpu", core="0") == 0.5
    assert view.position == ViewPosition(EPOCH, 7)


def test_other_epoch_is_a_gap() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}))
    assert view.apply_update(update(8, {1: 0.9}, epoch=EPOCH + 1)) is Applied.GAP


def test_update_before_any_snapshot_is_a_gap() -> None:
    assert ChannelView("c/svc").apply_update(update(1, {1: 1.0})) is Applied.GAP


def test_already_applied_update_is_ignored() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}))
    assert view.apply_update(update(7, {1: 0.9})) is Applied.IGNORED
    assert view.value("cpu", core="0") == 0.5


def test_snapshot_of_a_new_epoch_replaces_everything() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5, 2: 1.0}))
    view.apply_update(update(8, {3: 1.0}, added=[descriptor(3, "disk")]))
    fresh = snapshot(0, {1: 0.1}, epoch=EPOCH + 5)
    view.apply_snapshot(fresh)
    assert view.position == ViewPosition(EPOCH + 5, 0)
    assert view.value("disk") is None
    assert view.value("mem") is None


def test_heartbeat_position_ahead_of_the_view_means_missed_updates() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}))
    assert not view.is_behind(metrics_pb2.Position(epoch=EPOCH, seq=7))
    assert view.is_behind(metrics_pb2.Position(epoch=EPOCH, seq=8))
    assert view.is_behind(metrics_pb2.Position(epoch=EPOCH + 1, seq=0))


def test_update_with_mismatched_arrays_is_invalid_and_leaves_the_view() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}))
    bad = update(8, {})
    bad.values.ids.append(1)
    assert view.apply_update(bad) is Applied.INVALID
    assert view.position == ViewPosition(EPOCH, 7)
    assert view.value("cpu", core="0") == 0.5


def test_update_naming_an_undeclared_id_is_invalid() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}))
    assert view.apply_update(update(8, {9: 1.0})) is Applied.INVALID
    assert view.apply_update(update(8, {9: 1.0}, added=[descriptor(9, "new")])) is Applied.APPLIED


def test_snapshot_with_mismatched_arrays_is_a_protocol_violation() -> None:
    bad = snapshot(7, {})
    bad.values.ids.append(1)
    with pytest.raises(ProtocolViolation):
        ChannelView("c/svc").apply_snapshot(bad)


def test_marked_snapshots_and_merged_updates_count_by_reason_once_applied() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}))
    assert (view.resyncs, view.last_resync) == ({}, None), "an unmarked snapshot is not a resync"
    view.apply_snapshot(snapshot(12, {1: 0.6}), resync="stale")
    assert view.apply_update(update(15, {1: 0.7}), first_seq=13, resync="stale") is Applied.APPLIED
    view.apply_snapshot(snapshot(20, {1: 0.8}), resync="overflow")
    assert view.resyncs == {"stale": 2, "overflow": 1}
    assert view.last_resync == "overflow"
    assert view.value("cpu", core="0") == 0.8


def test_a_marked_update_that_does_not_apply_is_not_counted() -> None:
    view = ChannelView("c/svc")
    view.apply_snapshot(snapshot(7, {1: 0.5}), resync="stale")
    assert view.apply_update(update(12, {1: 0.9}), first_seq=10, resync="stale") is Applied.GAP
    assert view.apply_update(update(7, {1: 0.9}), first_seq=5, resync="stale") is Applied.IGNORED
    view.apply_snapshot(snapshot(12, {1: 0.9}))
    assert (view.resyncs, view.last_resync) == ({"stale": 1}, "stale"), "unmarked keeps the counts"


def test_resync_reasons_are_named_like_the_wire_and_unknown_ones_by_number() -> None:
    assert resync_reason(metrics_pb2.RESYNC_REASON_UNSPECIFIED) is None
    assert resync_reason(metrics_pb2.RESYNC_REASON_STALE) == "stale"
    assert resync_reason(metrics_pb2.RESYNC_REASON_OVERFLOW) == "overflow"
    assert resync_reason(9) == "9"
