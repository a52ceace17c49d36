"""Backfill after a gap: the readings a machine's exporter buffered while nobody scraped it.

The reconciliation rule (docs/architecture.md, "Scrape time and sensor time"):

- A scrape stores what `/metrics` shows at the scrape's time, as Prometheus does, including
  `millwatch_serial_last_reading_timestamp_seconds`: the sensor time of the reading it saw.
- A gap is a successful scrape that was not preceded by a successful scrape of the same
  machine in this process within `GAP_INTERVALS` intervals + timeout (failed scrapes, or the
  scraper itself was down or just started).
- After a gap, the readings of `/history` with a sensor time strictly between the last reading
  a stored scrape saw (`L`, the newest stored `millwatch_serial_last_reading_timestamp_seconds`
  of the machine) and the reading the scrape that ended the gap saw (`R`) are stored at their own
  sensor time, into the same series as the scraped readings. `L` and `R` themselves are not: the
  scrapes at each end already stored them (at their scrape times).
- A scrape of an exporter whose sensor has sent no line since it started (no last reading,
  `millwatch_serial_start_time_seconds` instead) saw nothing newer than that start: it counts as
  having seen a reading just before it. Without this, a machine scraped once while its exporter
  waited for the first line and then unreachable for an hour had no `L`, and that hour was lost.
- The samples' key (series, time) makes every insert idempotent, so a backfill that is retried,
  or runs twice after a restart, stores each reading once.

A backfill that cannot fetch is retried after the machine's later successful scrapes (the gap is
kept in memory, merged with any newer one): at the next one first, then waiting twice as long
after each failure in a row, at most `RETRY_MAX_SECONDS`, so an exporter whose `/history` keeps
failing costs a request now and then, not one beside every scrape. What a machine's `/history`
may send is bounded: at most `MAX_READINGS` readings per gap, names checked against the reading
name rule, values and times finite and inside the gap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from millwatch_common.names import CHANNEL_METRIC
from scraper.credentials import auth_headers
from scraper.errors import BodyTooLarge, HTTPStatusError, ScrapeError, StoreError
from scraper.exposition import Sample
from scraper.fetch import Transport
from scraper.inventory import Machine
from scraper.scrape import ScrapeResult
from scraper.stats import ScraperStats
from scraper.status import PROCESS_START, SERIAL_LAST_READING, SERIAL_START, plain_finite_values
from scraper.store import SampleBatch, Store
from scraper.store_writer import in_daemon_thread

log = logging.getLogger(__name__)

GAP_INTERVALS = 1.5
PAGE_LIMIT = 5000
MAX_READINGS = 500_000
MAX_PAGE_BYTES = 4 * 2**20
# A /history page (up to PAGE_LIMIT rows from the exporter's SQLite buffer) is far more work for an old
# machine PC than /metrics: it gets at least this long, whatever the scrape timeout.
MIN_PAGE_TIMEOUT_S = 10.0
RETRY_MAX_SECONDS = 600.0


@dataclass(frozen=True)
class Gap:
    """Readings with `after < sensor time < before` are missing (None: not known yet, from the store)."""

    after: float | None
    before: float
    scraped_at: float  # the scrape that ended the gap: `after` comes from what was stored before it
    known_after: float | None = None
    """With `after` None: the start of a newer gap merged into this one, the start when the store has none."""


class Backfiller:
    """Notices gaps in each machine's scrapes and fills them from the exporter's `/history`.

    `queue(batches)` hands readings to the store writer. `semaphore` is the scraper's bound on
    requests in flight, shared with the scrapes.
    """

    def __init__(
        self,
        store: Store,
        stats: ScraperStats,
        queue: Callable[[Iterable[SampleBatch]], None],
        semaphore: asyncio.Semaphore,
    ) -> None:
        self._store = store
        self._stats = stats
        self._queue = queue
        self._semaphore = semaphore
        self._last_success: dict[str, float] = {}
        self._last_reading: dict[str, float] = {}
        self._pending: dict[str, Gap] = {}
        self._running: set[str] = set()
        # After fetch failures in a row: (failures, no retry before this scrape time).
        self._retry: dict[str, tuple[int, float]] = {}

    def forget(self, machine_ids: Iterable[str]) -> None:
        for machine_id in machine_ids:
            self._last_success.pop(machine_id, None)
            self._last_reading.pop(machine_id, None)
            self._pending.pop(machine_id, None)
            self._retry.pop(machine_id, None)

    def observe(self, machine: Machine, result: ScrapeResult) -> Gap | None:
        """Note a scrape; returns the gap to fill now (None: no gap, or one is being filled)."""
        if result.error is not None:
            return None
        seen = _seen_reading_time(result.samples)
        previous_success = self._last_success.get(machine.id)
        self._last_success[machine.id] = result.time
        if seen is None:
            return None
        previous_reading = self._last_reading.get(machine.id)
        self._last_reading[machine.id] = seen
        limit = GAP_INTERVALS * machine.scrape_interval_seconds + machine.scrape_timeout_seconds
        if previous_success is not None and result.time - previous_success <= limit:
            gap = None
        else:
            # After failed scrapes we know what the last good scrape saw; after a (re)start, the store does.
            gap = Gap(previous_reading if previous_success is not None else None, seen, result.time)
        pending = self._pending.pop(machine.id, None)
        if pending is not None:
            gap = pending if gap is None else _merge(pending, gap)
            retry = self._retry.get(machine.id)
            if retry is not None and result.time < retry[1]:
                self._pending[machine.id] = gap  # still waiting after failed fetches
                return None
        if gap is None:
            return None
        if machine.id in self._running:
            self._pending[machine.id] = gap  # the running backfill ends first; this one comes next time
            return None
        return gap

    async def run(self, client: Transport, machine: Machine, gap: Gap) -> int:
        """Fetch and queue the readings of `gap`; returns how many were queued. Never raises a fetch error."""
        self._running.add(machine.id)
        try:
            after = gap.after
            if after is None:
                try:
                    after = await in_daemon_thread(
                        lambda: self._store.last_value(machine.id, SERIAL_LAST_READING, before=gap.scraped_at)
                    )
                except StoreError as e:
                    log.warning(
                        "%s: backfill postponed, the last stored reading is unknown: %s", machine.id, e
                    )
                    self._postpone(machine.id, gap)
                    return 0
                after = _earliest(after, gap.known_after)
                if after is None:
                    return 0  # nothing stored yet for this machine: no gap to reconcile with
            if not after < gap.before:
                return 0
            try:
                readings = await self._fetch(client, machine, after, gap.before)
            except ScrapeError as e:
                self._stats.backfill_failures_total += 1
                failures = self._retry.get(machine.id, (0, 0.0))[0] + 1
                wait = min(RETRY_MAX_SECONDS, (2 ** (failures - 1) - 1) * machine.scrape_interval_seconds)
                self._retry[machine.id] = (failures, gap.scraped_at + wait)
                log.warning(
                    "%s: backfill from /history failed (%d in a row; retried after a scrape %.0f s on): %s",
                    machine.id,
                    failures,
                    wait,
                    e,
                )
                self._postpone(machine.id, Gap(after, gap.before, gap.scraped_at))
                return 0
            self._retry.pop(machine.id, None)
            batches = _batches(machine.id, readings)
            self._queue(batches)
            self._stats.backfill_readings_total += len(readings)
            if readings:
                log.info(
                    "%s: backfilled %d readings of a gap (sensor time %.3f to %.3f)",
                    machine.id,
                    len(readings),
                    readings[0][0],
                    readings[-1][0],
                )
            return len(readings)
        finally:
            self._running.discard(machine.id)

    def _postpone(self, machine_id: str, gap: Gap) -> None:
        pending = self._pending.get(machine_id)
        self._pending[machine_id] = gap if pending is None else _merge(pending, gap)

    async def _fetch(
        self, client: Transport, machine: Machine, after: float, before: float
    ) -> list[tuple[float, str, float]]:
        url = history_url(machine.url)
        headers = {"Accept": "application/json", **auth_headers(machine.auth)}
        readings: list[tuple[float, str, float]] = []
        since: float | None = after
        while since is not None and since < before and len(readings) < MAX_READINGS:
            async with self._semaphore:
                page = await _get_page(
                    client,
                    url,
                    headers,
                    since,
                    max(machine.scrape_timeout_seconds, MIN_PAGE_TIMEOUT_S),
                    same_host_redirects=machine.limits.follow_redirects == "same_host",
                )
            rows, next_since = _rows(page)
            for time, metric, value in rows:
                if after < time < before:
                    readings.append((time, metric, value))
            if next_since is not None and not next_since > since:
                raise ScrapeError("backfill: /history did not advance")
            since = next_since
        readings.sort()
        return readings[:MAX_READINGS]


def history_url(metrics_url: str) -> str:
    """The exporter's `/history` beside its metrics path (`…/metrics` -> `…/history`)."""
    parts = urlsplit(metrics_url)
    path = parts.path.rsplit("/", 1)[0] + "/history"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


async def _get_page(
    client: Transport,
    url: str,
    headers: dict[str, str],
    since: float,
    timeout: float,
    *,
    same_host_redirects: bool,
) -> bytes:
    query = urlencode({"since": repr(since), "limit": str(PAGE_LIMIT)})
    try:
        async with asyncio.timeout(timeout):
            return await client.get(f"{url}?{query}", headers, MAX_PAGE_BYTES, same_host_redirects)
    except TimeoutError as e:
        raise ScrapeError(f"backfill: /history timeout after {timeout:g}s") from e
    except HTTPStatusError as e:
        raise ScrapeError(f"backfill: /history answered HTTP {e.status_code}") from e
    except BodyTooLarge as e:
        raise ScrapeError("backfill: /history page too large") from e
    except ScrapeError as e:
        raise ScrapeError(f"backfill: {e}") from e


def _rows(body: bytes) -> tuple[list[tuple[float, str, float]], float | None]:
    """The readings of one `/history` page and its `next_since`; a malformed page is a ScrapeError."""
    try:
        page = json.loads(body)
        rows: list[tuple[float, str, float]] = []
        for item in page["readings"]:
            time, metric, value = float(item["time"]), str(item["metric"]), float(item["value"])
            if (
                math.isfinite(time)
                and math.isfinite(value)
                and CHANNEL_METRIC.match(metric)
                and len(metric) <= 200
            ):
                rows.append((time, metric, value))
        raw_next = page.get("next_since")
        next_since = None if raw_next is None else float(raw_next)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ScrapeError(f"backfill: /history sent something else than its JSON ({type(e).__name__})") from e
    if next_since is not None and not math.isfinite(next_since):
        raise ScrapeError("backfill: /history sent a non-finite next_since")
    return rows, next_since


def _batches(machine_id: str, readings: list[tuple[float, str, float]]) -> list[SampleBatch]:
    by_time: dict[float, list[Sample]] = defaultdict(list)
    for time, metric, value in readings:
        by_time[time].append(Sample(metric, {}, value))
    return [SampleBatch(machine_id, time, samples) for time, samples in sorted(by_time.items())]


def _seen_reading_time(samples: Sequence[Sample]) -> float | None:
    """The sensor time of the newest reading the scrape saw; None for an exporter without a sensor clock.

    An exporter whose sensor has sent nothing since it started shows its start time instead of a
    last reading: every reading of its buffer from this run is newer than that, so the scrape saw
    "a reading just before the start" (the next float below it, as the gap's ends are exclusive).
    """
    plain = plain_finite_values(samples)  # one pass, no `Sample` made per line of a scrape
    last = plain.get(SERIAL_LAST_READING)
    if last is not None and last > 0:
        return last
    started = plain.get(SERIAL_START, plain.get(PROCESS_START))
    if started is not None and started > 0:
        return math.nextafter(started, -math.inf)
    return None


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _merge(older: Gap, newer: Gap) -> Gap:
    """One gap covering both: from the earliest known start to the latest end.

    A start still to be looked up in the store (None) is looked up before the older gap's scrape;
    the known start of the other is kept beside it (`known_after`), so a machine with nothing
    stored still gets the newer gap filled.
    """
    before = max(older.before, newer.before)
    if older.after is None or newer.after is None:
        known = _earliest(older.after, newer.after, older.known_after, newer.known_after)
        return Gap(None, before, min(older.scraped_at, newer.scraped_at), known)
    return Gap(min(older.after, newer.after), before, newer.scraped_at)
