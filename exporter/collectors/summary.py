"""The machine PC's health in four figures, as push mode sends it (`push_wire.SYSTEM_FIELDS`).

The same figures the central host derives from a scrape's system_* samples: uptime, and the used
shares of CPU, memory and the fullest real file system. The CPU share is measured since this
object's previous call, so push keeps a baseline of its own, apart from the scrapes' collector.
"""

from __future__ import annotations

import sys
from typing import Any

import psutil

from exporter.collectors.cpu import CpuCollector
from exporter.collectors.filesystem import is_real_file_system


class SystemSummary:
    def __init__(self, psutil_module: Any = psutil, platform: str = sys.platform) -> None:
        self._psutil = psutil_module
        self._platform = platform
        self._cpu = CpuCollector(psutil_module)

    def __call__(self, now: float) -> dict[str, float | None]:
        """The summary at `now`; a figure psutil cannot give is None."""
        ps = self._psutil
        boot = float(ps.boot_time())
        memory = ps.virtual_memory()
        total = float(memory.total)
        return {
            "uptime_seconds": max(0.0, now - boot) if boot > 0 else None,
            "cpu_usage_ratio": self._cpu.usage_ratio(),
            "memory_used_ratio": _share(total - float(memory.available), total),
            "disk_used_ratio": self._fullest_disk(),
        }

    def _fullest_disk(self) -> float | None:
        used = []
        for partition in self._psutil.disk_partitions(all=False):
            if not is_real_file_system(partition, self._platform):
                continue
            try:
                usage = self._psutil.disk_usage(str(partition.mountpoint))
            except (OSError, RuntimeError):
                continue  # a CD drive without a disc, a mount that vanished
            share = _share(float(usage.total) - float(usage.free), float(usage.total))
            if share is not None:
                used.append(share)
        return max(used) if used else None


def _share(part: float, whole: float) -> float | None:
    return min(1.0, max(0.0, part / whole)) if whole > 0 else None
