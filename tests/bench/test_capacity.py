"""The capacity sweep: the search doubles then bisects to the most clients that pass;
a load connection counts updates and resyncs and times updates by the receive time
it is given; the table divides clients by the bridge's cores; a tiny real sweep
through a real collector and bridge passes, clients bound to 127.0.0.2+."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import pytest

from bench.capacity import (
    SCENARIOS,
    CapacitySettings,
    Point,
    Search,
    capacity_lines,
    limit_of,
    measure_capacity,
    summarize,
)
from bench.capacity_load import CapacityClient, Tally, body_tag
from bench.load import PUBLISH_SERIES
from metrics_bridge.v1 import bridge_pb2, metrics_pb2


def run_search(search: Search, capacity: int) -> list[int]:
    while (clients := search.next()) is not None:
        search.record(clients, clients <= capacity)
    return search.tried


def test_counts_double_until_a_failure_then_bisect_to_the_resolution() -> None:
    search = Search(start=1000, maximum=16000, step=250, resolution=0.1)
    tried = run_search(search, capacity=5300)
    assert tried[:4] == [1000, 2000, 4000, 8000]
    assert all(4000 < n < 8000 for n in tried[4:])
    assert search.best <= 5300 < search.lowest_failure  # type: ignore[operator]
    assert search.lowest_failure - search.best <= max(250, search.best * 0.1)  # type: ignore[operator]
    assert not search.capped


def test_a_bridge_that_passes_at_the_maximum_is_capped_there() -> None:
    search = Search(start=1000, maximum=6000, step=250)
    assert run_search(search, capacity=10**9) == [1000, 2000, 4000, 6000]
    assert search.capped and search.best == 6000


def test_a_failing_start_bisects_downwards_and_may_find_nothing() -> None:
    search = Search(start=1000, maximum=16000, step=100)
    run_search(search, capacity=320)
    assert 200 <= search.best <= 320 and search.tried[0] == 1000
    nothing = Search(start=1000, step=250)
    run_search(nothing, capacity=10)
    assert nothing.best == 0 and nothing.lowest_failure == 250


def frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """A server frame (unmasked), payloads under 64 KiB."""
    if len(payload) < 126:
        return bytes([0x80 | opcode, len(payload)]) + payload
    return bytes([0x80 | opcode, 126]) + len(payload).to_bytes(2, "big") + payload


def snapshot(channel: str) -> bytes:
    return bridge_pb2.ServerMessage(
        channel=channel,
        snapshot=metrics_pb2.Snapshot(
            source="s",
            seq=1,
            series=[
                metrics_pb2.SeriesDescriptor(id=3, name="other"),
                metrics_pb2.SeriesDescriptor(id=7, name=PUBLISH_SERIES),
            ],
        ),
    ).SerializeToString()


def update(channel: str, published_ms: float) -> bytes:
    return bridge_pb2.ServerMessage(
        channel=channel,
        update=metrics_pb2.Update(
            source="s", seq=2, values=metrics_pb2.Values(ids=[3, 7], numbers=[1.0, published_ms])
        ),
    ).SerializeToString()


HANDSHAKE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"


def test_a_connection_syncs_on_every_channels_snapshot_then_counts_updates_in_the_window() -> None:
    tally = Tally(channels=2)
    client = CapacityClient(tally, b"GET", b"subscribe")
    client.decoder = True
    sent = client.feed(HANDSHAKE + frame(snapshot("c/a")), now=100.0)
    assert len(sent) == 1 and sent[0][0] == 0x82  # the masked subscribe
    assert not client.synced and tally.publish_ids == {"c/a": 7}
    client.feed(frame(snapshot("c/b")), now=100.1)
    assert client.synced
    tally.start(101.0, 102.0)
    client.feed(frame(update("c/a", 100_950.0)), now=100.99)  # before the window
    message = frame(update("c/b", 101_000.0)) + frame(snapshot("c/b"))
    client.feed(message[:5], now=101.04)  # split anywhere
    client.feed(message[5:], now=101.05)
    assert (tally.updates, tally.resyncs) == (1, 1)
    assert tally.latencies_ms == [pytest.approx(50.0)]


def test_only_decoders_time_updates_and_pings_get_pongs() -> None:
    tally = Tally(channels=1)
    client = CapacityClient(tally, b"GET", b"subscribe")
    client.feed(HANDSHAKE + frame(snapshot("c/a")), now=1.0)
    tally.start(0.0, 10.0)
    replies = client.feed(frame(update("c/a", 1000.0)) + frame(b"hi", opcode=0x9), now=2.0)
    assert tally.updates == 1 and tally.latencies_ms == []
    assert [r[0] for r in replies] == [0x8A]


def test_a_refused_upgrade_is_a_connection_error() -> None:
    client = CapacityClient(Tally(), b"GET", b"subscribe")
    with pytest.raises(ConnectionError, match="503"):
        client.feed(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", now=0.0)


def test_the_body_tag_is_read_past_the_channel() -> None:
    payload = update("c1/x", 1.0)
    assert body_tag(payload, 0, len(payload)) == 0x5A
    bare = bridge_pb2.ServerMessage(snapshot=metrics_pb2.Snapshot()).SerializeToString()
    assert body_tag(bare + b"\x00", 0, len(bare) + 1) == 0x52


def point(clients: int, passed: bool, **figures: Any) -> Point:
    measured = Point(
        scenario="1ch-1hz", clients=clients, connected=clients, failed=0, open_after=clients,
        p50_ms=10.0, p99_ms=40.0, max_ms=200.0, latency_samples=100, updates_per_client_s=1.0,
        resyncs=0, bridge_cpu=0.5, bridge_rss=100 * 2**20, load_cpu=0.4, load_cpu_max=0.2,
        collector_cpu=0.01, machine_cpu=0.5, connect_s=1.0, passed=passed,
    )  # fmt: skip
    return replace(measured, **figures)


def test_clients_per_core_divides_the_best_count_by_the_cores_the_bridge_had() -> None:
    search = Search(start=2000, maximum=16000)
    search.record(2000, True)
    search.record(4000, False)
    search.record(3000, True)
    search.record(3500, False)
    points = [
        point(2000, True, bridge_cpu=0.3),
        point(4000, False, p99_ms=300, bridge_cpu=0.95),
        point(3000, True, bridge_cpu=0.6),
        point(3500, False, p99_ms=150, load_cpu_max=0.97),
    ]
    row = summarize(SCENARIOS[0], points, search, "converged")
    assert row["clients"] == 3000 and row["first_failure"] == 3500
    assert row["clients_per_core"] == 3000  # unpinned, 0.6 cores used: one core
    assert row["limited_by"] == "load side CPU"
    on_two = [replace(p, server_cores=[0, 1]) for p in points]
    assert summarize(SCENARIOS[0], on_two, search, "converged")["clients_per_core"] == 1500
    over_one = [replace(p, bridge_cpu=1.5) for p in points]
    assert summarize(SCENARIOS[0], over_one, search, "converged")["clients_per_core"] == 2000
    text = "\n".join(
        capacity_lines(
            {
                "settings": vars(CapacitySettings()),
                "maximum": 16000,
                "cpus": 2,
                "source_addresses": ["127.0.0.2"],
                "scenarios": [row],
            }
        )
    )
    assert "| 1 update/s, 1 channel | 3,000 | 3,500 | 60% | 100 MiB | 40.0 | 40% | 3,000 |" in text
    assert text.count("| 1ch-1hz |") == 4


def test_a_window_that_cannot_tell_is_disturbed() -> None:
    clean = point(3000, True, expected_per_client_s=1.0, server_cores=[0], core_cpu=[0.6, 0.5])
    assert clean.disturbance() == ""
    assert "late" in replace(clean, late_s=2.0).disturbance()
    assert "90 %" in replace(clean, updates_per_client_s=0.5).disturbance()
    busy = replace(clean, core_cpu=[0.95, 0.5])  # 0.45 of core 0 was not the bridge's
    assert busy.other_work_on_bridge_cores() == pytest.approx(0.45)
    assert busy.disturbance() == ""  # it passed all the same
    assert "other work took 45%" in replace(busy, passed=False).disturbance()
    unpinned = replace(clean, server_cores=[], core_cpu=[0.9, 0.9], passed=False)
    assert unpinned.other_work_on_bridge_cores() == pytest.approx(1.8 - 0.5 - 0.4 - 0.01)
    assert "other work" in unpinned.disturbance()


def test_what_limited_a_failing_point() -> None:
    failing = point(4000, False, p99_ms=300)
    assert limit_of(replace(failing, bridge_cpu=0.95)) == "bridge CPU"
    assert limit_of(replace(failing, machine_cpu=0.99)).startswith("machine CPU")
    assert limit_of(failing).startswith("bridge fan-out time")
    pinned = replace(failing, server_cores=[0], core_cpu=[0.5, 0.95], machine_cpu=0.72)
    assert limit_of(pinned).startswith("bridge fan-out time")  # core 1 busy, not with ours
    loaded = replace(pinned, load_cpu=0.8, collector_cpu=0.15)
    assert limit_of(loaded) == "load side CPU"
    assert limit_of(replace(loaded, bridge_cpu=0.95)) == "bridge CPU and load side CPU"
    assert limit_of(replace(failing, load_catch_up_s=3.0)) == "load side CPU"
    assert limit_of(replace(failing, disturbed="other work took 50% of a bridge core")) == (
        "undetermined (other work took 50% of a bridge core)"
    )
    assert limit_of(replace(failing, bridge_cpu=1.5, server_cores=[0, 1])).startswith("bridge fan")
    assert limit_of(replace(failing, connected=10)).startswith("connections")
    assert limit_of(None).startswith("none found")


@pytest.mark.skipif(sys.platform != "linux", reason="binds 127.0.0.2 and 127.0.0.3 (Linux)")
async def test_a_tiny_sweep_through_a_real_bridge_measures_clients_on_two_addresses() -> None:
    """Whether 20 clients pass depends on how busy the shared machine is; that every
    client connects, gets all 10 channels and is timed does not."""
    settings = CapacitySettings(
        budget_s=60, start=20, maximum=20, step=10, window_s=1.0, warmup_s=0.5,
        load_processes=2, latency_clients=10, source_addresses=2, scenarios=["10ch-1hz"],
    )  # fmt: skip
    result = await measure_capacity(settings, say=lambda _: None)
    (row,) = result["scenarios"]
    assert result["source_addresses"] == ["127.0.0.2", "127.0.0.3"]
    first = row["points"][0]
    assert first["clients"] == first["connected"] == first["open_after"] == 20
    assert first["latency_samples"] > 0 and first["p99_ms"] is not None
    assert first["updates_per_client_s"] > 5
    assert first["bridge_rss"] > 0 and first["bridge_cpu"] > 0
    assert row["clients"] in (0, 10, 20) and (row["clients"] == 20) == first["passed"]
