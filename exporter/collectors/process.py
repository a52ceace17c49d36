"""The exporter's own process, cross-platform (prometheus-client's process collector is Linux-only).

`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
`process_start_time_seconds`, `process_threads`, and the open handles: `process_open_fds` on Linux
and other Unixes (file descriptors), `process_open_handles` on Windows (kernel handles).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from exporter.exposition import CounterMetricFamily, GaugeMetricFamily, Metric


class ProcessCollector:
    def __init__(self, psutil_module: Any, pid: int | None = None, platform: str = sys.platform) -> None:
        self._process = psutil_module.Process(pid)
        self._windows = platform.startswith("win")
        self._started = float(self._process.create_time())  # fixed for the life of the process

    def collect(self) -> Iterable[Metric]:
        process = self._process
        with process.oneshot():
            cpu = process.cpu_times()
            memory = process.memory_info()
            threads = process.num_threads()
            handles = process.num_handles() if self._windows else process.num_fds()
        yield CounterMetricFamily(
            "process_cpu_seconds",
            "CPU time used by the exporter process, in seconds.",
            value=cpu.user + cpu.system,
        )
        yield GaugeMetricFamily(
            "process_resident_memory_bytes",
            "Resident memory of the exporter process, in bytes.",
            value=float(memory.rss),
        )
        yield GaugeMetricFamily(
            "process_virtual_memory_bytes",
            "Virtual memory of the exporter process, in bytes.",
            value=float(memory.vms),
        )
        yield GaugeMetricFamily(
            "process_start_time_seconds", "Unix time when the exporter process started.", value=self._started
        )
        yield GaugeMetricFamily("process_threads", "Threads of the exporter process.", value=float(threads))
        if self._windows:
            yield GaugeMetricFamily(
                "process_open_handles", "Kernel handles open in the exporter process.", value=float(handles)
            )
        else:
            yield GaugeMetricFamily(
                "process_open_fds", "File descriptors open in the exporter process.", value=float(handles)
            )
