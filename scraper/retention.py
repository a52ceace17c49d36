"""The retention job: deletes the samples older than the retention, in bounded batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from scraper.errors import StoreError
from scraper.stats import ScraperStats
from scraper.status import format_age
from scraper.store import Store
from scraper.store_writer import in_daemon_thread

log = logging.getLogger(__name__)

DEFAULT_RETENTION_SECONDS = 30 * 86400.0
PRUNE_INTERVAL_SECONDS = 600.0
PRUNE_FIRST_RUN_SECONDS = 30.0  # after start: late enough not to compete with the first scrapes


class RetentionJob:
    """Deletes samples older than `retention_seconds` (None: keeps every sample).

    `keep_going()` is asked between the store's batches: a False ends a long prune early (a
    stopping scraper does not wait for it). Counts into `stats`.
    """

    def __init__(
        self,
        store: Store,
        stats: ScraperStats,
        retention_seconds: float | None,
        *,
        keep_going: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention_seconds is not None and not retention_seconds > 0:
            raise ValueError("retention_seconds must be greater than 0 (or None: keep every sample)")
        self.retention_seconds = retention_seconds
        self._store = store
        self._stats = stats
        self._keep_going = keep_going
        self._clock = clock

    async def prune(self) -> int:
        """Delete the samples older than the retention now; returns how many were deleted.

        0 when the retention is off. A failure of the store is logged and counted in
        `store_failures_total` (the next run tries again), not raised.
        """
        retention = self.retention_seconds
        if retention is None:
            return 0
        try:
            deleted = await in_daemon_thread(
                partial(self._store.prune, self._clock() - retention, keep_going=self._keep_going)
            )
        except StoreError as e:
            self._stats.store_failures_total += 1
            log.warning("retention: %s", e)
            return 0
        self._stats.samples_pruned_total += deleted
        if deleted:
            log.info("retention: deleted %d samples older than %s", deleted, format_age(retention))
        return deleted
