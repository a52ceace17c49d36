"""Rollups built in SQL from the stored samples: exactly once, across restarts, late samples, retried
writes and the upgrade from revision 0008, on both backends."""

from __future__ import annotations

import math
import threading
import time

import sqlalchemy as sa

from scraper.exposition import Sample
from scraper.schema import sample_time_sql
from scraper.store import SampleBatch, Store
from scraper.store_bulk import HOUR_MS, MINUTE_MS
from tests.scraper.test_scraper_store_compact import downgrade_to, migrate_to

Buckets = dict[tuple[int, int], tuple[float, float, float, int]]


def next_hour() -> float:
    """The start of the hour after the next one: sample times no timed build has reached yet."""
    now_ms = math.floor(time.time() * 1000)
    return (now_ms - now_ms % HOUR_MS + 2 * HOUR_MS) / 1000


def readings(machine: str, when: float, *values: float) -> SampleBatch:
    samples = [Sample("machine_temperature_celsius", {}, values[0])]
    samples += [
        Sample("system_disk_free_bytes", {"mountpoint": f"/{i}"}, v) for i, v in enumerate(values[1:])
    ]
    return SampleBatch(machine, when, samples)


def table_buckets(url: str, table: str) -> Buckets:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(f"SELECT series_id, bucket_ms, min, max, sum, count FROM {table}")
            )
            return {(s, b): (lo, hi, round(total, 6), n) for s, b, lo, hi, total, n in rows}
    finally:
        engine.dispose()


def sample_time(connection: sa.Connection) -> str:
    """A sample's time in milliseconds in SQL, in the samples table as its revision keeps it: split
    into slice and offset since 0011, one column before."""
    columns = {c["name"] for c in sa.inspect(connection).get_columns("samples")}
    return sample_time_sql() if "bucket" in columns else "time_ms"


def recomputed(url: str, width: int, before_ms: int | None = None) -> Buckets:
    """The rollup a table should hold, from the raw samples (buckets before `before_ms` only)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            t = sample_time(connection)
            rows = connection.execute(
                sa.text(
                    f"SELECT series_id, {t} - {t} % {width}, min(value), max(value), sum(value), "
                    "count(*) FROM samples GROUP BY 1, 2"
                )
            )
            return {
                (s, b): (lo, hi, round(total, 6), n)
                for s, b, lo, hi, total, n in rows
                if before_ms is None or b < before_ms
            }
    finally:
        engine.dispose()


def watermark(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT rolled_up_to_ms FROM rollup_state")).scalar_one())
    finally:
        engine.dispose()


def test_rollups_equal_a_recomputation_from_the_samples_after_a_restart(store_url: str) -> None:
    """A process writes (new, repeated, mixed and late samples) and goes away without a word; the
    next one builds the rest: every minute and hour holds each stored sample once."""
    h = next_hour()
    first = Store(store_url)
    first.migrate()
    # Minutes on both sides of an hour boundary, not due yet (in the future): left to a later build.
    for k in range(8):
        assert (
            first.write(
                [readings("a", h - 120 + 15 * k, float(k), 10.0 * k), readings("b", h - 119 + 15 * k, 1.0)]
            )
            == 3
        )
    assert first.write([readings("a", h - 120, 0.0, 0.0)]) == 0  # a retried write
    # A mixed write: one stored batch, one new (the COPY meets a stored row on PostgreSQL).
    assert first.write([readings("a", h - 105, 1.0, 10.0), readings("a", h + 600, 5.0, 6.0)]) == 2
    # A late sample (long before the watermark, a backfill): merged into its minute and hour now.
    assert first.write([readings("a", 1_764_136_800.0, 3.0, 4.0)]) == 2
    # History is exact before any build: what is not rolled up comes from the samples.
    minutes = first.history("a", "machine_temperature_celsius", h - 120, h + 59, 60)
    assert [(p.time, p.min, p.max, p.count) for p in minutes] == [
        (h - 120, 0, 3, 4),
        (h - 60, 4, 7, 4),
    ]
    hours = first.history("a", "machine_temperature_celsius", h - 3600, h + 3599, 3600)
    assert [(p.time, p.count) for p in hours] == [(h - 3600, 8), (h, 1)]
    first.engine.dispose()  # no close(): nothing is held in memory that a crash would lose

    second = Store(store_url)
    second.migrate()
    try:
        assert second.write([readings("b", h + 601, 2.0)]) == 1
        second.flush_rollups()
        assert watermark(store_url) == (h + 660) * 1000
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        assert table_buckets(store_url, "rollup_hour") == recomputed(
            store_url, HOUR_MS, before_ms=int(h * 1000)
        )
        # Late samples once their minute (and hour) is built: merged by the write itself.
        assert second.write([readings("a", h - 119, 100.0, 200.0), readings("b", h + 1, -1.0)]) == 3
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        assert table_buckets(store_url, "rollup_hour") == recomputed(
            store_url, HOUR_MS, before_ms=int(h * 1000)
        )
        hours = second.history("a", "machine_temperature_celsius", h - 3600, h + 3599, 3600)
        assert [(p.time, p.min, p.max, p.count) for p in hours] == [(h - 3600, 0, 100, 9), (h, 5, 5, 1)]
    finally:
        second.close()


def test_a_write_builds_the_minutes_that_are_over(store_url: str) -> None:
    """Samples of the scraper's own minutes: a later write builds their rollups (once), and a sample
    that comes after that is merged on its own."""
    store = Store(store_url)
    store.migrate()
    try:
        now = time.time()
        minute = (math.floor(now * 1000) // MINUTE_MS - 3) * MINUTE_MS / 1000  # over, and due
        assert store.write([readings("a", minute + 1, 1.0), readings("a", minute + 2, 3.0)]) == 2
        assert watermark(store_url) >= (minute + 60) * 1000
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        assert store.write([readings("a", minute + 3, 5.0)]) == 1  # late: its minute is built
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        (point,) = store.history("a", "machine_temperature_celsius", minute, minute + 59, 60)
        assert (point.min, point.avg, point.max, point.count) == (1, 3, 5, 3)
    finally:
        store.close()


def write_old_samples(connection: sa.Connection, h: float) -> None:
    """As an older version stored them: one series, 30 samples 15 s apart in the 10 minutes before
    hour `h`."""
    connection.execute(
        sa.text(
            "INSERT INTO series (id, machine_id, metric, labels_json) "
            "VALUES (1, 'a', 'machine_temperature_celsius', '{}')"
        )
    )
    rows = [{"t": round((h - 600 + 15 * i) * 1000), "v": float(i)} for i in range(30)]
    connection.execute(sa.text("INSERT INTO samples VALUES (1, :t, :v)"), rows)


def test_the_upgrade_from_0008_counts_no_stored_sample_twice(store_url: str) -> None:
    """A database the previous version wrote (its rollups merged as it wrote) gets a watermark after
    its newest sample; samples written after the upgrade are rolled up once, the hour then open is
    rebuilt whole from its minutes."""
    h = next_hour()
    migrate_to(store_url, "0008")
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as connection:
            write_old_samples(connection, h)
            # As the previous version left them: every stored sample merged into both rollups.
            for table, width in (("rollup_minute", MINUTE_MS), ("rollup_hour", HOUR_MS)):
                connection.execute(
                    sa.text(
                        f"INSERT INTO {table} SELECT series_id, time_ms - time_ms % {width}, min(value), "
                        "max(value), sum(value), count(*) FROM samples GROUP BY 1, 2"
                    )
                )
    finally:
        engine.dispose()
    newest = round((h - 600 + 15 * 29) * 1000)
    store = Store(store_url)
    try:
        store.migrate()
        assert watermark(store_url) == newest - newest % MINUTE_MS + MINUTE_MS
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        # The newest sample's minute (late now), the next minutes and the next hour.
        assert store.write([readings("a", h - 600 + 15 * 29 + 1, 50.0)]) == 1
        for k in range(12):
            assert store.write([readings("a", h - 120 + 15 * k, float(k))]) == 1
        store.flush_rollups()
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        assert table_buckets(store_url, "rollup_hour") == recomputed(
            store_url, HOUR_MS, before_ms=int(h * 1000)
        )
        (hour,) = store.history("a", "machine_temperature_celsius", h - 3600, h - 1, 3600)
        assert hour.count == 30 + 1 + 8
    finally:
        store.close()


def test_builds_racing_writes_count_every_sample_once(store_url: str) -> None:
    """One thread writes samples (some late, some not) while another keeps building the rollups:
    on PostgreSQL through a second store, as a second scraper process would."""
    h = next_hour()
    writer = Store(store_url)
    writer.migrate()
    builder = writer if store_url.startswith("sqlite") else Store(store_url)
    errors: list[BaseException] = []
    done = threading.Event()

    def build() -> None:
        try:
            while not done.is_set():
                builder.flush_rollups()
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    thread = threading.Thread(target=build)
    thread.start()
    try:
        for k in range(60):
            batches = [readings(f"m{m}", h + 15 * k + m, float(k), float(m)) for m in range(5)]
            # Every third write also repeats an earlier scrape: stored rows beside new ones.
            if k % 3 == 2:
                batches.append(readings("m0", h + 15 * (k - 1), float(k - 1), 0.0))
            assert writer.write(batches) == 10
    finally:
        done.set()
        thread.join(timeout=60)
    assert not errors, errors
    try:
        writer.flush_rollups()
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        assert sum(n for *_, n in table_buckets(store_url, "rollup_minute").values()) == 600
    finally:
        writer.close()
        builder.close()


def test_a_downgrade_to_0008_leaves_whole_rollups(store_url: str) -> None:
    """The previous version merges only what it writes: going back builds what was left to a build."""
    h = next_hour()
    store = Store(store_url)
    store.migrate()
    try:
        for k in range(10):
            assert store.write([readings("a", h - 90 + 15 * k, float(k), 2.0 * k)]) == 2
    finally:
        store.close()
    downgrade_to(store_url, "0008")
    assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
    assert table_buckets(store_url, "rollup_hour") == recomputed(store_url, HOUR_MS)


def test_the_upgrade_to_0010_keeps_every_sample_and_builds_minutes_after_it(store_url: str) -> None:
    """Revision 0010 adds PostgreSQL's time index for the builds (nothing on SQLite); 0011 keys the
    samples time first and drops it: the samples of a 0009 database stay, exact, the minutes after
    them are built exactly, and a downgrade to 0010 (the index back) and on to 0009 keeps them."""
    h = next_hour()
    migrate_to(store_url, "0009")
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as connection:
            write_old_samples(connection, h)
    finally:
        engine.dispose()
    old = [(h - 600 + 15 * i, float(i)) for i in range(30)]
    store = Store(store_url)
    try:
        store.migrate()
        assert store.query_samples("a", "machine_temperature_celsius", h - 3600, h) == old
        for k in range(8):
            assert store.write([readings("a", h + 15 * k, float(k))]) == 1
        assert store.write([readings("a", h - 600, 99.0)]) == 0  # stored once, before and after
        store.flush_rollups()
        assert table_buckets(store_url, "rollup_minute") == recomputed(store_url, MINUTE_MS)
        (point,) = store.history("a", "machine_temperature_celsius", h, h + 119, 120)
        assert (point.min, point.max, point.count) == (0.0, 7.0, 8)
    finally:
        store.close()
    engine = sa.create_engine(store_url)
    try:
        downgrade_to(store_url, "0010")
        with engine.connect() as connection:
            times = connection.execute(sa.text("SELECT time_ms, value FROM samples ORDER BY 1")).all()
            assert [(t / 1000, v) for t, v in times] == old + [(h + 15 * k, float(k)) for k in range(8)]
            if store_url.startswith("postgresql"):
                indexes = connection.execute(
                    sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_samples_time_brin'")
                ).scalars()
                assert ["brin" in d for d in indexes] == [True]
        downgrade_to(store_url, "0009")
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM samples")).scalar_one() == 38
    finally:
        engine.dispose()
