"""The host source's series: names, kinds and units. The dashboard charts these
exact names; README.md "Host series" lists them too.

| name                               | kind    | unit | labels                                   |
|------------------------------------|---------|------|------------------------------------------|
| system_cpu_percent                 | gauge   | %    | none = all cores; cpu="0", "1", ...      |
| system_load_average                | gauge   | 1    | period="1m" / "5m" / "15m"               |
| system_memory_bytes                | gauge   | By   | state="total" / "available" / "used" /   |
|                                    |         |      | "free" (+ "cached", "buffers" on Linux)  |
| system_memory_percent              | gauge   | %    |                                          |
| system_swap_bytes                  | gauge   | By   | state="total" / "used" / "free"          |
| system_swap_percent                | gauge   | %    |                                          |
| system_disk_usage_bytes            | gauge   | By   | mount, state="total" / "used" / "free"   |
| system_disk_usage_percent          | gauge   | %    | mount                                    |
| system_disk_io_bytes_total         | counter | By   | device, direction="read" / "write"       |
| system_disk_io_bytes_per_second    | gauge   | By/s | device, direction="read" / "write"       |
| system_network_io_bytes_total      | counter | By   | interface, direction="receive"/"transmit"|
| system_network_io_bytes_per_second | gauge   | By/s | interface, direction="receive"/"transmit"|
| system_network_io_packets_total    | counter | 1    | interface, direction="receive"/"transmit"|
| system_processes                   | gauge   | 1    |                                          |
| system_uptime_seconds              | gauge   | s    |                                          |

CPU percentages and per-second rates need two readings, so the first sample
after start has neither. Counters count since boot (`start_time_unix_ms` =
boot time); a counter that went backwards (device reset) gets no rate for that
interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.series import COUNTER, GAUGE, Descriptor
from metrics_bridge.v1 import metrics_pb2

__all__ = ["ALL", "HostSeries"]


@dataclass(frozen=True, slots=True)
class HostSeries:
    name: str
    kind: metrics_pb2.MetricKind.ValueType
    unit: str
    description: str

    def descriptor(self, start_time_unix_ms: int = 0) -> Descriptor:
        return Descriptor(self.kind, self.unit, self.description, start_time_unix_ms)


CPU_PERCENT = HostSeries(
    "system_cpu_percent", GAUGE, "%", "CPU utilisation: all cores without labels, one core with cpu"
)
LOAD_AVERAGE = HostSeries("system_load_average", GAUGE, "1", "Run-queue load average over period")
MEMORY_BYTES = HostSeries("system_memory_bytes", GAUGE, "By", "Physical memory by state")
MEMORY_PERCENT = HostSeries("system_memory_percent", GAUGE, "%", "Physical memory in use")
SWAP_BYTES = HostSeries("system_swap_bytes", GAUGE, "By", "Swap space by state")
SWAP_PERCENT = HostSeries("system_swap_percent", GAUGE, "%", "Swap space in use")
DISK_USAGE_BYTES = HostSeries(
    "system_disk_usage_bytes", GAUGE, "By", "File system space by mount and state"
)
DISK_USAGE_PERCENT = HostSeries(
    "system_disk_usage_percent", GAUGE, "%", "File system space in use by mount"
)
DISK_IO_BYTES_TOTAL = HostSeries(
    "system_disk_io_bytes_total", COUNTER, "By", "Bytes read from / written to a disk since boot"
)
DISK_IO_BYTES_PER_SECOND = HostSeries(
    "system_disk_io_bytes_per_second", GAUGE, "By/s", "Disk read / write rate"
)
NETWORK_IO_BYTES_TOTAL = HostSeries(
    "system_network_io_bytes_total", COUNTER, "By", "Bytes received / sent since boot"
)
NETWORK_IO_BYTES_PER_SECOND = HostSeries(
    "system_network_io_bytes_per_second", GAUGE, "By/s", "Network receive / transmit rate"
)
NETWORK_IO_PACKETS_TOTAL = HostSeries(
    "system_network_io_packets_total", COUNTER, "1", "Packets received / sent since boot"
)
PROCESSES = HostSeries("system_processes", GAUGE, "1", "Number of processes")
UPTIME_SECONDS = HostSeries("system_uptime_seconds", GAUGE, "s", "Time since boot")

ALL = (
    CPU_PERCENT,
    LOAD_AVERAGE,
    MEMORY_BYTES,
    MEMORY_PERCENT,
    SWAP_BYTES,
    SWAP_PERCENT,
    DISK_USAGE_BYTES,
    DISK_USAGE_PERCENT,
    DISK_IO_BYTES_TOTAL,
    DISK_IO_BYTES_PER_SECOND,
    NETWORK_IO_BYTES_TOTAL,
    NETWORK_IO_BYTES_PER_SECOND,
    NETWORK_IO_PACKETS_TOTAL,
    PROCESSES,
    UPTIME_SECONDS,
)
