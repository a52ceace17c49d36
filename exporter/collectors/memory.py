"""Memory: `system_memory_total_bytes`, `system_memory_available_bytes` (same meaning on every OS)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exporter.exposition import GaugeMetricFamily, Metric


class MemoryCollector:
    def __init__(self, psutil_module: Any) -> None:
        self._psutil = psutil_module

    def collect(self) -> Iterable[Metric]:
        memory = self._psutil.virtual_memory()
        yield GaugeMetricFamily(
            "system_memory_total_bytes", "Physical memory, in bytes.", value=float(memory.total)
        )
        yield GaugeMetricFamily(
            "system_memory_available_bytes",
            "Memory available to programs without swapping, in bytes.",
            value=float(memory.available),
        )
