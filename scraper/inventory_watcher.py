"""Watches `machines.yaml`: reloads it when it changes, keeps the last good inventory in force.

The watcher only loads and compares; what a new inventory means (jobs, views) is the caller's
`apply`, which may refuse it by raising `InventoryError` after putting everything back as it was
(the rollback). A file that cannot be loaded, or an inventory `apply` refused, leaves the
previous one in force and its problems in `error`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scraper.errors import InventoryError
from scraper.file_signature import FileSignature, signature
from scraper.inventory import Inventory, Machine, load_inventory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InventoryDiff:
    """What changed between two inventories, for the jobs and the log."""

    stopped: list[str]  # had a job (scraped before), none now: removed, disabled or push
    rescheduled: list[Machine]  # scraped now and new, scraped again, or with a new interval
    removed: list[str]  # no longer in the inventory at all
    added: int
    changed: int


def diff(old: Inventory | None, new: Inventory) -> InventoryDiff:
    before = old.by_id() if old is not None else {}
    after = new.by_id()
    stopped = [
        machine_id
        for machine_id, machine in before.items()
        if machine.scraped and (machine_id not in after or not after[machine_id].scraped)
    ]
    rescheduled = [
        m
        for m in new.scraped_machines
        if m.id not in before
        or not before[m.id].scraped
        or before[m.id].scrape_interval_seconds != m.scrape_interval_seconds
    ]
    removed = [machine_id for machine_id in before if machine_id not in after]
    changed = sum(1 for k, m in after.items() if k in before and before[k] != m)
    return InventoryDiff(stopped, rescheduled, removed, len(after.keys() - before.keys()), changed)


class InventoryWatcher:
    """The current inventory of `path`, reloaded by `check()` when the file changed.

    `apply(previous, new)` switches the rest of the scraper to `new`; it raises InventoryError
    (having restored what it touched) to refuse it.
    """

    def __init__(self, path: Path, apply: Callable[[Inventory | None, Inventory], None]) -> None:
        self.path = Path(path)
        self.inventory: Inventory | None = None
        self.error: str | None = None
        self._apply = apply
        self._signature: FileSignature | None = None

    async def load_first(self) -> Inventory:
        """Load and apply the inventory at start; raises InventoryError (nothing applied)."""
        self._signature = signature(self.path)
        inventory = await asyncio.to_thread(load_inventory, self.path)
        self._apply(None, inventory)
        self.inventory = inventory
        self.error = None
        return inventory

    async def check(self) -> bool:
        """Reload if the file changed since the last look; True when a new inventory was applied."""
        current = signature(self.path)
        if current == self._signature:
            return False
        self._signature = current
        return await self.reload()

    async def reload(self) -> bool:
        """Reload the file now; returns whether it was applied (else the last good one stays)."""
        try:
            inventory = await asyncio.to_thread(load_inventory, self.path)
            self._apply(self.inventory, inventory)
        except InventoryError as e:
            self._refuse(str(e))
            return False
        self.inventory = inventory
        self.error = None
        return True

    def _refuse(self, problems: str) -> None:
        self.error = problems
        count = len(self.inventory.machines) if self.inventory is not None else 0
        log.error("inventory not reloaded, keeping the last good one (%d machines):\n%s", count, problems)
