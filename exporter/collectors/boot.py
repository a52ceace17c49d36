"""Boot time: `system_boot_time_seconds` (the central side shows the machine PC's uptime from it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exporter.exposition import GaugeMetricFamily, Metric


class BootTimeCollector:
    def __init__(self, psutil_module: Any) -> None:
        # Read once: the boot time does not change while the exporter runs, and reading it again
        # at every scrape (all of /proc/stat on Linux) is work a scrape's latency pays for.
        self._boot_time = float(psutil_module.boot_time())

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "system_boot_time_seconds", "Unix time when the machine PC booted.", value=self._boot_time
        )
