"""The scraper's counters, one object shared by the watcher, the jobs, the store writer and retention.

Plain integers, changed only on the event loop's thread (the store writer counts on the loop
too), so no lock is needed. The server exports them as its own metrics (server/metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ScraperStats:
    """What the scraper has done since it started.

    `batches_set_aside_total` / `samples_set_aside_total`: a machine's samples the database kept
    refusing (after the per-machine retries), put aside so that the other machines' samples go on
    being written. `backfill_readings_total`: sensor readings fetched from the exporters'
    `/history` after a gap and handed to the store; `backfill_failures_total`: backfills that
    could not fetch (retried at the machine's next successful scrape).
    """

    scrapes_total: int = 0
    scrape_failures_total: int = 0
    store_failures_total: int = 0
    samples_dropped_total: int = 0
    samples_pruned_total: int = 0
    batches_set_aside_total: int = 0
    samples_set_aside_total: int = 0
    backfill_readings_total: int = 0
    backfill_failures_total: int = 0
