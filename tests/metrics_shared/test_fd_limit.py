"""The open-file limit: raised at start, connections capped to what fits, one line per burst."""

from __future__ import annotations

import resource

from metrics_shared.fd_limit import (
    BASE_HEADROOM,
    PER_COLLECTOR_HEADROOM,
    RefusalLog,
    connection_cap,
    headroom,
    raise_open_file_limit,
)

NOFILE = resource.RLIMIT_NOFILE


class FakeLimits:
    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.value = (soft, hard)
        self.refuse = refuse

    def get(self, which: int) -> tuple[int, int]:
        assert which == NOFILE
        return self.value

    def set(self, which: int, value: tuple[int, int]) -> None:
        assert which == NOFILE
        if self.refuse:
            raise ValueError("not allowed")
        self.value = value


def test_the_soft_limit_is_raised_to_the_hard_limit() -> None:
    limits = FakeLimits(1024, 524288)
    got = raise_open_file_limit(limits.get, limits.set)
    assert (got.before, got.soft, got.hard) == (1024, 524288, 524288)
    assert limits.value == (524288, 524288)


def test_a_soft_limit_already_at_the_hard_limit_is_left_alone() -> None:
    limits = FakeLimits(256, 256)
    assert raise_open_file_limit(limits.get, limits.set).soft == 256


def test_a_refused_raise_keeps_the_soft_limit() -> None:
    limits = FakeLimits(1024, 4096, refuse=True)
    got = raise_open_file_limit(limits.get, limits.set)
    assert (got.before, got.soft) == (1024, 1024)


def test_an_unlimited_hard_limit_raises_to_a_finite_number() -> None:
    limits = FakeLimits(1024, resource.RLIM_INFINITY)
    assert raise_open_file_limit(limits.get, limits.set).soft == 1 << 20


def test_the_process_limit_really_is_raised() -> None:
    got = raise_open_file_limit()
    assert resource.getrlimit(NOFILE)[0] == got.soft >= got.before


def test_headroom_grows_with_the_collectors() -> None:
    assert headroom(0) == BASE_HEADROOM
    assert headroom(3) == BASE_HEADROOM + 3 * PER_COLLECTOR_HEADROOM


def test_connections_that_fit_are_not_capped() -> None:
    cap = connection_cap(10_000, 524288, 68)
    assert (cap.allowed, cap.warning) == (10_000, None)


def test_connections_over_the_limit_are_capped_and_the_warning_gives_the_numbers() -> None:
    cap = connection_cap(10_000, 256, 68)
    assert cap.allowed == 188
    assert cap.warning is not None
    for number in ("10000", "68", "256", "188"):
        assert number in cap.warning


def test_a_limit_under_the_headroom_still_serves_one_connection() -> None:
    assert connection_cap(100, 32, 68).allowed == 1


def test_one_log_line_per_burst_of_refusals() -> None:
    log = RefusalLog(quiet=10)
    lines = [log.refused(t) for t in (0.0, 0.1, 0.2, 5.0, 14.9)]
    assert lines == [True, False, False, False, False]
    assert log.refused(30.0) is True  # a new burst after 10 s of quiet
    assert (log.total, log.in_burst) == (6, 1)
