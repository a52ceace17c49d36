"""The push client's state as `millwatch_push_*` families (only when push mode is configured)."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.exposition import CounterMetricFamily, GaugeMetricFamily, Metric
from exporter.push import PushClient


class PushCollector:
    """Yields the state of `client` at scrape time."""

    def __init__(self, client: PushClient) -> None:
        self._client = client

    def collect(self) -> Iterable[Metric]:
        status = self._client.status()
        last = GaugeMetricFamily(
            "millwatch_push_last_success_timestamp_seconds",
            "Unix time of the last batch the central host acknowledged (0: none since start).",
        )
        last.add_metric([], status.last_success_time or 0.0)
        yield last
        if status.pending is not None:
            yield GaugeMetricFamily(
                "millwatch_push_pending_readings",
                "Buffered readings not acknowledged by the central host yet.",
                value=float(status.pending),
            )
        yield CounterMetricFamily(
            "millwatch_push_batches",
            "Batches the central host acknowledged (with readings or without).",
            value=float(status.batches_total),
        )
        yield CounterMetricFamily(
            "millwatch_push_readings",
            "Readings (metric values) the central host acknowledged.",
            value=float(status.readings_total),
        )
        errors = CounterMetricFamily(
            "millwatch_push_errors", "Sends that were not acknowledged, by reason.", labels=["reason"]
        )
        for reason, count in sorted(status.errors_total.items()):
            errors.add_metric([reason], float(count))
        yield errors
