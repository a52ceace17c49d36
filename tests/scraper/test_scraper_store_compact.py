"""The compact samples layout, its migration from revision 0002, rollups and history, on both backends."""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from scraper.exposition import Sample
from scraper.schema import sample_time_sql
from scraper.state import MachineView
from scraper.store import MIGRATIONS, SampleBatch, Store

T0 = 1_764_136_800.0  # 2025-11-26 06:00:00 UTC, a whole hour


def exporter_like(rng: random.Random, machine: int) -> list[Sample]:
    """Samples shaped like the exporter's: readings with decimals, counters, bytes, labelled disks."""
    samples = [
        Sample("machine_temperature_celsius", {}, round(rng.uniform(40, 90), 2)),
        Sample("machine_pressure_bar", {}, round(rng.uniform(0.9, 1.2), 3)),
        Sample("machine_speed_rpm", {}, round(rng.uniform(1400, 1500), 1)),
        Sample("millwatch_serial_up", {}, 1.0),
        Sample("millwatch_serial_readings_total", {}, float(rng.randrange(10**6))),
        Sample("system_cpu_usage_ratio", {}, rng.random()),
        Sample("system_memory_available_bytes", {}, float(rng.randrange(10**9, 6 * 10**9))),
        Sample("process_cpu_seconds_total", {}, round(rng.uniform(0, 1000), 2)),
    ]
    for mount in ("/", "/data"):
        samples.append(Sample("system_disk_free_bytes", {"mountpoint": mount}, float(rng.randrange(10**10))))
    return samples


def test_sqlite_keeps_a_sample_in_at_most_24_bytes(tmp_path: Path) -> None:
    """The storage contract: file size over rows, 100,000 samples written as the scraper writes them."""
    database = tmp_path / "compact.db"
    store = Store(f"sqlite:///{database}")
    store.migrate()
    rng = random.Random(8)
    rows = 0
    try:
        for step in range(250):  # 40 machines x 10 series x 250 scrapes, 15 s apart
            batches = [
                SampleBatch(f"m{m:02d}", T0 + 15 * step + m / 10, exporter_like(rng, m)) for m in range(40)
            ]
            rows += store.write(batches)
    finally:
        store.close()
    assert rows == 100_000
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert connection.execute("SELECT count(*) FROM samples").fetchone()[0] == rows
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        # The samples table alone (dbstat): the layout's own cost, whatever else the file holds.
        table_bytes = connection.execute("SELECT count(*) FROM dbstat WHERE name = 'samples'").fetchone()[0]
        sql = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'samples'").fetchone()[0]
    finally:
        connection.close()
    assert "WITHOUT ROWID" in sql.upper()
    assert table_bytes * page_size / rows <= 24


def test_history_picks_raw_minute_or_hour_and_aggregates(store: Store) -> None:
    # One sample every 15 s for two hours: values 0, 1, 2, ... (minute k holds 4k .. 4k+3).
    batches = [
        SampleBatch("m", T0 + 15 * i, [Sample("machine_temperature_celsius", {}, float(i))])
        for i in range(480)
    ]
    assert store.write(batches) == 480

    raw = store.history("m", "machine_temperature_celsius", T0, T0 + 59, 15)
    assert [(p.time, p.min, p.max, p.count) for p in raw] == [(T0 + 15 * i, i, i, 1) for i in range(4)]

    minutes = store.history("m", "machine_temperature_celsius", T0, T0 + 3 * 60 - 1, 60)
    assert [(p.time, p.min, p.avg, p.max, p.count) for p in minutes] == [
        (T0 + 60 * k, 4 * k, 4 * k + 1.5, 4 * k + 3, 4) for k in range(3)
    ]
    five = store.history("m", "machine_temperature_celsius", T0, T0 + 600 - 1, 300)
    assert [(p.min, p.max, p.count) for p in five] == [(0, 19, 20), (20, 39, 20)]

    hours = store.history("m", "machine_temperature_celsius", T0, T0 + 7200, 3600)
    assert [(p.time, p.min, p.avg, p.max, p.count) for p in hours] == [
        (T0, 0, 119.5, 239, 240),
        (T0 + 3600, 240, 359.5, 479, 240),
    ]
    assert store.history("m", "nothing_here", T0, T0 + 7200, 3600) == []
    with pytest.raises(ValueError):
        store.history("m", "machine_temperature_celsius", T0, T0 + 60, 0)


def test_rollups_count_a_sample_once_however_often_it_is_written(store: Store) -> None:
    batch = SampleBatch("m", T0 + 5, [Sample("machine_temperature_celsius", {}, 70.0)])
    assert store.write([batch]) == 1
    assert store.write([batch]) == 0  # a retried write
    assert store.write([SampleBatch("m", T0 + 20, [Sample("machine_temperature_celsius", {}, 90.0)])]) == 1
    (minute,) = store.history("m", "machine_temperature_celsius", T0, T0 + 60, 60)
    assert (minute.min, minute.avg, minute.max, minute.count) == (70, 80, 90, 2)
    (hour,) = store.history("m", "machine_temperature_celsius", T0, T0 + 60, 3600)
    assert hour.count == 2


def test_rollups_have_their_own_retention(store_url: str) -> None:
    store = Store(store_url, rollup_retention=86400 * 10)
    store.migrate()
    try:
        store.write(
            [
                SampleBatch("m", T0 + 15 * i, [Sample("machine_temperature_celsius", {}, 1.0)])
                for i in range(8)
            ]
        )
        # Raw samples older than T0 + 60 go; the rollups stay until their own retention.
        assert store.prune(T0 + 60, rollups_before=T0 - 1) == 4
        assert [p.count for p in store.history("m", "machine_temperature_celsius", T0, T0 + 120, 60)] == [
            4,
            4,
        ]
        store.prune(T0 + 60, rollups_before=T0 + 60)  # the minute and the hour that started before
        assert [p.count for p in store.history("m", "machine_temperature_celsius", T0, T0 + 120, 60)] == [4]
        assert [p.count for p in store.history("m", "machine_temperature_celsius", T0, T0 + 120, 3600)] == []
    finally:
        store.close()


def test_a_machine_gets_no_more_series_than_its_bound(store_url: str) -> None:
    store = Store(store_url, max_series_per_machine=5)
    store.migrate()
    try:
        flood = [Sample("churn", {"id": str(i)}, 1.0) for i in range(8)]
        assert store.write([SampleBatch("noisy", T0, flood)]) == 5
        assert store.series_refused_total == 3
        assert store.write([SampleBatch("quiet", T0, [Sample("machine_temperature_celsius", {}, 7.0)])]) == 1
        assert store.query_samples("quiet", "machine_temperature_celsius", T0, T0) == [(T0, 7.0)]
    finally:
        store.close()


def migrate_to(store_url: str, revision: str) -> None:
    """Upgrade the database to `revision` (not further), as an older version left it."""
    _alembic(store_url, command.upgrade, revision)


def downgrade_to(store_url: str, revision: str) -> None:
    """Downgrade the database to `revision`, as going back to an older version does."""
    _alembic(store_url, command.downgrade, revision)


def _alembic(store_url: str, action: Callable[[Config, str], None], revision: str) -> None:
    engine = sa.create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            action(config, revision)
    finally:
        engine.dispose()


def test_the_migration_from_0002_keeps_every_sample(store_url: str) -> None:
    migrate_to(store_url, "0002")
    rng = random.Random(5)
    expected: dict[tuple[int, float], float] = {}
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as connection:
            for series_id, metric in ((1, "machine_temperature_celsius"), (2, "machine_pressure_bar")):
                connection.execute(
                    sa.text(
                        "INSERT INTO series (id, machine_id, metric, labels_json) VALUES (:i, 'm', :n, '{}')"
                    ),
                    {"i": series_id, "n": metric},
                )
            rows = []
            for i in range(3000):
                when = T0 + 15 * i + rng.random()  # scrape times with sub-millisecond digits, as before
                for series_id in (1, 2):
                    value = rng.uniform(-50, 150)
                    rows.append({"s": series_id, "t": when, "v": value})
                    expected[(series_id, round(when * 1000))] = value
            connection.execute(
                sa.text("INSERT INTO samples (series_id, time, value) VALUES (:s, :t, :v)"), rows
            )
    finally:
        engine.dispose()

    store = Store(store_url)
    try:
        store.migrate()
        engine = sa.create_engine(store_url)
        try:
            with engine.connect() as connection:
                stored = {
                    (s, t): v
                    for s, t, v in connection.execute(
                        sa.text(f"SELECT series_id, {sample_time_sql()}, value FROM samples")
                    )
                }
        finally:
            engine.dispose()
        assert stored == expected
        # The rollups were built from the old samples, and writing goes on after them.
        first_hour = store.history("m", "machine_temperature_celsius", T0, T0 + 3599, 3600)
        assert first_hour[0].count == 240
        assert math.isclose(
            first_hour[0].avg,
            sum(v for (s, t), v in expected.items() if s == 1 and t < (T0 + 3600) * 1000) / 240,
        )
        assert store.write_samples("m", T0 + 15 * 3000, [Sample("machine_temperature_celsius", {}, 1.0)]) == 1
    finally:
        store.close()


def test_a_write_that_fails_after_its_samples_keeps_none_of_them(sqlite_store: Store) -> None:
    """All or nothing: samples, views and rollups of one write commit together."""
    sample = [Sample("machine_temperature_celsius", {}, 70.0)]
    assert sqlite_store.write([SampleBatch("m", T0, sample)]) == 1  # the series is known from now on
    view = MachineView(id="m", name="m", url="http://127.0.0.1:1/metrics", readings={"x": math.nan})
    with pytest.raises(ValueError):  # a view that cannot be saved, after the samples went in
        sqlite_store.write([SampleBatch("m", T0 + 15, sample)], [view])
    assert sqlite_store.query_samples("m", "machine_temperature_celsius", 0, 2e9) == [(T0, 70.0)]
    assert sqlite_store.write([SampleBatch("m", T0 + 15, sample)]) == 1  # the retry stores it, once
    (minute,) = sqlite_store.history("m", "machine_temperature_celsius", T0, T0 + 59, 60)
    assert minute.count == 2
