"""OutboundBuffer: the slow-client policy, driven with explicit buffer sizes, byte counts, times."""

from __future__ import annotations

from bridge.frame import Frame, FrameKind, make_frame
from bridge.outbound import BUDGET_FLOOR, OVERFLOW, STALE, Admit, OutboundBuffer

KIB = 1024


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
    assert out.owed_resyncs(buffered=500) == [("c/a", OVERFLOW), ("c/b", OVERFLOW)]


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


def test_settling_returns_why_the_channel_was_owed() -> None:
    out = OutboundBuffer(limit=1000, stuck_timeout=5)
    out.admit(update(), buffered=1000, now=0)
    assert out.owed_reason("c/a") == OVERFLOW
    assert out.settle("c/a") == OVERFLOW
    assert out.settle("c/a") == 0


# The time bound: a budget from the drain rate measured on each tick.


def timed(limit: int = 256 * KIB, max_staleness: float = 1.0) -> OutboundBuffer:
    return OutboundBuffer(limit=limit, stuck_timeout=30, max_staleness=max_staleness)


def drain_at(out: OutboundBuffer, rate: int, buffered: int = 200 * KIB, ticks: int = 1) -> None:
    """A client that holds `buffered` bytes, more keep coming, and `rate` bytes/s leave."""
    queued = buffered
    out.observe(queued, buffered, now=0)
    for tick in range(1, ticks + 1):
        queued += rate // 4
        out.observe(queued, buffered, now=tick / 4)


def test_a_slow_draining_clients_budget_shrinks_to_rate_times_the_bound() -> None:
    out = timed()
    drain_at(out, rate=30_000)
    assert out.rate == 30_000
    assert out.budget == 30_000


def test_updates_beyond_the_time_budget_are_skipped_and_owed_stale() -> None:
    out = timed()
    drain_at(out, rate=30_000)
    assert out.admit(update(100), buffered=29_900, now=1) is Admit.WRITE
    assert out.admit(update(100), buffered=29_901, now=1) is Admit.SKIP
    assert out.owed_reason("c/a") == STALE
    assert out.lagging_since == 1


def test_an_owed_stale_channel_is_resynced_once_drained_to_half_the_budget() -> None:
    out = timed()
    drain_at(out, rate=30_000)
    out.admit(update(), buffered=30_000, now=1)
    assert out.owed_resyncs(buffered=15_001) == []
    assert out.admit(update(), buffered=15_001, now=1) is Admit.SKIP
    assert out.owed_resyncs(buffered=15_000) == [("c/a", STALE)]
    assert out.admit(update(), buffered=15_000, now=1) is Admit.RESYNC


def test_an_update_over_the_byte_limit_is_owed_overflow_even_with_a_rate() -> None:
    out = timed(limit=20_000)
    drain_at(out, rate=5_000, buffered=19_950)
    assert out.admit(update(100), buffered=19_950, now=1) is Admit.SKIP
    assert out.owed_reason("c/a") == OVERFLOW


def test_an_owed_channel_keeps_its_first_reason() -> None:
    out = timed()
    drain_at(out, rate=30_000)
    out.admit(update(100), buffered=40_000, now=1)
    out.admit(update(100), buffered=300 * KIB, now=1)
    assert out.owed_reason("c/a") == STALE


def test_the_budget_never_falls_below_the_floor() -> None:
    out = timed()
    drain_at(out, rate=1_000)
    assert out.budget == BUDGET_FLOOR
    assert out.admit(update(100), buffered=BUDGET_FLOOR - 100, now=1) is Admit.WRITE


def test_a_client_that_stops_reading_gets_the_floor() -> None:
    out = timed()
    drain_at(out, rate=0)
    assert out.rate == 0
    assert out.budget == BUDGET_FLOOR


def test_the_rate_is_a_moving_average_of_backlogged_samples() -> None:
    out = timed()
    out.observe(100_000, 100_000, now=0)
    out.observe(110_000, 100_000, now=0.25)
    assert out.rate == 40_000
    out.observe(120_000, 110_000, now=0.5)
    assert out.rate == 20_000


def test_a_fast_client_keeps_the_byte_limit() -> None:
    out = timed()
    drain_at(out, rate=1_000_000, buffered=255 * KIB)
    assert out.budget == 256 * KIB
    assert out.admit(update(100), buffered=200 * KIB, now=1) is Admit.WRITE


def test_a_client_not_backlogged_has_no_rate() -> None:
    out = timed()
    out.observe(1_000, 0, now=0)
    out.observe(5_000, 300, now=0.25)
    # What was buffered at the last tick (a pending batch) has all left since.
    out.observe(9_000, 300, now=0.5)
    out.observe(9_000, 0, now=0.75)
    assert out.rate is None
    assert out.budget == 256 * KIB


def test_an_interval_that_drained_everything_only_raises_the_rate() -> None:
    out = timed()
    out.observe(10_000, 10_000, now=0)
    out.observe(10_000, 2_500, now=0.25)
    assert out.rate == 30_000
    out.observe(11_000, 0, now=0.5)
    assert out.rate == 30_000
    out.observe(12_000, 1_000, now=0.75)
    out.observe(112_000, 1_000, now=1)
    assert out.rate == 400_000
    assert out.budget == 256 * KIB


def test_ticks_at_the_same_time_measure_nothing() -> None:
    out = timed()
    out.observe(100_000, 100_000, now=1)
    out.observe(100_000, 90_000, now=1)
    assert out.rate is None


def test_a_snapshot_goes_out_when_what_is_ahead_of_it_drains_in_time() -> None:
    out = timed()
    drain_at(out, rate=30_000)
    assert out.admit(snapshot(10_000), buffered=30_000, now=1) is Admit.WRITE
    assert out.admit(snapshot(10_000), buffered=30_001, now=1) is Admit.SKIP
    assert out.owed_reason("c/a") == STALE


def test_without_max_staleness_the_byte_limit_is_the_only_bound() -> None:
    out = timed(max_staleness=0)
    drain_at(out, rate=1_000)
    assert out.rate is None
    assert out.budget == 256 * KIB
    assert out.admit(update(100), buffered=200 * KIB, now=1) is Admit.WRITE


def test_queue_age_is_what_is_buffered_over_the_rate() -> None:
    out = timed()
    assert out.queue_age(50_000) == 0
    drain_at(out, rate=30_000)
    assert out.queue_age(15_000) == 0.5
    stopped = timed()
    drain_at(stopped, rate=0)
    assert stopped.queue_age(15_000) == float("inf")
