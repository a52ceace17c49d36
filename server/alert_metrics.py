"""The alerting part of the server's `/metrics`: open alerts, notifications per channel."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scraper.alerting.rules import SEVERITIES
from scraper.alerting.store import OPEN_STATES
from server.context import ServerContext


class AlertsCollector(Collector):
    """Reads the context's alert engine at scrape time (all zero while there is none)."""

    def __init__(self, context: ServerContext) -> None:
        self._context = context

    def collect(self) -> Iterator[Metric]:
        engine = self._context.alerts
        counts = engine.open_counts() if engine is not None else {}
        open_alerts = GaugeMetricFamily(
            "millwatch_alerts_open",
            "Alerts not resolved, by state and severity.",
            labels=["state", "severity"],
        )
        for state in OPEN_STATES:
            for severity in SEVERITIES:
                open_alerts.add_metric([state, severity], counts.get((state, severity), 0))
        yield open_alerts

        for name, help_text, value in (
            (
                "millwatch_alerts_fired",
                "Alerts that started firing.",
                engine.alerts_fired_total if engine else 0,
            ),
            (
                "millwatch_notifications_silenced",
                "Notifications not sent because the machine was in a maintenance window.",
                engine.notifications_silenced_total if engine else 0,
            ),
            (
                "millwatch_alert_evaluation_failures",
                "Alert evaluations that failed (database unreachable); retried at the next tick.",
                engine.evaluation_failures_total if engine else 0,
            ),
        ):
            counter = CounterMetricFamily(name, help_text)
            counter.add_metric([], value)
            yield counter

        watcher = self._context.notifications_watcher
        reloaded = GaugeMetricFamily(
            "millwatch_notifications_config_last_reload_successful",
            "1 when notifications.yaml as it is on disk is in force; 0 while a changed file is refused.",
        )
        reloaded.add_metric([], 1 if watcher is None or watcher.last_reload_successful else 0)
        yield reloaded
        reloads = CounterMetricFamily(
            "millwatch_notifications_config_reloads",
            "Reloads of notifications.yaml after a change, by result.",
            labels=["result"],
        )
        reloads.add_metric(["success"], watcher.reloads_total if watcher else 0)
        reloads.add_metric(["failure"], watcher.reload_failures_total if watcher else 0)
        yield reloads

        stats = list(engine.notifier.stats.values()) if engine is not None else []
        families = {
            "sent": CounterMetricFamily(
                "millwatch_notifications_sent", "Messages delivered, per channel.", labels=["channel"]
            ),
            "failures": CounterMetricFamily(
                "millwatch_notification_failures",
                "Failed delivery attempts (retries included), per channel.",
                labels=["channel"],
            ),
            "dropped": CounterMetricFamily(
                "millwatch_notifications_dropped",
                "Messages given up after their retries or because the channel's queue was full.",
                labels=["channel"],
            ),
        }
        for s in stats:
            families["sent"].add_metric([s.name], s.sent_total)
            families["failures"].add_metric([s.name], s.failures_total)
            families["dropped"].add_metric([s.name], s.dropped_total)
        yield from families.values()
