"""One write's sample rows, column by column: no Python object per row.

A write of the store carries a fleet's scrapes of half a second: 40,000 samples at 10,000
machines. Held as `(series_id, time_ms, value)` tuples, each row was an object of its own, made
in Python and taken apart again for the driver, and each tuple is a container the cyclic garbage
collector tracks: at 10,000 targets, py-spy put about two thirds of the scraper's collections in
the line that made them. Here the series ids and the values are one list each (a scrape's come
from its `series_id -> value` dict in C), and the times are runs: a scrape's samples share its
time, so a run is `(time_ms, count)`. The drivers get their parameters cut from these lists
(scraper/store_bulk.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain, repeat, starmap

Row = tuple[int, int, float]
"""One sample row: (series_id, time_ms, value)."""


class SampleRows:
    """Rows in the order they were added; the first of a key wins when they are stored."""

    __slots__ = ("runs", "series_ids", "values")

    def __init__(self) -> None:
        self.series_ids: list[int] = []
        self.values: list[float] = []
        self.runs: list[tuple[int, int]] = []  # (time_ms, rows), in order; together len(values)

    @classmethod
    def of(cls, rows: Iterable[Row]) -> SampleRows:
        """From row tuples (tests, the rare paths): one run per row."""
        made = cls()
        for series_id, time_ms, value in rows:
            made.series_ids.append(series_id)
            made.values.append(value)
            made.runs.append((time_ms, 1))
        return made

    def add(self, time_ms: int, values: Mapping[int, float]) -> None:
        """One scrape's rows: `series_id -> value`, all at `time_ms`."""
        if values:
            self.series_ids.extend(values)
            self.values.extend(values.values())
            self.runs.append((time_ms, len(values)))

    def extend(self, other: SampleRows) -> None:
        """Add `other`'s rows after these."""
        self.series_ids.extend(other.series_ids)
        self.values.extend(other.values)
        self.runs.extend(other.runs)

    def __len__(self) -> int:
        return len(self.values)

    def times(self) -> list[int]:
        """Each row's time, in row order (built in C: each run's time repeated)."""
        return list(chain.from_iterable(starmap(repeat, self.runs)))

    def per_row(self, each_run: Iterable[int]) -> Iterable[int]:
        """`each_run`'s values (one a run, in order) repeated for each row of their run."""
        return chain.from_iterable(map(repeat, each_run, (count for _, count in self.runs)))

    def oldest(self) -> int | None:
        """The earliest time of a row; None when there is none."""
        return min((time_ms for time_ms, _ in self.runs), default=None)

    def before(self, time_ms: int) -> SampleRows:
        """The rows whose time is before `time_ms` (the late ones of a write), in order."""
        late = SampleRows()
        start = 0
        for run_time, count in self.runs:
            if run_time < time_ms:
                late.series_ids.extend(self.series_ids[start : start + count])
                late.values.extend(self.values[start : start + count])
                late.runs.append((run_time, count))
            start += count
        return late

    def tuples(self) -> list[Row]:
        """The rows as `(series_id, time_ms, value)` tuples (the staging paths, tests)."""
        return list(zip(self.series_ids, self.times(), self.values))
