"""Run several collectors as one, so a failure in one never breaks the scrape.

Like node_exporter's `node_scrape_collector_*`, each scrape reports per collector
`millwatch_collector_success` (1/0) and `millwatch_collector_duration_seconds`. The collectors are
held in one place so each meta family appears once in the exposition, with one sample per collector.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

from exporter.exposition import Collector, GaugeMetricFamily, Metric

log = logging.getLogger(__name__)


class GuardedCollector:
    """Collects from every named collector; a collector that raises contributes no family.

    `timer` measures the duration (monotonic seconds). The first failure after a success is logged
    as a warning with its traceback, repeats only at debug level, so a persistent failure does not
    flood the log at every scrape.
    """

    def __init__(
        self, collectors: Mapping[str, Collector], timer: Callable[[], float] = time.perf_counter
    ) -> None:
        self._collectors = dict(collectors)
        self._timer = timer
        self._failing: set[str] = set()

    def collect(self) -> Iterable[Metric]:
        success = GaugeMetricFamily(
            "millwatch_collector_success",
            "Whether the collector succeeded during this scrape (1) or failed (0).",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            "millwatch_collector_duration_seconds",
            "How long the collector took during this scrape, in seconds.",
            labels=["collector"],
        )
        families: list[Metric] = []
        for name, collector in self._collectors.items():
            started = self._timer()
            try:
                collected = list(collector.collect())
            except Exception:
                ok = False
                if name not in self._failing:
                    log.warning(
                        "collector %s failed; its metrics are missing from this scrape", name, exc_info=True
                    )
                else:
                    log.debug("collector %s failed again", name, exc_info=True)
                self._failing.add(name)
            else:
                ok = True
                families.extend(collected)
                if name in self._failing:
                    log.info("collector %s works again", name)
                    self._failing.discard(name)
            duration.add_metric([name], self._timer() - started)
            success.add_metric([name], 1.0 if ok else 0.0)
        yield from families
        yield success
        yield duration
