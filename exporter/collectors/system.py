"""The system collectors, one module each, built from the `collectors.system` switches.

Each is a prometheus-client collector reading a psutil-like module at scrape time; `platform`
(`sys.platform`) picks the Windows or the Linux path where they differ, so a test can run the
Windows path here with a fake psutil. The names are the `collector` label of
`millwatch_collector_success` / `millwatch_collector_duration_seconds`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import psutil

from exporter.collectors.boot import BootTimeCollector
from exporter.collectors.cpu import CpuCollector
from exporter.collectors.diskio import DiskIOCollector
from exporter.collectors.filesystem import FilesystemCollector
from exporter.collectors.loadavg import LoadAverageCollector
from exporter.collectors.memory import MemoryCollector
from exporter.collectors.network import NetworkCollector
from exporter.collectors.process import ProcessCollector
from exporter.collectors.swap import SwapCollector
from exporter.config import CollectorsConfig
from exporter.exposition import Collector


def system_collectors(
    switches: CollectorsConfig | None = None,
    psutil_module: Any = psutil,
    platform: str = sys.platform,
    pid: int | None = None,
) -> dict[str, Collector]:
    """The enabled system collectors by name, in exposition order (all of them by default)."""
    switches = switches or CollectorsConfig()
    builders: dict[str, Callable[[], Collector]] = {
        "boot": lambda: BootTimeCollector(psutil_module),
        "cpu": lambda: CpuCollector(psutil_module),
        "loadavg": lambda: LoadAverageCollector(psutil_module, platform),
        "memory": lambda: MemoryCollector(psutil_module),
        "swap": lambda: SwapCollector(psutil_module, platform),
        "filesystem": lambda: FilesystemCollector(psutil_module, platform),
        "diskio": lambda: DiskIOCollector(psutil_module, platform),
        "network": lambda: NetworkCollector(psutil_module),
        "process": lambda: ProcessCollector(psutil_module, pid, platform),
    }
    if platform.startswith("win"):
        del builders["loadavg"]  # Windows keeps no load average (see loadavg.py)
    return {name: build() for name, build in builders.items() if switches.enabled(name)}
