"""`millwatch scrape`: the scraper alone, until SIGINT or SIGTERM.

For several scraper processes writing to one PostgreSQL, or a scraper host separate from the
server. Status changes are logged, one line per machine and change. Start-up failures are raised,
not printed: the `millwatch` command (server.cli) reports them exactly as it does for `serve`, and
configures logging for both.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from scraper.inventory import load_inventory
from scraper.service import DEFAULT_RETENTION_SECONDS, ScraperService
from scraper.state import FleetState, MachineView, Status
from scraper.store import DEFAULT_MINUTE_ROLLUP_RETENTION_SECONDS, DEFAULT_ROLLUP_RETENTION_SECONDS, Store

log = logging.getLogger("millwatch.scrape")


def run_scrape(
    inventory_path: Path,
    db_url: str,
    *,
    retention_seconds: float | None = DEFAULT_RETENTION_SECONDS,
    max_concurrency: int = 16,
    rollup_retention_seconds: float = DEFAULT_ROLLUP_RETENTION_SECONDS,
    minute_rollup_retention_seconds: float = DEFAULT_MINUTE_ROLLUP_RETENTION_SECONDS,
) -> int:
    """Run the scraper until SIGINT/SIGTERM, then return 0 (the process exit code).

    Samples older than `retention_seconds` are deleted from the database (None: kept forever); at
    most `max_concurrency` scrapes are in flight at once. Hour and minute rollups are kept for
    `rollup_retention_seconds` and `minute_rollup_retention_seconds`.

    Checked in the order `millwatch serve` checks them, before anything is started: the inventory
    (InventoryUnreadable or InventoryError with every problem; no database file is created), then
    the database and its migrations (StoreError). Logs through `logging` as configured by the caller.
    """
    inventory_path = Path(inventory_path)
    load_inventory(inventory_path)
    store = Store(
        db_url,
        rollup_retention=rollup_retention_seconds,
        minute_rollup_retention=minute_rollup_retention_seconds,
    )
    return asyncio.run(_scrape(inventory_path, store, retention_seconds, max_concurrency))


async def _scrape(
    inventory_path: Path, store: Store, retention_seconds: float | None, max_concurrency: int
) -> int:
    try:
        await asyncio.to_thread(store.migrate)
        state = FleetState()
        state.subscribe(StatusLog())
        service = ScraperService(
            inventory_path,
            store,
            state,
            retention_seconds=retention_seconds,
            max_concurrency=max_concurrency,
        )
        await service.start()  # the file may have changed since it was checked: InventoryError again
    except BaseException:
        store.close()
        raise
    stop = asyncio.Event()
    _on_signals(stop)
    log.info("scraper running (database %s); stop with Ctrl+C or SIGTERM", store.url)
    try:
        await stop.wait()
    finally:
        await service.stop()
        store.close()
    log.info("scraper stopped")
    return 0


class StatusLog:
    """A FleetState listener that logs each machine's status changes (not every scrape)."""

    def __init__(self) -> None:
        self._last: dict[str, Status] = {}

    def __call__(self, changed: list[MachineView], removed: list[str]) -> None:
        for view in changed:
            before = self._last.get(view.id)
            if before != view.status:
                self._last[view.id] = view.status
                arrow = view.status.value if before is None else f"{before.value} -> {view.status.value}"
                log.info("%s: %s%s", view.id, arrow, f" ({view.reason})" if view.reason else "")
        for machine_id in removed:
            self._last.pop(machine_id, None)
            log.info("%s: removed from the inventory", machine_id)


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
            signal.signal(sig, lambda _signum, _frame: loop.call_soon_threadsafe(stop.set))
