"""The server's own metrics (`GET /metrics`), read from their sources at scrape time.

One collector in its own registry: nothing is registered globally and nothing polls on a timer.
The scraper's counters are exposed as they are (0 when this process does not scrape, with
`millwatch_scraper_running` saying so).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scraper.state import FleetState, Status
from scraper.stats import ScraperStats
from server.live import LiveHub


class ScraperCounters(Protocol):
    """What the collector reads from a scraper (ScraperService has these attributes)."""

    @property
    def stats(self) -> ScraperStats: ...

    @property
    def pending_samples(self) -> int: ...

    @property
    def samples_set_aside_by_machine(self) -> dict[str, int]: ...


class FollowerCounters(Protocol):
    """What the collector reads from the database follower of a server without scraper."""

    reload_failures_total: int

    @property
    def notifications_total(self) -> int: ...


class IngestCounts(Protocol):
    """What the collector reads from the ingest service (server.ingest.IngestCounters)."""

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]: ...


# Always exported, so that a dashboard sees 0 rather than no series.
INGEST_BATCH_RESULTS = (
    "accepted",
    "unauthorized",
    "not_push",
    "disabled",
    "other_machine",
    "too_large",
    "invalid",
    "clock_ahead",
    "unavailable",
    "store_error",
)
INGEST_SAMPLE_RESULTS = ("stored", "duplicate")


class ServerCollector(Collector):
    """Yields the server's metrics from the fleet state, the live hub and the scraper (if any)."""

    def __init__(
        self,
        state: FleetState,
        hub: LiveHub,
        scraper: ScraperCounters | None,
        follower: FollowerCounters | None,
        version: str,
        *,
        ingest: IngestCounts | None = None,
    ) -> None:
        self._ingest = ingest
        self._state = state
        self._hub = hub
        self._scraper = scraper
        self._follower = follower
        self._version = version

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "millwatch_server_build_info", "Version of the millwatch server, always 1.", labels=["version"]
        )
        info.add_metric([self._version], 1)
        yield info

        running = GaugeMetricFamily(
            "millwatch_scraper_running", "1 when this server process runs the scraper, 0 when it does not."
        )
        running.add_metric([], 1 if self._scraper is not None else 0)
        yield running

        s = self._scraper.stats if self._scraper is not None else None
        for name, help_text, value in (
            ("millwatch_scrapes", "Scrapes attempted by this process.", s.scrapes_total if s else 0),
            (
                "millwatch_scrape_failures",
                "Scrapes that failed (machine down, timeout, bad answer).",
                s.scrape_failures_total if s else 0,
            ),
            (
                "millwatch_store_failures",
                "Database writes that failed (their samples are retried).",
                s.store_failures_total if s else 0,
            ),
            (
                "millwatch_samples_dropped",
                "Samples dropped because the retry queue for the database was full.",
                s.samples_dropped_total if s else 0,
            ),
            (
                "millwatch_samples_pruned",
                "Samples deleted from the database because they were older than the retention.",
                s.samples_pruned_total if s else 0,
            ),
            (
                "millwatch_batches_set_aside",
                "Batches of a machine's samples the database kept refusing, set aside so others are written.",
                s.batches_set_aside_total if s else 0,
            ),
            (
                "millwatch_backfill_readings",
                "Sensor readings fetched from exporters' /history after a gap, queued for the database.",
                s.backfill_readings_total if s else 0,
            ),
            (
                "millwatch_backfill_failures",
                "Backfills whose /history could not be fetched (retried after the machine's next scrape).",
                s.backfill_failures_total if s else 0,
            ),
            (
                "millwatch_store_notifications",
                "Status change notifications received from PostgreSQL (server without scraper).",
                self._follower.notifications_total if self._follower else 0,
            ),
            (
                "millwatch_store_reload_failures",
                "Failed reads of the machines' states from the database (server without scraper).",
                self._follower.reload_failures_total if self._follower else 0,
            ),
        ):
            counter = CounterMetricFamily(name, help_text)
            counter.add_metric([], value)
            yield counter

        pending = GaugeMetricFamily(
            "millwatch_samples_pending", "Scraped samples waiting to be written to the database."
        )
        pending.add_metric([], self._scraper.pending_samples if self._scraper is not None else 0)
        yield pending

        set_aside = CounterMetricFamily(
            "millwatch_samples_set_aside",
            "Samples set aside because the database kept refusing them, by machine.",
            labels=["machine_id"],
        )
        by_machine = self._scraper.samples_set_aside_by_machine if self._scraper is not None else {}
        for machine_id, count in sorted(by_machine.items()):
            set_aside.add_metric([machine_id], count)
        yield set_aside

        by_status = Counter(v.status for v in self._state.snapshot())
        machines = GaugeMetricFamily(
            "millwatch_machines", "Machines in the fleet by status.", labels=["status"]
        )
        for status in Status:
            machines.add_metric([status.value], by_status.get(status, 0))
        yield machines

        clients = GaugeMetricFamily("millwatch_websocket_clients", "Connected WebSocket (live map) clients.")
        clients.add_metric([], self._hub.clients)
        yield clients

        slow = CounterMetricFamily(
            "millwatch_websocket_slow_disconnects",
            "WebSocket clients disconnected because they could not keep up with the updates.",
        )
        slow.add_metric([], self._hub.slow_disconnects_total)
        yield slow
        yield from self._ingest_metrics()

    def _ingest_metrics(self) -> Iterator[Metric]:
        batches, samples = self._ingest.snapshot() if self._ingest is not None else ({}, {})
        family = CounterMetricFamily(
            "millwatch_ingest_batches",
            "Push batches received on POST /api/ingest, by result (accepted, or why refused).",
            labels=["result"],
        )
        for result in sorted(set(INGEST_BATCH_RESULTS) | batches.keys()):
            family.add_metric([result], batches.get(result, 0))
        yield family
        family = CounterMetricFamily(
            "millwatch_ingest_samples",
            "Samples of accepted push batches: stored, or already in the database (a batch sent again).",
            labels=["result"],
        )
        for result in INGEST_SAMPLE_RESULTS:
            family.add_metric([result], samples.get(result, 0))
        yield family


def server_registry(collector: ServerCollector) -> CollectorRegistry:
    """A fresh registry holding only `collector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
