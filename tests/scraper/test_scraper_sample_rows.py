"""A write's rows column by column (scraper/sample_rows.py) hold what row tuples held: the same rows
in the same order, the late ones picked exactly (those are merged into built rollups), and the
payload of PostgreSQL's COPY and the parameters of SQLite's insert cut from them row for row."""

from __future__ import annotations

import random
import sqlite3
import struct

from scraper.sample_rows import Row, SampleRows
from scraper.schema import BUCKET_MS, OFFSET_BIAS, split_time
from scraper.store_bulk import _SQLITE_ROWS_PER_STATEMENT, _insert_sqlite, copy_payload, samples_payload


def scrapes(seed: int) -> tuple[SampleRows, list[Row]]:
    """Rows of many scrapes (some empty, some sharing a time), and the same rows as tuples."""
    rng = random.Random(seed)
    rows, tuples = SampleRows(), []
    for _ in range(rng.randrange(1, 40)):
        time_ms = 1_700_000_000_000 + rng.randrange(-5, 5) * 60_000 + rng.randrange(60_000)
        values = {rng.randrange(10**6): rng.uniform(-1e9, 1e9) for _i in range(rng.randrange(0, 130))}
        rows.add(time_ms, values)
        tuples += [(series_id, time_ms, value) for series_id, value in values.items()]
    return rows, tuples


def test_rows_are_the_tuples_in_order() -> None:
    for seed in range(50):
        rows, tuples = scrapes(seed)
        assert len(rows) == len(tuples)
        assert rows.tuples() == tuples
        assert rows.times() == [t for _, t, _ in tuples]
        assert rows.oldest() == min((t for _, t, _ in tuples), default=None)
        assert SampleRows.of(tuples).tuples() == tuples


def test_late_rows_are_exactly_those_before_the_watermark() -> None:
    for seed in range(50):
        rows, tuples = scrapes(seed)
        for watermark in {t for _, t, _ in tuples} | {0, 2**62}:
            assert rows.before(watermark).tuples() == [r for r in tuples if r[1] < watermark]


def test_extend_keeps_the_first_rows_first() -> None:
    first, first_tuples = scrapes(1)
    second, second_tuples = scrapes(2)
    first.extend(second)
    assert first.tuples() == first_tuples + second_tuples


def test_copy_payloads_carry_every_row() -> None:
    rows, tuples = scrapes(3)
    header, trailer = 19, 2
    sample_row = struct.Struct(">hiqiiiiid")  # fields, then (length, value) each
    body = samples_payload(rows)[header:-trailer]
    assert len(body) == sample_row.size * len(tuples)
    for (series_id, time_ms, value), found in zip(tuples, sample_row.iter_unpack(body)):
        bucket, offset = split_time(time_ms)
        assert found == (4, 8, bucket, 4, series_id, 4, offset, 8, value)
    stage_row = struct.Struct(">hiiiqid")
    body = copy_payload(rows)[header:-trailer]
    assert [(s, t, v) for _, _, s, _, t, _, v in stage_row.iter_unpack(body)] == tuples


def test_sqlite_insert_stores_every_row_with_its_time_split() -> None:
    rows, tuples = scrapes(4)
    assert len(tuples) > 2 * _SQLITE_ROWS_PER_STATEMENT  # whole statements and a rest
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE samples (bucket INTEGER NOT NULL, series_id INTEGER NOT NULL, "
        "offset_ms INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (bucket, series_id, offset_ms)) "
        "WITHOUT ROWID"
    )
    _insert_sqlite(db.cursor(), rows)
    stored = db.execute(
        f"SELECT series_id, bucket * {BUCKET_MS} + offset_ms + {OFFSET_BIAS}, value FROM samples"
    ).fetchall()
    first: dict[tuple[int, int], float] = {}
    for series_id, time_ms, value in tuples:
        first.setdefault((series_id, time_ms), value)  # INSERT OR IGNORE: the first of a key wins
    assert sorted(stored) == sorted((s, t, v) for (s, t), v in first.items())
