"""Storage on SQLite and PostgreSQL: idempotent samples, views that survive a restart, clear failures."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from scraper.errors import StoreError
from scraper.exposition import Sample
from scraper.state import LastScrape, Location, MachineView, Status, SystemSummary, Threshold
from scraper.store import MIGRATIONS, POSTGRES_STATEMENT_TIMEOUT_S, SQLITE_BUSY_TIMEOUT_S, SampleBatch, Store

T0 = 1_764_136_800.0


def scrape(temperature: float = 72.5) -> list[Sample]:
    return [
        Sample("machine_temperature_celsius", {}, temperature),
        Sample("machine_pressure_bar", {}, 1.02),
        Sample("system_disk_free_bytes", {"mountpoint": "/"}, 30e9),
        Sample("system_disk_free_bytes", {"mountpoint": "/data"}, 80e9),
    ]


def full_view(machine_id: str = "ironcast_berlin", **changes: object) -> MachineView:
    view = MachineView(
        id=machine_id,
        name="IronCast Berlin",
        url="http://127.0.0.1:9817/metrics",
        site="Berlin",
        location=Location(52.52, 13.405),
        labels={"line": "casting"},
        enabled=True,
        scrape_interval_seconds=15.0,
        status=Status.WARN,
        reason="machine_temperature_celsius 83.1 ≥ warn 80",
        last_scrape=LastScrape(time=T0, duration_seconds=0.012, error=None),
        last_success_time=T0,
        readings={"machine_temperature_celsius": 83.1, "machine_pressure_bar": 1.02},
        thresholds={"machine_temperature_celsius": Threshold(warn=80, alarm=95)},
        system=SystemSummary(
            uptime_seconds=86400, cpu_usage_ratio=0.12, memory_used_ratio=0.4, disk_used_ratio=0.7
        ),
    )
    return view.with_changes(**changes)


def count_samples(store_url: str) -> int:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM samples")).scalar_one())
    finally:
        engine.dispose()


def test_migrate_is_repeatable_and_uses_its_own_version_table(store: Store, store_url: str) -> None:
    store.migrate()
    engine = sa.create_engine(store_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.connect() as connection:
            version = connection.execute(
                sa.text("SELECT version_num FROM scraper_alembic_version")
            ).scalar_one()
    finally:
        engine.dispose()
    assert {
        "series",
        "samples",
        "machine_state",
        "machine_keys",
        "auth_users",
        "alerts",
        "maintenance_windows",
        "scraper_alembic_version",
    } <= tables
    assert {"scraper_nodes", "scraper_leases"} <= tables
    assert version == newest_revision()


def newest_revision() -> str:
    """The head of the scraper's migrations (whatever revisions later work adds)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_last_value_before_a_scrape_leaves_out_that_scrape_s_own_sample(store: Store) -> None:
    """The backfill after a restart starts at the newest reading stored before the scrape that ended
    the gap; that scrape's own sample may already be stored (the writer runs beside it). Its time
    rounds down to a millisecond below the scrape's time here, and must still not count as older."""
    metric = "millwatch_serial_last_reading_timestamp_seconds"
    older, scrape = 1_796_000_000.123, 1_796_000_060.4004
    store.write_samples("press_14", older, [Sample(metric, {}, 1.0)])
    store.write_samples("press_14", scrape, [Sample(metric, {}, 2.0)])
    assert store.last_value("press_14", metric, before=scrape) == 1.0
    assert store.last_value("press_14", metric, before=scrape + 0.001) == 2.0
    assert store.last_value("press_14", metric, before=older) is None
    assert store.last_value("press_14", metric) == 2.0


@contextlib.contextmanager
def counted_statements(store: Store) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)


def test_samples_years_apart_are_read_in_a_few_statements(store: Store) -> None:
    """Samples are keyed by their minute first, so a series is read a minute at a time. One sample
    from long ago and one from now must not make a read visit every minute in between (with
    retention off, 30 years of minutes took minutes and hit the test's timeout): an empty stretch
    is skipped with one seek."""
    metric = "machine_temperature_celsius"
    long_ago = 1000.0
    store.write_samples("m", long_ago, [Sample(metric, {}, 1.0)])
    store.write_samples("m", T0, [Sample(metric, {}, 2.0)])
    store.write_samples("other", T0 + 60, [Sample(metric, {}, 3.0)])
    with counted_statements(store) as statements:
        assert store.query_samples("m", metric, 0, 2e9) == [(long_ago, 1.0), (T0, 2.0)]
        assert store.last_value("m", metric, before=T0) == 1.0
        assert store.last_value("m", metric, before=long_ago) is None
        hourly = store.history("m", metric, 0, T0 + 3600, 3600)
    assert [(p.time, p.avg) for p in hourly] == [(0.0, 1.0), (T0 - T0 % 3600, 2.0)]
    assert len(statements) < 40


def test_samples_written_twice_are_stored_once(store: Store, store_url: str) -> None:
    assert store.write_samples("ironcast_berlin", T0, scrape()) == 4
    assert store.write_samples("ironcast_berlin", T0, scrape()) == 0  # a retry of the same scrape
    assert store.write_samples("ironcast_berlin", T0 + 15, scrape(74.0)) == 4
    assert count_samples(store_url) == 8
    assert store.query_samples("ironcast_berlin", "machine_temperature_celsius", T0, T0 + 15) == [
        (T0, 72.5),
        (T0 + 15, 74.0),
    ]


def test_a_fresh_store_on_the_same_database_reuses_the_series(store: Store, store_url: str) -> None:
    store.write_samples("m", T0, scrape())
    other = Store(store_url)  # another process, or this one after a restart: an empty series cache
    try:
        assert other.write_samples("m", T0, scrape()) == 0
        assert other.write_samples("m", T0 + 1, scrape()) == 4
    finally:
        other.close()
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM series")).scalar_one() == 4
    finally:
        engine.dispose()


def test_series_are_told_apart_by_machine_and_labels(store: Store) -> None:
    store.write_samples("a", T0, scrape())
    store.write_samples("b", T0, scrape(50.0))
    assert store.query_samples("a", "machine_temperature_celsius", 0, 2e9) == [(T0, 72.5)]
    assert store.query_samples("b", "machine_temperature_celsius", 0, 2e9) == [(T0, 50.0)]
    assert store.query_samples("a", "system_disk_free_bytes", 0, 2e9, {"mountpoint": "/data"}) == [(T0, 80e9)]
    assert store.query_samples("a", "system_disk_free_bytes", 0, 2e9) == []  # no unlabelled series of it


def test_query_range_is_inclusive_and_ordered(store: Store) -> None:
    for offset in (30, 0, 15, 45):
        store.write_samples("m", T0 + offset, [Sample("machine_speed_rpm", {}, offset)])
    assert store.query_samples("m", "machine_speed_rpm", T0 + 15, T0 + 30) == [
        (T0 + 15, 15.0),
        (T0 + 30, 30.0),
    ]
    assert store.query_samples("m", "machine_speed_rpm", T0 + 46, T0 + 99) == []


def test_values_that_are_not_numbers_are_not_stored(store: Store) -> None:
    samples = [
        Sample("machine_a", {}, float("nan")),
        Sample("machine_b", {}, float("inf")),
        Sample("machine_c", {}, 1),
    ]
    assert store.write_samples("m", T0, samples) == 1


def test_the_first_value_wins_when_a_scrape_repeats_a_series(store: Store) -> None:
    assert store.write_samples("m", T0, [Sample("machine_x", {}, 1.0), Sample("machine_x", {}, 2.0)]) == 1
    assert store.query_samples("m", "machine_x", T0, T0) == [(T0, 1.0)]


def test_several_batches_and_views_in_one_write(store: Store) -> None:
    batches = [
        SampleBatch("a", T0, scrape()),
        SampleBatch("b", T0, scrape()),
        SampleBatch("a", T0 + 1, scrape()),
    ]
    assert store.write(batches, [full_view("a"), full_view("b")]) == 12
    assert [v.id for v in store.load_views()] == ["a", "b"]


def test_views_round_trip_and_the_latest_wins(store: Store) -> None:
    first = full_view()
    store.save_views([first, full_view("press_02", status=Status.DOWN, reason="connection refused")])
    assert store.load_views()[0] == first
    later = first.with_changes(status=Status.ALARM, reason="machine_temperature_celsius 97.2 ≥ alarm 95")
    store.save_views([later])
    loaded = store.load_views()
    assert [v.id for v in loaded] == ["ironcast_berlin", "press_02"]
    assert loaded[0] == later
    assert loaded[1].reason == "connection refused"
    store.delete_views(["press_02"])
    assert [v.id for v in store.load_views()] == ["ironcast_berlin"]


def test_an_unreadable_saved_view_is_skipped(store: Store, store_url: str) -> None:
    store.save_views([full_view()])
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO machine_state (machine_id, view_json, updated_at) VALUES ('bad', '{oops', 0)"
                )
            )
    finally:
        engine.dispose()
    assert [v.id for v in store.load_views()] == ["ironcast_berlin"]


def test_concurrent_writers_all_succeed(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for step in range(20):
                store.write_samples(f"m{index % 3}", T0 + step + index / 100, scrape(step))
                store.save_views([full_view(f"m{index % 3}")])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(store.query_samples("m0", "machine_temperature_celsius", 0, 2e9)) == 40


def test_sqlite_runs_in_wal_mode(sqlite_store: Store, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'millwatch.db'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    finally:
        engine.dispose()
    assert sqlite_store.ping()


def test_sqlite_in_a_missing_folder_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'millwatch.db'}")
    assert caught.value.operation == "open"
    assert str(caught.value) == (
        f"store open failed: the folder {tmp_path / 'no' / 'such'} of the SQLite database does not exist"
    )


@pytest.mark.parametrize(
    ("url", "detail"),
    [("not a url", "not a database URL"), ("mysql://u@127.0.0.1/db", "unsupported database 'mysql'")],
)
def test_unusable_urls(url: str, detail: str) -> None:
    with pytest.raises(StoreError, match=detail):
        Store(url)


def test_a_database_that_went_away_raises_store_errors_then_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 'millwatch.db'}")
    store.migrate()
    store.write_samples("m", T0, scrape())
    try:
        folder.rename(tmp_path / "unmounted")  # like a network share going away
        store.close()
        with pytest.raises(StoreError) as caught:
            store.write_samples("m", T0 + 1, scrape())
        assert caught.value.operation == "write_samples"
        assert "unable to open database file" in str(caught.value)
        with pytest.raises(StoreError, match="store save_views failed"):
            store.save_views([full_view()])
        assert not store.ping()
        (tmp_path / "unmounted").rename(folder)
        assert store.write_samples("m", T0 + 1, scrape()) == 4
        assert store.ping()
    finally:
        store.close()


def test_an_unreachable_postgresql_raises_store_errors() -> None:
    store = Store("postgresql+psycopg://postgres@127.0.0.1:1/test")  # nothing listens on port 1
    try:
        with pytest.raises(StoreError) as caught:
            store.write_samples("m", T0, scrape())
        assert caught.value.operation == "write_samples"
        assert "127.0.0.1" in caught.value.detail
        assert not store.ping()
    finally:
        store.close()


def sample_times(store: Store, machine_id: str = "m") -> list[float]:
    return [t for t, _ in store.query_samples(machine_id, "machine_temperature_celsius", 0, 2e9)]


def test_prune_deletes_only_older_samples_in_batches(store: Store, store_url: str) -> None:
    for step in range(10):
        store.write_samples("m", T0 + step, scrape(step))  # 4 samples a step
    store.write_samples("other", T0 + 2, scrape())
    # Batches of 3 rows: several transactions, and a cut inside the samples of one scrape.
    assert store.prune(T0 + 5, batch_rows=3) == 5 * 4 + 4
    assert sample_times(store) == [T0 + step for step in range(5, 10)]
    assert sample_times(store, "other") == []
    assert count_samples(store_url) == 5 * 4
    assert store.prune(T0 + 5) == 0  # nothing older is left
    # The series stay: a later write of the same machine goes on in them, a retried one is idempotent.
    assert store.write_samples("m", T0 + 10, scrape()) == 4
    assert store.write_samples("m", T0 + 9, scrape()) == 0
    assert store.prune(T0 + 100) == 6 * 4
    assert store.prune(T0 + 100, batch_rows=1) == 0


def test_prune_stops_between_batches_when_told(store: Store) -> None:
    for step in range(10):
        store.write_samples("m", T0 + step, [Sample("machine_temperature_celsius", {}, step)])
    asked: list[int] = []

    def keep_going() -> bool:
        asked.append(1)
        return len(asked) <= 2  # two batches, then the service is stopping

    assert store.prune(T0 + 100, batch_rows=3, keep_going=keep_going) == 6
    assert sample_times(store) == [T0 + step for step in range(6, 10)]
    assert store.prune(T0 + 100, keep_going=lambda: False) == 0


def test_prune_keeps_the_saved_views(store: Store) -> None:
    store.write([SampleBatch("ironcast_berlin", T0, scrape())], [full_view()])
    assert store.prune(T0 + 1) == 4
    assert [v.id for v in store.load_views()] == ["ironcast_berlin"]


def test_prune_refuses_a_batch_size_below_one(sqlite_store: Store) -> None:
    with pytest.raises(ValueError, match="batch_rows"):
        sqlite_store.prune(T0, batch_rows=0)


def test_prune_of_a_database_that_went_away_raises_a_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 'millwatch.db'}")
    store.migrate()
    try:
        folder.rename(tmp_path / "unmounted")
        store.close()
        with pytest.raises(StoreError) as caught:
            store.prune(T0)
        assert caught.value.operation == "prune"
    finally:
        store.close()


@contextlib.contextmanager
def locked_by_another_process(store_url: str) -> Iterator[None]:
    """Another client holds the samples table locked (SQLite: the write lock of the whole file)."""
    if store_url.startswith("sqlite"):
        other = sqlite3.connect(sa.make_url(store_url).database or "", isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            yield
            other.execute("ROLLBACK")
        finally:
            other.close()
        return
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("LOCK TABLE samples IN ACCESS EXCLUSIVE MODE"))
            yield
            connection.rollback()
    finally:
        engine.dispose()


def test_a_locked_database_fails_after_the_store_timeout_instead_of_waiting(store_url: str) -> None:
    assert SQLITE_BUSY_TIMEOUT_S <= 5 and POSTGRES_STATEMENT_TIMEOUT_S <= 10  # the defaults
    store = Store(store_url, sqlite_busy_timeout=0.3, postgres_statement_timeout=0.3)
    try:
        store.migrate()
        with locked_by_another_process(store_url):
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                store.write_samples("m", T0, scrape())
            assert time.monotonic() - started < 3
            assert caught.value.operation == "write_samples"
            assert any(text in str(caught.value) for text in ("database is locked", "statement timeout"))
        assert store.write_samples("m", T0, scrape()) == 4  # the lock is gone: all is well again
    finally:
        store.close()


def test_store_timeouts_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeouts"):
        Store(f"sqlite:///{tmp_path / 'millwatch.db'}", sqlite_busy_timeout=0)
