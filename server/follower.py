"""A server without scraper (`millwatch serve --no-scrape`) follows the database instead.

`millwatch scrape` processes write each machine's view into the store; the follower reads them back
every few seconds, applies the staleness rule (so a machine whose scraper stopped turns `stale`)
and makes the fleet state exactly what the database holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from scraper.errors import StoreError
from scraper.state import FleetState
from scraper.status import apply_staleness
from scraper.store import Store

log = logging.getLogger(__name__)


class StoreFollower:
    """Copies the machine views of `store` into `state` every `interval` seconds."""

    def __init__(
        self,
        store: Store,
        state: FleetState,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._state = state
        self._interval = interval
        self._clock = clock
        self.reload_failures_total = 0
        self.last_error: str | None = None

    async def reload_once(self) -> bool:
        """Read the views once and put them into the state; False (state untouched) when the read fails."""
        try:
            views = await asyncio.to_thread(self._store.load_views)
        except StoreError as e:
            self.reload_failures_total += 1
            if self.last_error != str(e):
                log.error("cannot read machine states from the database: %s", e)
            self.last_error = str(e)
            return False
        if self.last_error is not None:
            log.info("reading machine states from the database again")
        self.last_error = None
        now = self._clock()
        self._state.replace_all(apply_staleness(v, now) for v in views)
        return True

    async def run(self) -> None:
        """Reload every `interval` seconds until cancelled (the caller does the first `reload_once`)."""
        while True:
            await asyncio.sleep(self._interval)
            await self.reload_once()
