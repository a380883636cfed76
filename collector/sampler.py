"""Turns host readings into the host source's samples. Pure: the readings
(taken by `collector.host` from psutil) and the previous readings go in,
samples come out, so tests drive it with made-up numbers.

Rules:
- Gauges and counters come from one reading. CPU percentages and per-second
  rates come from two: (now - previous) / elapsed, so the first sample has
  neither, and a counter that went backwards (device reset) or a zero elapsed
  time gives no rate for that interval.
- The returned list is the host source's whole state: a series missing from it
  (an unmounted disk, a removed interface) is removed from the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from collector import host_series as hs
from collector.series import SeriesKey, SeriesSample

__all__ = ["CpuTimes", "DiskUsage", "HostReadings", "IoCounters", "sample"]


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Busy and total CPU seconds since boot (psutil's own definition of busy)."""

    busy: float
    total: float


@dataclass(frozen=True, slots=True)
class DiskUsage:
    mount: str
    total: int
    used: int
    free: int
    percent: float


@dataclass(frozen=True, slots=True)
class IoCounters:
    """read/write for disks, receive/transmit for network interfaces."""

    bytes_in: int
    bytes_out: int
    packets_in: int = 0
    packets_out: int = 0


@dataclass(frozen=True, slots=True)
class HostReadings:
    """One reading of the host. `monotonic` times rates; `time_unix` is wall time."""

    monotonic: float
    time_unix: float
    boot_time_unix: float
    cpu_total: CpuTimes
    cpu_per_core: tuple[CpuTimes, ...] = ()
    load_average: tuple[float, float, float] | None = None
    memory: Mapping[str, int] = field(default_factory=dict)
    memory_percent: float = 0.0
    swap: Mapping[str, int] = field(default_factory=dict)
    swap_percent: float = 0.0
    disks: tuple[DiskUsage, ...] = ()
    disk_io: Mapping[str, IoCounters] = field(default_factory=dict)
    network_io: Mapping[str, IoCounters] = field(default_factory=dict)
    processes: int = 0


def sample(readings: HostReadings, previous: HostReadings | None) -> list[SeriesSample]:
    out = _Samples(boot_ms=int(readings.boot_time_unix * 1000))
    r = readings
    elapsed = r.monotonic - previous.monotonic if previous is not None else 0.0

    if previous is not None:
        out.gauge(hs.CPU_PERCENT, _cpu_percent(previous.cpu_total, r.cpu_total))
        if len(previous.cpu_per_core) == len(r.cpu_per_core):
            for i, (before, now) in enumerate(
                zip(previous.cpu_per_core, r.cpu_per_core, strict=True)
            ):
                out.gauge(hs.CPU_PERCENT, _cpu_percent(before, now), cpu=str(i))
    if r.load_average is not None:
        for period, value in zip(("1m", "5m", "15m"), r.load_average, strict=True):
            out.gauge(hs.LOAD_AVERAGE, value, period=period)
    for state, value in r.memory.items():
        out.gauge(hs.MEMORY_BYTES, value, state=state)
    out.gauge(hs.MEMORY_PERCENT, r.memory_percent)
    for state, value in r.swap.items():
        out.gauge(hs.SWAP_BYTES, value, state=state)
    out.gauge(hs.SWAP_PERCENT, r.swap_percent)
    for disk in r.disks:
        for state, value in (("total", disk.total), ("used", disk.used), ("free", disk.free)):
            out.gauge(hs.DISK_USAGE_BYTES, value, mount=disk.mount, state=state)
        out.gauge(hs.DISK_USAGE_PERCENT, disk.percent, mount=disk.mount)

    before_disk = previous.disk_io if previous is not None else {}
    for device, io in r.disk_io.items():
        for direction, current, then in (
            ("read", io.bytes_in, _get(before_disk, device, "bytes_in")),
            ("write", io.bytes_out, _get(before_disk, device, "bytes_out")),
        ):
            labels = {"device": device, "direction": direction}
            out.counter(hs.DISK_IO_BYTES_TOTAL, current, **labels)
            out.rate(hs.DISK_IO_BYTES_PER_SECOND, current, then, elapsed, **labels)

    before_net = previous.network_io if previous is not None else {}
    for interface, io in r.network_io.items():
        for direction, current, then, packets in (
            ("receive", io.bytes_in, _get(before_net, interface, "bytes_in"), io.packets_in),
            ("transmit", io.bytes_out, _get(before_net, interface, "bytes_out"), io.packets_out),
        ):
            labels = {"interface": interface, "direction": direction}
            out.counter(hs.NETWORK_IO_BYTES_TOTAL, current, **labels)
            out.counter(hs.NETWORK_IO_PACKETS_TOTAL, packets, **labels)
            out.rate(hs.NETWORK_IO_BYTES_PER_SECOND, current, then, elapsed, **labels)

    out.gauge(hs.PROCESSES, r.processes)
    out.gauge(hs.UPTIME_SECONDS, max(r.time_unix - r.boot_time_unix, 0.0))
    return out.samples


def _cpu_percent(before: CpuTimes, now: CpuTimes) -> float:
    total = now.total - before.total
    if total <= 0:
        return 0.0
    return min(max((now.busy - before.busy) / total * 100.0, 0.0), 100.0)


def _get(counters: Mapping[str, IoCounters], name: str, attr: str) -> int | None:
    io = counters.get(name)
    return None if io is None else int(getattr(io, attr))


@dataclass
class _Samples:
    boot_ms: int
    samples: list[SeriesSample] = field(default_factory=list)

    def gauge(self, series: hs.HostSeries, value: float, **labels: str) -> None:
        self.samples.append(
            SeriesSample(
                SeriesKey.of(series.name, labels.items()), series.descriptor(), float(value)
            )
        )

    def counter(self, series: hs.HostSeries, value: float, **labels: str) -> None:
        self.samples.append(
            SeriesSample(
                SeriesKey.of(series.name, labels.items()),
                series.descriptor(self.boot_ms),
                float(value),
            )
        )

    def rate(
        self, series: hs.HostSeries, now: int, then: int | None, elapsed: float, **labels: str
    ) -> None:
        if then is None or elapsed <= 0 or now < then:
            return
        self.gauge(series, (now - then) / elapsed, **labels)
