"""Disk I/O per device: bytes and operations read and written, and (Linux) time spent busy.

`system_disk_read_bytes_total{device}`, `system_disk_written_bytes_total{device}`,
`system_disk_reads_completed_total{device}`, `system_disk_writes_completed_total{device}`,
`system_disk_io_time_seconds_total{device}` (Linux only: psutil's `busy_time`).
Devices are whole disks as psutil names them (`sda`, `nvme0n1`, `PhysicalDrive0` on Windows); RAM
disks, loop devices and floppies are left out. A machine PC without disk counters (psutil returns
nothing in some virtual machines and containers) reports empty families.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any

from exporter.exposition import CounterMetricFamily, Metric

_EXCLUDED_DEVICES = re.compile(r"^(z?ram|loop|fd)\d+$")


class DiskIOCollector:
    def __init__(self, psutil_module: Any, platform: str = sys.platform) -> None:
        self._psutil = psutil_module
        self._busy_time = not platform.startswith("win")  # psutil has no busy_time on Windows

    def collect(self) -> Iterable[Metric]:
        families = {
            "read_bytes": CounterMetricFamily(
                "system_disk_read_bytes", "Bytes read from the disk.", labels=["device"]
            ),
            "write_bytes": CounterMetricFamily(
                "system_disk_written_bytes", "Bytes written to the disk.", labels=["device"]
            ),
            "read_count": CounterMetricFamily(
                "system_disk_reads_completed", "Reads completed by the disk.", labels=["device"]
            ),
            "write_count": CounterMetricFamily(
                "system_disk_writes_completed", "Writes completed by the disk.", labels=["device"]
            ),
        }
        busy = CounterMetricFamily(
            "system_disk_io_time_seconds", "Time the disk spent doing I/O, in seconds.", labels=["device"]
        )
        # nowrap=False: the kernel's counters as they are, as node_exporter reports them (a wrap
        # reads as a counter reset to Prometheus); psutil's wrap bookkeeping costs a third more.
        counters = self._psutil.disk_io_counters(perdisk=True, nowrap=False) or {}
        for device in sorted(counters):
            if _EXCLUDED_DEVICES.match(device):
                continue
            counter = counters[device]
            for field, family in families.items():
                family.add_metric([device], float(getattr(counter, field)))
            busy_ms = getattr(counter, "busy_time", None)
            if self._busy_time and busy_ms is not None:
                busy.add_metric([device], float(busy_ms) / 1000.0)
        yield from families.values()
        if self._busy_time:
            yield busy
