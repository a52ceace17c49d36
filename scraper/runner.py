"""`millwatch scrape`: the scraper alone, until SIGINT or SIGTERM.

For several scraper processes writing to one PostgreSQL (they share the fleet through leases,
scraper/leases.py), or a scraper host separate from the server. Status changes are logged, one
line per machine and change. Start-up failures are raised, not printed: the `millwatch` command
(server.cli) reports them exactly as it does for `serve`, and configures logging for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

from scraper.inventory import load_inventory
from scraper.leases import DEFAULT_TTL_SECONDS, LeaseKeeper
from scraper.service import DEFAULT_RETENTION_SECONDS, ScraperService
from scraper.state import FleetState, MachineView, Status
from scraper.store import DEFAULT_MINUTE_ROLLUP_RETENTION_SECONDS, DEFAULT_ROLLUP_RETENTION_SECONDS, Store

log = logging.getLogger("millwatch.scrape")

GC_YOUNG_THRESHOLD = 10_000
"""Container objects allocated between two collections of the youngest generation (Python: 700)."""


def run_scrape(
    inventory_path: Path,
    db_url: str,
    *,
    retention_seconds: float | None = DEFAULT_RETENTION_SECONDS,
    max_concurrency: int = 16,
    rollup_retention_seconds: float = DEFAULT_ROLLUP_RETENTION_SECONDS,
    minute_rollup_retention_seconds: float = DEFAULT_MINUTE_ROLLUP_RETENTION_SECONDS,
    lease_ttl: float = DEFAULT_TTL_SECONDS,
) -> int:
    """Run the scraper until SIGINT/SIGTERM, then return 0 (the process exit code).

    Samples older than `retention_seconds` are deleted from the database (None: kept forever); at
    most `max_concurrency` scrapes are in flight at once. Hour and minute rollups are kept for
    `rollup_retention_seconds` and `minute_rollup_retention_seconds`. On PostgreSQL the machines
    are leased (`lease_ttl`: how soon the others take over from a scraper that died).

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
    return asyncio.run(_scrape(inventory_path, store, retention_seconds, max_concurrency, lease_ttl))


async def _scrape(
    inventory_path: Path,
    store: Store,
    retention_seconds: float | None,
    max_concurrency: int,
    lease_ttl: float,
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
        keeper: LeaseKeeper | None = None
        if store.dialect == "postgresql":
            # Nothing is scraped before this process holds leases: another may scrape those machines.
            service.set_owned(set())
            keeper = LeaseKeeper(store, lambda: _scraped(service), service.set_owned, ttl=lease_ttl)
        await service.start()  # the file may have changed since it was checked: InventoryError again
    except BaseException:
        store.close()
        raise
    with _collector_tuned():
        return await _serve(service, store, keeper, lease_ttl)


@contextlib.contextmanager
def _collector_tuned() -> Iterator[None]:
    """The cyclic garbage collector set for a long-running scraper, as it was again afterwards.

    A scrape allocates hundreds of containers (lists, dicts, tuples), nearly all freed by their
    reference counts; with Python's default threshold (700) the collector still ran every scrape
    or two and scanned every object of the process: ~12 % of the scraper's CPU at 500 machines.
    What exists once the service is started (modules, the inventory, SQLAlchemy's metadata) lives
    as long as the process: frozen out of the collector's scans.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def _serve(service: ScraperService, store: Store, keeper: LeaseKeeper | None, lease_ttl: float) -> int:
    stop = asyncio.Event()
    _on_signals(stop)
    leasing: asyncio.Task[None] | None = None
    if keeper is not None:
        await keeper.renew_once()
        leasing = asyncio.create_task(keeper.run())
        log.info("scraper node %s sharing the fleet through leases (ttl %gs)", keeper.node_id, lease_ttl)
    log.info("scraper running (database %s); stop with Ctrl+C or SIGTERM", store.url)
    try:
        await stop.wait()
    finally:
        if leasing is not None:
            leasing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leasing
        await service.stop()
        if keeper is not None:
            await keeper.release()  # after the last writes: the next owner starts from them
        store.close()
    log.info("scraper stopped")
    return 0


def _scraped(service: ScraperService) -> set[str]:
    # Push machines send their data themselves: nothing to lease.
    inventory = service.inventory
    return set() if inventory is None else {m.id for m in inventory.scraped_machines}


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
