"""One scrape of one machine, as a plain function: fetch, parse, status rules, synthetic series.

`scrape_once` neither schedules, publishes nor stores: it returns the machine's new view and the
samples to store, and the caller (a scheduled job, `ScraperService.scrape_now`, a test, a bench)
decides what to do with them.

Synthetic series, as Prometheus adds them to every scrape, stored with the scrape's samples:
`up` (1 when the scrape succeeded, else 0), `scrape_duration_seconds`, `scrape_samples_scraped`
(samples the exporter sent; 0 when the scrape failed). They are stored even when the scrape
failed, so a machine's outages are in its history, not only on the map.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from scraper.errors import ScrapeError
from scraper.exposition import ParsedSamples, Sample, parse_samples
from scraper.fetch import DEFAULT_MAX_BODY_BYTES, Transport, fetch_metrics
from scraper.inventory import Machine
from scraper.line_cache import LineCache, SeriesRef
from scraper.state import MachineView
from scraper.status import evaluate, failed
from scraper.store import SampleBatch

UP = "up"
SCRAPE_DURATION = "scrape_duration_seconds"
SAMPLES_SCRAPED = "scrape_samples_scraped"
SYNTHETIC_METRICS = frozenset({UP, SCRAPE_DURATION, SAMPLES_SCRAPED})
PARSE_IN_THREAD_CHARS = 2**20  # bigger bodies are parsed off the event loop
_UP, _DURATION, _SCRAPED = (SeriesRef.of(name, {}) for name in (UP, SCRAPE_DURATION, SAMPLES_SCRAPED))
_NO_SAMPLES = ParsedSamples([], [])


@dataclass(frozen=True)
class ScrapeResult:
    """What one scrape found: the machine's view after it, and what to store.

    `samples` are the exporter's own samples (empty when the scrape failed); `error` is the
    failure (None on success). `batch()` adds the synthetic series.
    """

    machine_id: str
    time: float
    duration: float
    view: MachineView
    samples: ParsedSamples
    error: ScrapeError | None

    def synthetic(self) -> list[Sample]:
        """`up`, `scrape_duration_seconds`, `scrape_samples_scraped` for this scrape."""
        return list(self._synthetic())

    def _synthetic(self) -> ParsedSamples:
        values = [0.0 if self.error is not None else 1.0, self.duration, float(len(self.samples))]
        return ParsedSamples([_UP, _DURATION, _SCRAPED], values)

    def batch(self) -> SampleBatch:
        """The samples to store at the scrape time: the synthetic series first, so that an exporter
        sending its own `up` cannot replace the scraper's (the store keeps the first value of a
        series at one time). Series refs and values as the parser gave them: no `Sample` made."""
        synthetic, own = self._synthetic(), self.samples
        return SampleBatch(
            self.machine_id,
            self.time,
            ParsedSamples(synthetic.series + own.series, synthetic.values + own.values),
        )


async def scrape_once(
    client: Transport,
    machine: Machine,
    previous: MachineView | Callable[[], MachineView],
    *,
    sample_limit: int | None = 50_000,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
    lines: LineCache | None = None,
) -> ScrapeResult:
    """Scrape `machine` once; never raises a `ScrapeError` (a failure is the result's `error`).

    `previous` is the machine's current view (or a function giving it, called only when the scrape
    fails): a failed scrape keeps its last readings and system summary and turns it `down` with
    the error's text. The machine's own limits (body size, redirects, samples, label sizes) apply
    within `max_body_bytes` and `sample_limit`. `lines`: the machine's line cache, kept from
    scrape to scrape (None: a new one, for this scrape only).
    """
    scraped_at = clock()
    started = time.perf_counter()
    if lines is None:
        lines = LineCache()
    try:
        limits = machine.limits
        text, _ = await fetch_metrics(
            client,
            machine,
            max_body_bytes=min(max_body_bytes, limits.body_size_limit),
            same_host_redirects=limits.follow_redirects == "same_host",
        )
        machine_sample_limit = limits.sample_limit
        if sample_limit is not None:
            machine_sample_limit = min(machine_sample_limit, sample_limit)
        if len(text) > PARSE_IN_THREAD_CHARS:
            samples = await asyncio.to_thread(parse_samples, text, lines, machine_sample_limit, limits)
        else:
            samples = parse_samples(text, lines, machine_sample_limit, limits)
    except ScrapeError as e:
        duration = time.perf_counter() - started
        before = previous() if callable(previous) else previous
        return ScrapeResult(
            machine.id, scraped_at, duration, failed(before, e, scraped_at, duration), _NO_SAMPLES, e
        )
    duration = time.perf_counter() - started
    view = evaluate(machine, samples, scraped_at, duration)
    return ScrapeResult(machine.id, scraped_at, duration, view, samples, None)
