"""OutboundBuffer: the slow-client policy, driven with explicit buffer sizes and times."""

from __future__ import annotations

from bridge.frame import Frame, FrameKind, make_frame
from bridge.outbound import Admit, OutboundBuffer


def update(size: int = 100, channel: str = "c/a") -> Frame:
    return make_frame(FrameKind.UPDATE, b"x" * (size - 2), channel=channel)


def snapshot(size: int = 100, channel: str = "c/a") -> Frame:
    return make_frame(FrameKind.SNAPSHOT, b"x" * (size - 2), channel=channel)


def control(size: int = 100) -> Frame:
    return make_frame(FrameKind.CONTROL, b"x" * (size - 2))


def test_update_that_fits_is_written() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    assert out.admit(update(), buffered=900, now=0) is Admit.WRITE
    assert not out.lagging


def test_update_over_the_limit_is_skipped_and_its_channel_owed_a_snapshot() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    assert out.admit(update(), buffered=901, now=1) is Admit.SKIP
    assert out.lagging and out.lagging_since == 1
    assert out.is_owed("c/a")


def test_later_updates_of_an_owed_channel_are_skipped_until_the_buffer_drains() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(), buffered=1000, now=0)
    assert out.admit(update(), buffered=600, now=0) is Admit.SKIP


def test_update_of_an_owed_channel_becomes_a_resync_once_drained_to_half() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(), buffered=1000, now=0)
    assert out.admit(update(), buffered=500, now=0) is Admit.RESYNC


def test_settling_the_last_owed_channel_ends_lagging() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(channel="c/a"), buffered=1000, now=0)
    out.admit(update(channel="c/b"), buffered=1000, now=0)
    out.settle("c/a")
    assert out.lagging
    out.settle("c/b")
    assert not out.lagging


def test_updates_of_channels_not_owed_still_flow_while_they_fit() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(channel="c/a"), buffered=1000, now=0)
    assert out.admit(update(channel="c/b"), buffered=100, now=0) is Admit.WRITE


def test_snapshot_that_fits_is_written_and_settles_its_channel() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(), buffered=1000, now=0)
    assert out.admit(snapshot(), buffered=800, now=0) is Admit.WRITE
    assert not out.is_owed("c/a")
    assert not out.lagging


def test_snapshot_larger_than_the_limit_is_written_into_an_empty_buffer() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    assert out.admit(snapshot(5000), buffered=0, now=0) is Admit.WRITE


def test_snapshot_that_does_not_fit_is_owed() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    assert out.admit(snapshot(500), buffered=600, now=0) is Admit.SKIP
    assert out.is_owed("c/a")


def test_control_frames_pass_up_to_twice_the_limit_then_close() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    assert out.admit(control(), buffered=1900, now=0) is Admit.WRITE
    assert out.admit(control(), buffered=1901, now=0) is Admit.CLOSE


def test_owed_resyncs_wait_for_the_buffer_to_drain_to_half() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(channel="c/a"), buffered=1000, now=0)
    out.admit(update(channel="c/b"), buffered=1000, now=0)
    assert out.owed_resyncs(buffered=501) == []
    assert out.owed_resyncs(buffered=500) == ["c/a", "c/b"]


def test_client_lagging_longer_than_the_timeout_expires() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(), buffered=1000, now=10)
    assert not out.expired(now=15)
    assert out.expired(now=15.1)


def test_client_that_catches_up_does_not_expire() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(), buffered=1000, now=10)
    out.admit(snapshot(), buffered=0, now=12)
    assert not out.expired(now=100)
