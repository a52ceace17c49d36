"""CPU: `system_cpu_seconds_total{mode}` (all cores summed), `system_cpu_count`, `system_cpu_usage_ratio`.

Modes are psutil's `cpu_times()` fields, which differ by platform: Linux has user, nice, system,
idle, iowait, irq, softirq, steal (guest and guest_nice are already inside user and nice, so they are
left out); Windows has user, system, idle, interrupt, dpc. Summed over cores to keep the series few
(node_exporter has one per core; a machine PC's SRE wants the machine's figure).

The ratio is the busy share of CPU time since this collector's previous scrape, computed from
`cpu_times()` (non-blocking). `psutil.cpu_percent(None)` keeps its "previous call" per thread (or
globally in older psutil), and every scrape runs in a new HTTP thread while the demo runs dozens of
exporters in one process, so its answer would be measured against someone else's call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from exporter.exposition import CounterMetricFamily, GaugeMetricFamily, Metric

# CPU time fields that are already counted inside `user`/`nice` (Linux) and must not be added twice.
_INCLUDED_ELSEWHERE = ("guest", "guest_nice")
_IDLE = ("idle", "iowait")


class CpuCollector:
    def __init__(self, psutil_module: Any) -> None:
        self._psutil = psutil_module
        self._lock = threading.Lock()
        self._previous = _cpu_split(psutil_module.cpu_times())
        self._ratio = 0.0

    def collect(self) -> Iterable[Metric]:
        times = self._psutil.cpu_times()
        seconds = CounterMetricFamily(
            "system_cpu_seconds",
            "CPU time spent in each mode since boot, all cores summed, in seconds.",
            labels=["mode"],
        )
        for mode, value in _modes(times).items():
            seconds.add_metric([mode], value)
        yield seconds
        count = self._psutil.cpu_count(logical=True)
        if count:
            yield GaugeMetricFamily("system_cpu_count", "Logical CPUs of the machine PC.", value=float(count))
        yield GaugeMetricFamily(
            "system_cpu_usage_ratio",
            "Share of CPU time spent busy since the previous scrape (0-1, all cores).",
            value=self._ratio_since_previous(times),
        )

    def usage_ratio(self) -> float:
        """The busy share of CPU time since this collector's previous reading (0-1, all cores)."""
        return self._ratio_since_previous(self._psutil.cpu_times())

    def _ratio_since_previous(self, times: Any) -> float:
        busy, total = _cpu_split(times)
        with self._lock:
            previous_busy, previous_total = self._previous
            elapsed = total - previous_total
            if elapsed > 0:  # two scrapes within one clock tick keep the last figure
                self._ratio = min(1.0, max(0.0, (busy - previous_busy) / elapsed))
                self._previous = (busy, total)
            return self._ratio


def _modes(times: Any) -> dict[str, float]:
    fields = getattr(times, "_fields", ())
    return {name: float(getattr(times, name)) for name in fields if name not in _INCLUDED_ELSEWHERE}


def _cpu_split(times: Any) -> tuple[float, float]:
    """(busy seconds, total seconds) of a psutil cpu_times() result."""
    values = _modes(times)
    total = sum(values.values())
    idle = sum(values.get(name, 0.0) for name in _IDLE)
    return total - idle, total
