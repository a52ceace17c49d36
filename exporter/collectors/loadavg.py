"""Load average: `system_load1`, `system_load5`, `system_load15`, where the OS keeps one.

Linux and the other Unixes keep a load average; Windows does not. psutil emulates one on Windows
with a background thread that samples the processor queue every 5 s and reports zeros for the first
minutes; a number that looks like a load average but is not one would mislead, so on Windows the
collector is not registered at all (see system.py) and exports nothing if it is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from exporter.exposition import GaugeMetricFamily, Metric


class LoadAverageCollector:
    def __init__(self, psutil_module: Any, platform: str = sys.platform) -> None:
        self._psutil = psutil_module
        self._available = not platform.startswith("win") and hasattr(psutil_module, "getloadavg")

    def collect(self) -> Iterable[Metric]:
        if not self._available:
            return
        one, five, fifteen = self._psutil.getloadavg()
        for name, value, span in (("load1", one, "1"), ("load5", five, "5"), ("load15", fifteen, "15")):
            yield GaugeMetricFamily(
                f"system_{name}", f"Load average over {span} minute(s).", value=float(value)
            )
