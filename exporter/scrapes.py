"""The last successful scrape of `/metrics`, for the technician's status page."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LastScrape:
    time: float
    client: str


class ScrapeTracker:
    """Remembers the last successful `/metrics` answer: when, and to which client address."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: LastScrape | None = None

    def record(self, client: str) -> None:
        with self._lock:
            self._last = LastScrape(self._clock(), client)

    @property
    def last(self) -> LastScrape | None:
        with self._lock:
            return self._last
