"""Subscribe against a real collector: snapshot first, then gapless updates of
the host source whose values agree with psutil."""

from __future__ import annotations

import time

import grpc
import psutil

from collector.series import HistogramData
from tests.collector.conftest import recording
from tests.support.processes import ServerProcess

HOST = "testhost"


async def test_host_source_starts_with_a_snapshot_then_updates_seq_by_one(
    channel: grpc.aio.Channel,
) -> None:
    async with recording(channel, [HOST]) as rec:
        await rec.wait_for(lambda: len(rec.of(HOST, "update")) >= 5, 20, "five host updates")
    first = rec.events[0]
    assert first.WhichOneof("event") == "snapshot"
    seqs = [first.snapshot.seq] + [e.update.seq for e in rec.of(HOST, "update")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    epochs = {first.snapshot.epoch} | {e.update.epoch for e in rec.of(HOST, "update")}
    assert len(epochs) == 1


async def test_host_values_agree_with_psutil(channel: grpc.aio.Channel) -> None:
    async with recording(channel, [HOST]) as rec:
        await rec.wait_for(
            lambda: (
                HOST in rec.replicas and rec.replicas[HOST].get("system_cpu_percent") is not None
            ),
            20,
            "a CPU reading",
        )
        replica = rec.replicas[HOST]
        assert replica.get("system_memory_bytes", state="total") == psutil.virtual_memory().total
        processes = replica.get("system_processes")
        assert isinstance(processes, float)
        assert abs(processes - len(psutil.pids())) <= max(20, len(psutil.pids()) // 5)
        cpu = replica.get("system_cpu_percent")
        assert isinstance(cpu, float) and 0 <= cpu <= 100
        for core in range(psutil.cpu_count() or 1):
            assert replica.get("system_cpu_percent", cpu=str(core)) is not None
        uptime = replica.get("system_uptime_seconds")
        assert isinstance(uptime, float)
        assert abs(uptime - (time.time() - psutil.boot_time())) < 30
        root = replica.get("system_disk_usage_bytes", mount="/", state="total")
        assert root == psutil.disk_usage("/").total
        assert replica.get("system_load_average", period="1m") is not None


async def test_rates_appear_for_every_counter(channel: grpc.aio.Channel) -> None:
    async with recording(channel, [HOST]) as rec:
        await rec.wait_for(lambda: len(rec.of(HOST, "update")) >= 2, 20, "two host updates")
        values = rec.replicas[HOST].by_key()
    totals = {k for k in values if k.name == "system_network_io_bytes_total"}
    rates = {k for k in values if k.name == "system_network_io_bytes_per_second"}
    assert totals and {k.labels for k in totals} == {k.labels for k in rates}
    for key in rates:
        rate = values[key]
        assert isinstance(rate, float) and rate >= 0
    assert not any(isinstance(v, HistogramData) for v in values.values())


async def test_an_update_carries_only_changed_series(channel: grpc.aio.Channel) -> None:
    async with recording(channel, [HOST]) as rec:
        await rec.wait_for(lambda: len(rec.of(HOST, "update")) >= 3, 20, "three host updates")
    snapshot = rec.of(HOST, "snapshot")[0].snapshot
    memory_total = next(
        s.id
        for s in snapshot.series
        if s.name == "system_memory_bytes" and s.labels[0].value == "total"
    )
    for event in rec.of(HOST, "update"):
        assert memory_total not in event.update.values.ids
        assert len(event.update.values.ids) < len(snapshot.series)


async def test_subscribers_share_one_stream_position(shared_collector: ServerProcess) -> None:
    async with (
        grpc.aio.insecure_channel(shared_collector.addresses["grpc"]) as a,
        grpc.aio.insecure_channel(shared_collector.addresses["grpc"]) as b,
        recording(a, [HOST]) as first,
        recording(b, [HOST]) as second,
    ):
        await first.wait_for(lambda: len(first.of(HOST, "update")) >= 3, 20, "updates on a")
        await second.wait_for(lambda: len(second.of(HOST, "update")) >= 3, 20, "updates on b")
        common = {e.update.seq for e in first.of(HOST, "update")} & {
            e.update.seq for e in second.of(HOST, "update")
        }
        assert common
        seq = max(common)
        one = next(e for e in first.of(HOST, "update") if e.update.seq == seq)
        two = next(e for e in second.of(HOST, "update") if e.update.seq == seq)
        assert one.SerializeToString() == two.SerializeToString()
