"""Boot time: `system_boot_time_seconds` (the central side shows the machine PC's uptime from it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exporter.exposition import GaugeMetricFamily, Metric


class BootTimeCollector:
    def __init__(self, psutil_module: Any) -> None:
        self._psutil = psutil_module

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "system_boot_time_seconds",
            "Unix time when the machine PC booted.",
            value=float(self._psutil.boot_time()),
        )
