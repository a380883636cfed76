"""Reads the host with psutil into `HostReadings` (the sampler does the rest).

Bounds: at most MAX_MOUNTS file systems, MAX_DISKS disks and MAX_INTERFACES
network interfaces, the first ones in the order psutil lists them; pseudo file
systems (proc, tmpfs, overlays of container runtimes' bookkeeping...) and
loop/ram disks are skipped. A reading that fails (a mount that vanished) is
left out of that sample, never fatal.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import psutil

from collector.sampler import CpuTimes, DiskUsage, HostReadings, IoCounters

__all__ = ["MAX_DISKS", "MAX_INTERFACES", "MAX_MOUNTS", "read_host"]

log = logging.getLogger(__name__)

MAX_MOUNTS = 32
MAX_DISKS = 64
MAX_INTERFACES = 64

PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
        "devpts", "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs",
        "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "squashfs", "sysfs",
        "tmpfs", "tracefs",
    }
)  # fmt: skip
SKIPPED_DISK_PREFIXES = ("loop", "ram")


def read_host() -> HostReadings:
    vm = psutil.virtual_memory()
    memory = {"total": vm.total, "available": vm.available, "used": vm.used, "free": vm.free}
    for extra in ("cached", "buffers"):
        if hasattr(vm, extra):
            memory[extra] = int(getattr(vm, extra))
    sw = psutil.swap_memory()
    try:
        load: tuple[float, float, float] | None = psutil.getloadavg()
    except (AttributeError, OSError):
        load = None
    return HostReadings(
        monotonic=time.monotonic(),
        time_unix=time.time(),
        boot_time_unix=psutil.boot_time(),
        cpu_total=_cpu(psutil.cpu_times()),
        cpu_per_core=tuple(_cpu(t) for t in psutil.cpu_times(percpu=True)),
        load_average=load,
        memory=memory,
        memory_percent=vm.percent,
        swap={"total": sw.total, "used": sw.used, "free": sw.free},
        swap_percent=sw.percent,
        disks=_disks(),
        disk_io=_disk_io(),
        network_io=_network_io(),
        processes=len(psutil.pids()),
    )


def _cpu(times: object) -> CpuTimes:
    """psutil's definition: busy = total - idle (- iowait on Linux); guest time is
    already inside user/nice on Linux, so it is not counted twice."""
    values = times._asdict()  # type: ignore[attr-defined]
    total = sum(values.values())
    if sys.platform.startswith("linux"):
        total -= values.get("guest", 0.0) + values.get("guest_nice", 0.0)
    busy = total - values.get("idle", 0.0) - values.get("iowait", 0.0)
    return CpuTimes(busy=busy, total=total)


def _disks() -> tuple[DiskUsage, ...]:
    disks: list[DiskUsage] = []
    seen_devices: set[str] = set()
    for part in psutil.disk_partitions(all=False):
        if len(disks) >= MAX_MOUNTS:
            break
        if part.fstype in PSEUDO_FILESYSTEMS or not part.fstype:
            continue
        if part.device in seen_devices and part.mountpoint != "/":
            continue  # a bind mount of a device already counted
        if not os.path.isdir(part.mountpoint):
            continue
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError as exc:
            log.debug("skipping mount %s: %s", part.mountpoint, exc)
            continue
        seen_devices.add(part.device)
        disks.append(DiskUsage(part.mountpoint, usage.total, usage.used, usage.free, usage.percent))
    return tuple(disks)


def _disk_io() -> dict[str, IoCounters]:
    try:
        counters = psutil.disk_io_counters(perdisk=True) or {}
    except (OSError, RuntimeError):
        return {}
    out: dict[str, IoCounters] = {}
    for name, c in counters.items():
        if name.startswith(SKIPPED_DISK_PREFIXES):
            continue
        if len(out) >= MAX_DISKS:
            break
        out[name] = IoCounters(c.read_bytes, c.write_bytes, c.read_count, c.write_count)
    return out


def _network_io() -> dict[str, IoCounters]:
    try:
        counters = psutil.net_io_counters(pernic=True)
    except OSError:
        return {}
    out: dict[str, IoCounters] = {}
    for name, c in list(counters.items())[:MAX_INTERFACES]:
        out[name] = IoCounters(c.bytes_recv, c.bytes_sent, c.packets_recv, c.packets_sent)
    return out
