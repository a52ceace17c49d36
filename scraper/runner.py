"""`millwatch scrape`: the scraper alone, until SIGINT or SIGTERM.

For several scraper processes writing to one PostgreSQL, or a scraper host separate from the
server. Status changes are logged, one line per machine and change.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from scraper.errors import InventoryError, StoreError
from scraper.service import ScraperService
from scraper.state import FleetState, MachineView, Status
from scraper.store import Store

log = logging.getLogger("millwatch.scrape")


def run_scrape(inventory_path: Path, db_url: str) -> int:
    """Run the scraper until SIGINT/SIGTERM; returns the process exit code.

    0 after a signal, 1 when the database cannot be opened or migrated, 2 when the inventory
    has problems (they are printed to stderr, one per line, with file and line).
    """
    _configure_logging()
    return asyncio.run(_scrape(Path(inventory_path), db_url))


async def _scrape(inventory_path: Path, db_url: str) -> int:
    try:
        store = Store(db_url)
        await asyncio.to_thread(store.migrate)
    except StoreError as e:
        print(f"millwatch scrape: {e}", file=sys.stderr)
        return 1
    state = FleetState()
    state.subscribe(StatusLog())
    service = ScraperService(inventory_path, store, state)
    try:
        await service.start()
    except InventoryError as e:
        print(e, file=sys.stderr)
        store.close()
        return 2
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


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per request or job run is noise at fleet scale; their warnings still show.
    for name in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)
