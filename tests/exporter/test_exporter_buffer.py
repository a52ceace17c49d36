"""The SQLite reading buffer: what /history pages through, kept across restarts, pruned after retention."""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from exporter.buffer import ReadingBuffer
from exporter.errors import BufferStoreError


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_readings_come_back_in_time_order_and_strictly_after_since(tmp_path: Path) -> None:
    buffer = ReadingBuffer(str(tmp_path / "b.sqlite"), 3600, Clock(1000.0))
    buffer.append_many([(900.0, "machine_temperature_celsius", 65.0), (900.0, "machine_pressure_bar", 1.0)])
    buffer.append(950.0, "machine_temperature_celsius", 66.0)
    assert buffer.since(0, 100) == [
        (900.0, "machine_pressure_bar", 1.0),
        (900.0, "machine_temperature_celsius", 65.0),
        (950.0, "machine_temperature_celsius", 66.0),
    ]
    assert buffer.since(900.0, 100) == [(950.0, "machine_temperature_celsius", 66.0)]
    assert buffer.since(950.0, 100) == []
    assert buffer.has_after(900.0) and not buffer.has_after(950.0)
    buffer.close()


def test_a_page_never_splits_one_timestamp(tmp_path: Path) -> None:
    buffer = ReadingBuffer(str(tmp_path / "b.sqlite"), 3600, Clock(100.0))
    for t in (10.0, 20.0, 30.0):
        buffer.append_many([(t, "machine_a", 1.0), (t, "machine_b", 2.0), (t, "machine_c", 3.0)])
    page = buffer.since(0, 4)
    assert [r[0] for r in page] == [10.0, 10.0, 10.0, 20.0, 20.0, 20.0]
    collected = list(page)
    since = page[-1][0]
    while buffer.has_after(since):
        page = buffer.since(since, 4)
        collected += page
        since = page[-1][0]
    assert len(collected) == 9, "paging with since=<last time> loses nothing and repeats nothing"
    with pytest.raises(ValueError):
        buffer.since(0, 0)
    buffer.close()


def test_a_reading_is_on_disk_when_append_returns(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = ReadingBuffer(str(path), 3600, Clock(100.0))
    buffer.append(99.0, "machine_speed_rpm", 1480.0)
    other = sqlite3.connect(path)  # another process would see exactly this
    assert other.execute("SELECT time, metric, value FROM readings").fetchall() == [
        (99.0, "machine_speed_rpm", 1480.0)
    ]
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    buffer.close()


def test_readings_survive_reopening_and_duplicates_are_ignored(tmp_path: Path) -> None:
    path = str(tmp_path / "nested" / "folder" / "b.sqlite")
    first = ReadingBuffer(path, 3600, Clock(100.0))
    first.append(50.0, "machine_speed_rpm", 1480.0)
    first.append(50.0, "machine_speed_rpm", 1481.0)
    first.close()
    second = ReadingBuffer(path, 3600, Clock(100.0))
    assert second.since(0, 10) == [(50.0, "machine_speed_rpm", 1480.0)]
    second.close()


def test_retention_prunes_old_readings(tmp_path: Path) -> None:
    clock = Clock(10_000.0)
    buffer = ReadingBuffer(str(tmp_path / "b.sqlite"), 100, clock)
    buffer.append_many([(9_850.0, "machine_a", 1.0), (9_950.0, "machine_a", 2.0)])
    assert buffer.prune() == 1
    assert buffer.since(0, 10) == [(9_950.0, "machine_a", 2.0)]
    clock.now += 120  # a minute later an append prunes by itself
    buffer.append(clock.now, "machine_a", 3.0)
    assert buffer.since(0, 10) == [(10_120.0, "machine_a", 3.0)]
    assert buffer.count() == 1
    buffer.close()


def test_opening_prunes_what_expired_while_stopped(tmp_path: Path) -> None:
    path = str(tmp_path / "b.sqlite")
    buffer = ReadingBuffer(path, 100, Clock(1_000.0))
    buffer.append(990.0, "machine_a", 1.0)
    buffer.close()
    reopened = ReadingBuffer(path, 100, Clock(5_000.0))
    assert reopened.count() == 0
    reopened.close()


def test_unusable_files_raise_buffer_errors(tmp_path: Path) -> None:
    not_a_db = tmp_path / "b.sqlite"
    not_a_db.write_bytes(b"this is not a database, just text " * 100)
    with pytest.raises(BufferStoreError) as caught:
        ReadingBuffer(str(not_a_db), 100)
    assert str(caught.value).startswith(f"reading buffer {not_a_db}: cannot open: ")

    buffer = ReadingBuffer(str(tmp_path / "ok.sqlite"), 100)
    buffer.close()
    buffer.close()
    with pytest.raises(BufferStoreError, match="the buffer is closed"):
        buffer.append(1.0, "machine_a", 1.0)


def open_paths() -> set[str]:
    """Files this process holds open (psutil: the same check on Windows and Linux)."""
    return {os.path.realpath(f.path) for f in psutil.Process().open_files()}


def not_a_database(path: Path) -> None:
    path.write_bytes(b"this is not a database, just text " * 100)  # the first PRAGMA fails


def readings_is_an_index(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:  # the CREATE TABLE fails
        db.executescript("CREATE TABLE other (x); CREATE INDEX readings ON other (x);")


def readings_has_no_time(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:  # the first prune fails
        db.execute("CREATE TABLE readings (metric TEXT, value REAL)")
        db.commit()


@pytest.mark.parametrize(
    ("make_file", "operation", "cause"),
    [
        (not_a_database, "open", "file is not a database"),
        (readings_is_an_index, "open", "already an index named readings"),
        (readings_has_no_time, "prune", "no such column: time"),
    ],
    ids=["not-a-database", "create-fails", "prune-fails"],
)
def test_a_failed_open_closes_the_file(
    tmp_path: Path, make_file: Callable[[Path], None], operation: str, cause: str
) -> None:
    path = tmp_path / "b.sqlite"
    make_file(path)
    assert str(path.resolve()) not in open_paths()
    with pytest.raises(BufferStoreError) as caught:
        ReadingBuffer(str(path), 100)
    # `caught` keeps the failed constructor's frame (and whatever it holds) alive: a connection
    # left open there would show up as an open file right now.
    assert (caught.value.path, caught.value.operation) == (str(path), operation)
    assert cause in caught.value.cause
    leaked = {p for p in open_paths() if p.startswith(str(path.resolve()))}
    assert not leaked, f"the buffer left {leaked} open after failing"


def test_a_folder_in_place_of_the_file_is_an_open_error(tmp_path: Path) -> None:
    folder = tmp_path / "b.sqlite"
    folder.mkdir()
    with pytest.raises(BufferStoreError) as caught:
        ReadingBuffer(str(folder), 100)
    assert str(caught.value) == f"reading buffer {folder}: cannot open: unable to open database file"
    assert not {p for p in open_paths() if p.startswith(str(folder.resolve()))}


def test_only_finite_readings_are_buffered(tmp_path: Path) -> None:
    buffer = ReadingBuffer(str(tmp_path / "b.sqlite"), 3600, Clock(100.0))
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError, match="only finite readings"):
            buffer.append_many([(90.0, "machine_a", 1.0), (90.0, "machine_b", bad)])
    with pytest.raises(ValueError, match="only finite readings"):
        buffer.append(math.inf, "machine_a", 1.0)
    assert buffer.count() == 0, "a batch with one bad reading stores nothing"
    buffer.close()


def test_rows_that_are_not_finite_numbers_in_an_old_file_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    ReadingBuffer(str(path), 3600, Clock(100.0)).close()
    with contextlib.closing(sqlite3.connect(path)) as db:  # as an older exporter could have written it
        db.executemany(
            "INSERT INTO readings (time, metric, value) VALUES (?, ?, ?)",
            [
                (10.0, "machine_a", 1.0),
                (20.0, "machine_a", math.inf),
                (20.0, "machine_b", 2.0),
                (30.0, "machine_a", -math.inf),
                (40.0, "machine_a", "not a number"),
                (50.0, "machine_a", b"\x00"),
                (math.inf, "machine_a", 3.0),
                (60.0, "machine_a", 4.0),
            ],
        )
        db.commit()
    buffer = ReadingBuffer(str(path), 3600, Clock(100.0))
    assert buffer.since(0, 100) == [
        (10.0, "machine_a", 1.0),
        (20.0, "machine_b", 2.0),
        (60.0, "machine_a", 4.0),
    ]
    page = buffer.since(10.0, 1)
    assert page == [(20.0, "machine_b", 2.0)], "a bad row neither fills a page nor hides a good one"
    assert buffer.has_after(20.0) and not buffer.has_after(60.0), "bad rows alone ask for no next page"
    buffer.close()
