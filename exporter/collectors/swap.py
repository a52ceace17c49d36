"""Swap: `system_swap_total_bytes`, `system_swap_used_bytes`, and on Linux the bytes swapped in and out.

On Windows psutil reports the page file's size and use, and always 0 for the swapped-in and
swapped-out bytes (Windows has no such counters), so those two counters are left out there rather
than exported as a misleading constant 0.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from exporter.exposition import CounterMetricFamily, GaugeMetricFamily, Metric


class SwapCollector:
    def __init__(self, psutil_module: Any, platform: str = sys.platform) -> None:
        self._psutil = psutil_module
        self._windows = platform.startswith("win")

    def collect(self) -> Iterable[Metric]:
        swap = self._psutil.swap_memory()
        yield GaugeMetricFamily(
            "system_swap_total_bytes", "Swap (page file) size, in bytes.", value=float(swap.total)
        )
        yield GaugeMetricFamily(
            "system_swap_used_bytes", "Swap (page file) in use, in bytes.", value=float(swap.used)
        )
        if not self._windows:
            yield CounterMetricFamily(
                "system_swap_in_bytes", "Bytes swapped in from disk since boot.", value=float(swap.sin)
            )
            yield CounterMetricFamily(
                "system_swap_out_bytes", "Bytes swapped out to disk since boot.", value=float(swap.sout)
            )
