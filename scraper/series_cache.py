"""Series ids in memory, bounded: the store looks an id up here instead of asking the database.

Entries are grouped by machine (a scrape needs all of one machine's series at once) and evicted a
machine at a time, least recently used first, once more than `max_entries` series are held. Metric
names and label texts are interned: a fleet repeats the same few dozen names on every machine.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

SeriesName = tuple[str, str]  # metric, labels_json


class SeriesCache:
    """`machine_id -> {(metric, labels_json): series_id}`, at most `max_entries` ids in all. Thread-safe."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("the series cache must hold at least one entry")
        self.max_entries = max_entries
        self._machines: OrderedDict[str, dict[SeriesName, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def get(self, machine_id: str) -> dict[SeriesName, int] | None:
        """A copy of the machine's known ids (None when none are cached); marks it recently used."""
        with self._lock:
            known = self._machines.get(machine_id)
            if known is None:
                return None
            self._machines.move_to_end(machine_id)
            return dict(known)

    def put(self, machine_id: str, ids: dict[SeriesName, int]) -> None:
        """Remember these ids of the machine (added to those known), then evict to the bound."""
        with self._lock:
            known = self._machines.get(machine_id)
            if known is None:
                known = self._machines[machine_id] = {}
            else:
                self._machines.move_to_end(machine_id)
            before = len(known)
            for (metric, labels), series_id in ids.items():
                known[(sys.intern(metric), sys.intern(labels))] = series_id
            self._size += len(known) - before
            while self._size > self.max_entries and len(self._machines) > 1:
                _, evicted = self._machines.popitem(last=False)
                self._size -= len(evicted)

    def resize(self, max_entries: int) -> None:
        """Hold at most `max_entries` ids from now on (evicting the least recently used machines)."""
        if max_entries < 1:
            raise ValueError("the series cache must hold at least one entry")
        with self._lock:
            self.max_entries = max_entries
            while self._size > self.max_entries and len(self._machines) > 1:
                _, evicted = self._machines.popitem(last=False)
                self._size -= len(evicted)

    def forget(self, machine_id: str) -> None:
        with self._lock:
            evicted = self._machines.pop(machine_id, None)
            if evicted is not None:
                self._size -= len(evicted)
