"""Big writes, as the store writer makes them for a fleet: on PostgreSQL stored over two connections
at once (`Store._write_in_parallel`). Each sample once, rollups exact, all or nothing; SQLite runs
the same checks through its one connection."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support import database_url

from scraper.errors import StoreError
from scraper.exposition import Sample
from scraper.schema import sample_time_sql, split_time
from scraper.store import PARALLEL_WRITE_MIN_SAMPLES, SampleBatch, Store
from scraper.store_bulk import HOUR_MS, MINUTE_MS, PARALLEL_BUILD_MIN_SERIES
from tests.scraper.test_scraper_rollups import next_hour, recomputed, table_buckets

MACHINES = 300
SERIES = 40  # 12,000 samples a round: over PARALLEL_WRITE_MIN_SAMPLES


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fleet(when: float, value: float, machines: range = range(MACHINES)) -> list[SampleBatch]:
    """One scrape of each machine at `when` (spread over a second, as scrapes are)."""
    return [
        SampleBatch(
            f"m{m:03d}",
            when + m / 1000,
            (
                [Sample("machine_temperature_celsius", {}, value + m)]
                + [
                    Sample("system_disk_free_bytes", {"mountpoint": f"/{i}"}, value * i)
                    for i in range(1, SERIES)
                ]
            ),
        )
        for m in machines
    ]


def write_a_minute(store: Store, clock: Clock, minute: float) -> None:
    """The fleet's four rounds of the minute starting at `minute`, each written 2 s after it."""
    for when in (minute, minute + 15, minute + 30, minute + 45):
        clock.now = when + 2
        assert store.write(fleet(when, when - minute)) == MACHINES * SERIES


def scalar(url: str, sql: str, **params: object) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(sql), params).scalar_one())
    finally:
        engine.dispose()


def test_a_fleet_s_write_stores_each_sample_once_and_its_repeat_nothing(store_url: str) -> None:
    assert MACHINES * SERIES >= PARALLEL_WRITE_MIN_SAMPLES
    h = next_hour()
    store = Store(store_url, clock=Clock(h))
    store.migrate()
    try:
        assert store.write(fleet(h, 1.0)) == MACHINES * SERIES  # creates the series
        assert store.write(fleet(h + 15, 2.0)) == MACHINES * SERIES
        assert store.write(fleet(h + 15, 9.0)) == 0  # a retried write: nothing twice, first value kept
        # Half the fleet repeated beside a new round of the other half, in one write.
        mixed = fleet(h + 15, 9.0, range(MACHINES // 2)) + fleet(h + 30, 3.0, range(MACHINES // 2, MACHINES))
        assert store.write(mixed) == MACHINES // 2 * SERIES
        assert scalar(store_url, "SELECT count(*) FROM samples") == (2 * MACHINES + MACHINES // 2) * SERIES
        last = f"m{MACHINES - 1:03d}"
        assert store.query_samples(last, "machine_temperature_celsius", h, h + 60) == [
            (round((h + (MACHINES - 1) / 1000) * 1000) / 1000, 1.0 + MACHINES - 1),
            (round((h + 15 + (MACHINES - 1) / 1000) * 1000) / 1000, 2.0 + MACHINES - 1),
            (round((h + 30 + (MACHINES - 1) / 1000) * 1000) / 1000, 3.0 + MACHINES - 1),
        ]
        if store.dialect == "postgresql":
            # The round at h + 15 was stored by two transactions (the two connections), as meant.
            assert (
                scalar(
                    store_url,
                    "SELECT count(DISTINCT xmin::text) FROM samples "
                    f"WHERE {sample_time_sql()} BETWEEN :a AND :b",
                    a=round((h + 15) * 1000),
                    b=round((h + 16) * 1000),
                )
                == 2
            )
    finally:
        store.close()


def test_a_build_due_in_a_fleet_s_write_counts_both_halves_and_late_samples_once(store_url: str) -> None:
    """The write that builds a minute holds samples of that minute from both halves; later writes
    bring late samples (before the watermark) in both halves: every rollup equals a recomputation."""
    h = next_hour()
    clock = Clock(h + 2)
    store = Store(store_url, clock=clock)
    store.migrate()
    try:
        assert store.write(fleet(h, 1.0)) == MACHINES * SERIES
        clock.now = h + 20
        assert store.write(fleet(h + 15, 2.0)) == MACHINES * SERIES
        # Due now: the minute [h, h + 60), built by this write after its samples of h + 45 are in.
        clock.now = h + 95
        assert store.write(fleet(h + 45, 4.0) + fleet(h + 75, 5.0, range(10))) == (MACHINES + 10) * SERIES
        minute = round(h * 1000)
        assert scalar(store_url, "SELECT rolled_up_to_ms FROM rollup_state") == minute + MINUTE_MS
        assert scalar(store_url, "SELECT sum(count) FROM rollup_minute WHERE bucket_ms = :b", b=minute) == (
            3 * MACHINES * SERIES
        )
        # Late: minute h is built; these are merged into it by the write that stores them.
        clock.now = h + 100
        assert store.write(fleet(h + 30, 3.0)) == MACHINES * SERIES
        assert store.write(fleet(h + 30, 3.0)) == 0
        clock.now = h + 3600 + 31
        store.flush_rollups()
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        assert table_buckets(store_url, "rollup_hour") == recomputed(store_url, HOUR_MS)
        (point,) = store.history("m000", "machine_temperature_celsius", h, h + 59, 60)
        assert (point.min, point.max, point.count) == (1.0, 4.0, 4)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_fleet_s_write_whose_second_half_fails_stores_nothing(tmp_path: Path) -> None:
    """Another transaction holds a row the second connection must insert: that half runs into the
    statement timeout, the whole write fails, and none of its samples (first half included) is
    stored; once the other transaction is gone, the retried write stores every sample once."""
    url = database_url("postgres", tmp_path)
    h = next_hour()
    store = Store(url, clock=Clock(h), postgres_statement_timeout=1.0)
    store.migrate()
    blocker = sa.create_engine(url)
    try:
        assert store.write(fleet(h, 1.0)) == MACHINES * SERIES
        last = f"m{MACHINES - 1:03d}"
        series_id = scalar(
            url,
            "SELECT id FROM series WHERE machine_id = :m AND metric = 'machine_temperature_celsius'",
            m=last,
        )
        when = h + 15
        with blocker.connect() as other:
            other.execute(
                sa.text("INSERT INTO samples VALUES (:b, :s, :o, -1)"),
                {
                    "s": series_id,
                    **dict(zip("bo", split_time(round((when + (MACHINES - 1) / 1000) * 1000)))),
                },
            )
            with pytest.raises(StoreError):
                store.write(fleet(when, 2.0))
            other.rollback()
        assert (
            scalar(
                url,
                f"SELECT count(*) FROM samples WHERE {sample_time_sql()} >= :t",
                t=round(when * 1000),
            )
            == 0
        )
        assert store.write(fleet(when, 2.0)) == MACHINES * SERIES
        assert scalar(url, "SELECT count(*) FROM samples") == 2 * MACHINES * SERIES
    finally:
        blocker.dispose()
        store.close()


def test_a_fleet_s_build_with_fresh_samples_is_split_and_counts_each_sample_once(store_url: str) -> None:
    """The usual build, due in a write of fresh samples (none of the minutes it builds): on
    PostgreSQL built first, its series in two halves over two connections at once; every rollup
    equals a recomputation, late samples after it included."""
    assert MACHINES * SERIES >= PARALLEL_BUILD_MIN_SERIES
    h = next_hour()
    clock = Clock(h + 2)
    store = Store(store_url, clock=clock)
    store.migrate()
    try:
        write_a_minute(store, clock, h)
        clock.now = h + 92
        assert store.write(fleet(h + 90, 90.0)) == MACHINES * SERIES
        minute = round(h * 1000)
        assert scalar(store_url, "SELECT rolled_up_to_ms FROM rollup_state") == minute + MINUTE_MS
        assert scalar(store_url, "SELECT sum(count) FROM rollup_minute WHERE bucket_ms = :b", b=minute) == (
            4 * MACHINES * SERIES
        )
        if store.dialect == "postgresql":
            # Built by two transactions: this write's and the one beside it.
            assert (
                scalar(
                    store_url,
                    "SELECT count(DISTINCT xmin::text) FROM rollup_minute WHERE bucket_ms = :b",
                    b=minute,
                )
                == 2
            )
        clock.now = h + 100
        assert store.write(fleet(h + 50, 50.0, range(MACHINES // 2))) == MACHINES // 2 * SERIES  # late
        clock.now = h + 3600 + 31
        store.flush_rollups()
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        assert table_buckets(store_url, "rollup_hour") == recomputed(store_url, HOUR_MS)
        if store.dialect == "postgresql":  # the hour too, each half from its own series' minutes
            assert scalar(store_url, "SELECT count(DISTINCT xmin::text) FROM rollup_hour") == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_a_build_whose_half_beside_fails_stores_nothing_and_its_retry_counts_once(tmp_path: Path) -> None:
    """Another transaction holds a rollup row of the half built beside: that half runs into the
    statement timeout, the whole write fails — no sample of it stored, the watermark where it was
    — and once the other transaction is gone the retried write builds every minute exactly."""
    url = database_url("postgres", tmp_path)
    h = next_hour()
    clock = Clock(h + 2)
    store = Store(url, clock=clock, postgres_statement_timeout=1.0)
    store.migrate()
    blocker = sa.create_engine(url)
    try:
        write_a_minute(store, clock, h)
        top = scalar(url, "SELECT max(id) FROM series")
        minute = round(h * 1000)
        clock.now = h + 92
        with blocker.connect() as other:
            other.execute(
                sa.text("INSERT INTO rollup_minute VALUES (:s, :b, 0, 0, 0, 1)"), {"s": top, "b": minute}
            )
            with pytest.raises(StoreError, match="statement timeout"):
                store.write(fleet(h + 90, 90.0))
            other.rollback()
        assert scalar(url, "SELECT rolled_up_to_ms FROM rollup_state") < minute + MINUTE_MS
        assert (
            scalar(url, f"SELECT count(*) FROM samples WHERE {sample_time_sql()} >= :t", t=minute + 90_000)
            == 0
        )
        assert store.write(fleet(h + 90, 90.0)) == MACHINES * SERIES
        assert scalar(url, "SELECT rolled_up_to_ms FROM rollup_state") == minute + MINUTE_MS
        assert scalar(url, "SELECT sum(count) FROM rollup_minute WHERE bucket_ms = :b", b=minute) == (
            4 * MACHINES * SERIES
        )
        clock.now = h + 3600 + 31
        store.flush_rollups()
        assert table_buckets(url, "rollup_minute") == recomputed(url, MINUTE_MS)
    finally:
        blocker.dispose()
        store.close()
