"""System figures through psutil, cross-platform (prometheus-client's own process collector is Linux-only).

Families: `system_boot_time_seconds`, `system_cpu_usage_ratio`, `system_memory_total_bytes`,
`system_memory_available_bytes`, `system_disk_total_bytes{mountpoint}`,
`system_disk_free_bytes{mountpoint}`, `system_network_receive_bytes_total{interface}`,
`system_network_transmit_bytes_total{interface}`, and for the exporter's own process
`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_start_time_seconds`.

The CPU ratio is the busy share of CPU time since this collector's previous scrape, computed
from `psutil.cpu_times()` (non-blocking). `psutil.cpu_percent(None)` keeps its "previous call"
per thread (or globally in older psutil), and every scrape runs in a new HTTP thread while the demo
runs dozens of exporters in one process, so its answer would be measured against someone else's call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import psutil
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

# CPU time fields that are already counted inside `user` (Linux) and must not be added twice.
_INCLUDED_ELSEWHERE = ("guest", "guest_nice")
_IDLE = ("idle", "iowait")


class SystemCollector:
    """Yields the system_* and process_* families from `psutil_module` (psutil or a test fake).

    A disk that cannot be read (a CD drive without a disc, a mount that vanished) is skipped.
    """

    def __init__(self, psutil_module: Any = psutil, pid: int | None = None) -> None:
        self._psutil = psutil_module
        self._process = psutil_module.Process(pid)
        self._lock = threading.Lock()
        self._previous_cpu = _cpu_split(psutil_module.cpu_times())
        self._ratio = 0.0

    def collect(self) -> Iterable[Metric]:
        ps = self._psutil
        yield GaugeMetricFamily(
            "system_boot_time_seconds", "Unix time when the machine PC booted.", value=float(ps.boot_time())
        )
        yield GaugeMetricFamily(
            "system_cpu_usage_ratio",
            "Share of CPU time spent busy since the previous scrape (0-1, all cores).",
            value=self._cpu_ratio(),
        )
        memory = ps.virtual_memory()
        yield GaugeMetricFamily(
            "system_memory_total_bytes", "Physical memory, in bytes.", value=float(memory.total)
        )
        yield GaugeMetricFamily(
            "system_memory_available_bytes",
            "Memory available to programs without swapping, in bytes.",
            value=float(memory.available),
        )
        yield from self._disks()
        yield from self._network()
        yield from self._own_process()

    def summary(self, now: float) -> dict[str, float | None]:
        """The machine PC's health as push mode sends it (`push_wire.SYSTEM_FIELDS`): uptime and
        the CPU, memory and fullest disk's used shares. The CPU share is measured since this
        collector's previous call, so push keeps a collector of its own. A figure psutil cannot
        give is None."""
        ps = self._psutil
        boot = float(ps.boot_time())
        memory = ps.virtual_memory()
        used: list[float] = []
        for partition in ps.disk_partitions(all=False):
            try:
                usage = ps.disk_usage(str(partition.mountpoint))
            except (OSError, RuntimeError):
                continue
            if usage.total > 0:
                used.append(min(1.0, max(0.0, 1 - float(usage.free) / float(usage.total))))
        total = float(memory.total)
        return {
            "uptime_seconds": max(0.0, now - boot) if boot > 0 else None,
            "cpu_usage_ratio": self._cpu_ratio(),
            "memory_used_ratio": min(1.0, max(0.0, 1 - float(memory.available) / total))
            if total > 0
            else None,
            "disk_used_ratio": max(used) if used else None,
        }

    def _cpu_ratio(self) -> float:
        busy, total = _cpu_split(self._psutil.cpu_times())
        with self._lock:
            previous_busy, previous_total = self._previous_cpu
            elapsed = total - previous_total
            if elapsed > 0:  # two scrapes within one clock tick keep the last figure
                self._ratio = min(1.0, max(0.0, (busy - previous_busy) / elapsed))
                self._previous_cpu = (busy, total)
            return self._ratio

    def _disks(self) -> Iterable[Metric]:
        total = GaugeMetricFamily(
            "system_disk_total_bytes", "Size of the file system, in bytes.", labels=["mountpoint"]
        )
        free = GaugeMetricFamily(
            "system_disk_free_bytes", "Free space on the file system, in bytes.", labels=["mountpoint"]
        )
        seen: set[str] = set()
        for partition in self._psutil.disk_partitions(all=False):
            mountpoint = str(partition.mountpoint)
            if mountpoint in seen:
                continue
            try:
                usage = self._psutil.disk_usage(mountpoint)
            except (OSError, RuntimeError):
                continue
            seen.add(mountpoint)
            total.add_metric([mountpoint], float(usage.total))
            free.add_metric([mountpoint], float(usage.free))
        yield total
        yield free

    def _network(self) -> Iterable[Metric]:
        receive = CounterMetricFamily(
            "system_network_receive_bytes", "Bytes received by the network interface.", labels=["interface"]
        )
        transmit = CounterMetricFamily(
            "system_network_transmit_bytes", "Bytes sent by the network interface.", labels=["interface"]
        )
        counters = self._psutil.net_io_counters(pernic=True) or {}
        for interface in sorted(counters):
            receive.add_metric([interface], float(counters[interface].bytes_recv))
            transmit.add_metric([interface], float(counters[interface].bytes_sent))
        yield receive
        yield transmit

    def _own_process(self) -> Iterable[Metric]:
        process = self._process
        with process.oneshot():
            cpu = process.cpu_times()
            rss = process.memory_info().rss
            started = process.create_time()
        yield CounterMetricFamily(
            "process_cpu_seconds",
            "CPU time used by the exporter process, in seconds.",
            value=cpu.user + cpu.system,
        )
        yield GaugeMetricFamily(
            "process_resident_memory_bytes",
            "Resident memory of the exporter process, in bytes.",
            value=float(rss),
        )
        yield GaugeMetricFamily(
            "process_start_time_seconds", "Unix time when the exporter process started.", value=float(started)
        )


def _cpu_split(times: Any) -> tuple[float, float]:
    """(busy seconds, total seconds) of a psutil cpu_times() result."""
    fields = getattr(times, "_fields", ())
    values = {name: float(getattr(times, name)) for name in fields}
    total = sum(v for name, v in values.items() if name not in _INCLUDED_ELSEWHERE)
    idle = sum(values.get(name, 0.0) for name in _IDLE)
    return total - idle, total
