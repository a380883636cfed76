"""The pure sampler, driven with made-up readings."""

from __future__ import annotations

from collector import host_series as hs
from collector.sampler import CpuTimes, DiskUsage, HostReadings, IoCounters, sample
from collector.series import COUNTER, SeriesKey, Value


def readings(t: float, *, busy: float, net_in: int, disk_read: int) -> HostReadings:
    return HostReadings(
        monotonic=t,
        time_unix=1_000_000 + t,
        boot_time_unix=999_000,
        cpu_total=CpuTimes(busy=busy, total=t * 2),
        cpu_per_core=(CpuTimes(busy, t), CpuTimes(0, t)),
        load_average=(0.5, 0.25, 0.125),
        memory={"total": 1000, "available": 600, "used": 400, "free": 500},
        memory_percent=40.0,
        swap={"total": 0, "used": 0, "free": 0},
        disks=(DiskUsage("/", 100, 30, 70, 30.0),),
        disk_io={"vda": IoCounters(disk_read, 0)},
        network_io={"eth0": IoCounters(net_in, 50, 7, 3)},
        processes=42,
    )


def by_key(r: HostReadings, previous: HostReadings | None = None) -> dict[SeriesKey, Value]:
    return {s.key: s.value for s in sample(r, previous) if s.value is not None}


def key(series: hs.HostSeries, **labels: str) -> SeriesKey:
    return SeriesKey.of(series.name, labels.items())


def test_first_sample_has_gauges_and_counters_but_no_rates_or_cpu() -> None:
    values = by_key(readings(10, busy=5, net_in=100, disk_read=0))
    assert values[key(hs.MEMORY_BYTES, state="total")] == 1000
    assert values[key(hs.LOAD_AVERAGE, period="15m")] == 0.125
    assert values[key(hs.NETWORK_IO_BYTES_TOTAL, interface="eth0", direction="receive")] == 100
    assert values[key(hs.DISK_USAGE_PERCENT, mount="/")] == 30.0
    assert values[key(hs.PROCESSES)] == 42
    assert values[key(hs.UPTIME_SECONDS)] == 1010
    assert not any(k.name.endswith("_per_second") for k in values)
    assert key(hs.CPU_PERCENT) not in values


def test_rates_and_cpu_come_from_two_readings() -> None:
    before = readings(10, busy=5, net_in=100, disk_read=1000)
    after = readings(12, busy=6, net_in=300, disk_read=5000)
    values = by_key(after, before)
    rate = key(hs.NETWORK_IO_BYTES_PER_SECOND, interface="eth0", direction="receive")
    assert values[rate] == 100.0
    assert values[key(hs.DISK_IO_BYTES_PER_SECOND, device="vda", direction="read")] == 2000.0
    assert values[key(hs.CPU_PERCENT)] == 25.0  # 1 busy second of 4 total
    assert values[key(hs.CPU_PERCENT, cpu="0")] == 50.0
    assert values[key(hs.CPU_PERCENT, cpu="1")] == 0.0


def test_a_counter_that_went_backwards_gets_no_rate() -> None:
    before = readings(10, busy=5, net_in=500, disk_read=0)
    after = readings(11, busy=5, net_in=100, disk_read=0)
    values = by_key(after, before)
    assert key(hs.NETWORK_IO_BYTES_PER_SECOND, interface="eth0", direction="receive") not in values
    assert key(hs.NETWORK_IO_BYTES_PER_SECOND, interface="eth0", direction="transmit") in values


def test_counters_start_at_boot() -> None:
    samples = sample(readings(10, busy=5, net_in=100, disk_read=0), None)
    counters = [s for s in samples if s.descriptor.kind == COUNTER]
    assert counters and all(s.descriptor.start_time_unix_ms == 999_000_000 for s in counters)


def test_every_series_name_is_a_documented_host_series() -> None:
    documented = {s.name: s for s in hs.ALL}
    before = readings(10, busy=5, net_in=100, disk_read=0)
    for s in sample(readings(11, busy=6, net_in=200, disk_read=10), before):
        series = documented[s.key.name]
        assert (s.descriptor.kind, s.descriptor.unit) == (series.kind, series.unit)
