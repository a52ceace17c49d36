"""The inventory's alert rules for an engine that runs without the scraper (`serve --no-scrape`):
the file is read again when it changed, and a broken edit keeps the last good inventory, as the
scraper does."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from scraper.errors import InventoryError
from scraper.file_signature import FileSignature, signature
from scraper.inventory import Inventory, load_inventory

log = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 2.0


class InventoryFile:
    """Callable returning the last good inventory read from `path` (None before a good one)."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._inventory: Inventory | None = None
        self._signature: FileSignature | None = None
        self._checked = float("-inf")

    def __call__(self) -> Inventory | None:
        now = time.monotonic()
        if now - self._checked < CHECK_INTERVAL_SECONDS:
            return self._inventory
        self._checked = now
        now_signature = signature(self._path)
        if now_signature is None:
            return self._inventory
        if now_signature != self._signature:
            self._signature = now_signature
            try:
                self._inventory = load_inventory(self._path)
            except InventoryError as e:
                log.error("alert rules not reloaded, keeping the last good inventory:\n%s", e)
        return self._inventory
