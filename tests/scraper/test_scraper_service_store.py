"""The scraper service and a database that is slow, locked, hung or shrinking: the map never waits for it.

Real exporters on loopback, real SQLite files (a second connection holding the write lock plays
the other process), and a Store whose writes hang until the test lets them go (a PostgreSQL
server that stopped answering).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from scraper_helpers import (
    FakeExporter,
    async_wait_until,
    machine_yaml,
    run,
    running,
    status_of,
    write_inventory,
)
from support import MillwatchProcess, wait_until

import scraper.job_planner
import scraper.service
from scraper.exposition import Sample
from scraper.service import ScraperService
from scraper.state import FleetState, MachineView, Status
from scraper.store import SampleBatch, Store
from scraper.store_writer import in_daemon_thread

Exporters = Callable[[], FakeExporter]


class HangingStore(Store):
    """A real SQLite store whose writes hang while `open` is clear, like a server that stopped answering."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.open = threading.Event()
        self.open.set()
        self.in_write = 0
        self.max_in_write = 0
        self._lock = threading.Lock()

    def write(
        self, batches: Sequence[SampleBatch], views: Sequence[MachineView] = (), *, operation: str = "write"
    ) -> int:
        with self._lock:
            self.in_write += 1
            self.max_in_write = max(self.max_in_write, self.in_write)
        try:
            self.open.wait(timeout=60)
            return super().write(batches, views, operation=operation)
        finally:
            with self._lock:
                self.in_write -= 1


@pytest.fixture
def hanging_store(tmp_path: Path) -> Iterator[HangingStore]:
    store = HangingStore(f"sqlite:///{tmp_path / 'millwatch.db'}")
    store.migrate()
    yield store
    store.open.set()
    store.close()


@contextlib.contextmanager
def write_locked(database: Path) -> Iterator[None]:
    """Another process's connection holds the SQLite file's write lock until the block ends."""
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


class Published:
    """Every view the fleet state published: scrape times of successful scrapes, and any stale one."""

    def __init__(self, state: FleetState) -> None:
        self.scrape_times: dict[str, list[float]] = defaultdict(list)
        self.stale: list[str] = []
        state.subscribe(self)

    def __call__(self, changed: list[MachineView], removed: list[str]) -> None:
        for view in changed:
            if view.status is Status.STALE:
                self.stale.append(view.id)
            if view.status is Status.UP and view.last_scrape is not None:
                # The store keeps times in whole milliseconds.
                self.scrape_times[view.id].append(round(view.last_scrape.time * 1000) / 1000)

    def latest(self, machine_id: str) -> float:
        return max(self.scrape_times[machine_id], default=0.0)


def stored_times(store: Store, machine_id: str) -> list[float]:
    return [t for t, _ in store.query_samples(machine_id, "machine_temperature_celsius", 0, 2e9)]


def stored_rows(store_url: str, machine_id: str) -> int:
    """Rows of the machine's temperature series, counted directly (duplicates would show here)."""
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM samples JOIN series ON series.id = samples.series_id "
                        "WHERE series.machine_id = :m AND series.metric = 'machine_temperature_celsius'"
                    ),
                    {"m": machine_id},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_hanging_store_does_not_hold_up_the_map(
    tmp_path: Path, hanging_store: HangingStore, exporter_factory: Exporters, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ids = ["a", "b", "c"]
    # A 1 s interval: on a busy host a 0.3 s one overlaps runs by itself, whatever the store does.
    path = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml(i, exporter_factory().url) for i in ids],
        defaults="defaults:\n  scrape_interval: 1s\n  scrape_timeout: 0.9s\n",
    )
    state = FleetState()
    published = Published(state)

    async def scenario() -> None:
        async with running(path, hanging_store, state) as service:
            await async_wait_until(lambda: all(status_of(state, i) is Status.UP for i in ids), 60, "all up")
            await async_wait_until(lambda: service.pending_samples == 0, 60, "the first samples written")
            hanging_store.open.clear()
            hung_at = time.time()
            # Twice as long as it takes a machine to turn stale (3 x 1 s + 0.9 s) without scrapes.
            await async_wait_until(
                lambda: all(published.latest(i) > hung_at + 8 for i in ids),
                timeout=60,
                what="the map to go on for 8 s while the store hangs",
            )
            assert hanging_store.in_write == 1 and service.pending_samples > 0
            hanging_store.open.set()
            await async_wait_until(lambda: service.pending_samples == 0, what="the held samples written")

    run(scenario())
    assert published.stale == []
    assert hanging_store.max_in_write == 1  # one writer, not one per scrape piling up on the store
    assert "maximum number of running instances" not in caplog.text
    for machine_id in ids:
        # Every scrape the map showed is in the database once; `stop` wrote the last ones.
        assert stored_times(hanging_store, machine_id) == sorted(published.scrape_times[machine_id])
        assert stored_rows(f"sqlite:///{tmp_path / 'millwatch.db'}", machine_id) == len(
            published.scrape_times[machine_id]
        )


def test_a_locked_sqlite_file_is_retried_after_the_back_off_and_loses_nothing(
    tmp_path: Path, exporter_factory: Exporters
) -> None:
    ids = ["a", "b", "c", "d"]
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml(i, exporter_factory().url) for i in ids])
    database = tmp_path / "millwatch.db"
    store = Store(f"sqlite:///{database}", sqlite_busy_timeout=0.3)
    store.migrate()
    state = FleetState()
    published = Published(state)
    rest = 0.5

    async def scenario() -> None:
        async with running(path, store, state, store_retry_min=rest, store_retry_max=rest) as service:
            await async_wait_until(lambda: all(status_of(state, i) is Status.UP for i in ids), what="all up")
            await async_wait_until(lambda: service.pending_samples == 0, what="the first samples written")
            with write_locked(database):
                failures, scrapes = service.store_failures_total, service.scrapes_total
                started, locked_at = time.monotonic(), time.time()
                await async_wait_until(
                    lambda: (
                        service.scrapes_total >= scrapes + 20 and service.store_failures_total >= failures + 2
                    ),
                    timeout=20,
                    what="scrapes and failed writes while the file is locked",
                )
                elapsed = time.monotonic() - started
                tries = service.store_failures_total - failures
                # Each try waits 0.3 s for the lock, then the writer rests 0.5 s: the scrapes queued
                # meanwhile (about 13 a second) do not each try again at once.
                assert tries <= elapsed / (0.3 + rest) + 2, (tries, elapsed)
                assert all(published.latest(i) > locked_at for i in ids)  # the map goes on
            await async_wait_until(lambda: service.pending_samples == 0, what="the held samples written")

    try:
        run(scenario())
        assert published.stale == []
        for machine_id in ids:
            assert stored_times(store, machine_id) == sorted(published.scrape_times[machine_id])
            assert stored_rows(f"sqlite:///{database}", machine_id) == len(published.scrape_times[machine_id])
    finally:
        store.close()


def test_stop_gives_a_hanging_store_a_bounded_time_and_counts_what_it_loses(
    tmp_path: Path, hanging_store: HangingStore, exporter: FakeExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)])
    state = FleetState()

    async def scenario() -> tuple[ScraperService, float]:
        async with running(path, hanging_store, state, stop_flush_timeout=0.5) as service:
            await async_wait_until(
                lambda: service.pending_samples == 0 and status_of(state, "press") is Status.UP, what="up"
            )
            hanging_store.open.clear()
            await async_wait_until(
                lambda: hanging_store.in_write == 1 and service.pending_samples > 0, what="a write hanging"
            )
            started = time.monotonic()
            await service.stop()
            return service, time.monotonic() - started

    service, took = run(scenario())
    assert took < 2.5
    assert service.samples_dropped_total > 0 and service.pending_samples == 0
    assert (
        f"stopping with {service.samples_dropped_total} samples not written to the store: "
        "the database did not answer within 0.5s"
    ) in caplog.text


def test_millwatch_scrape_stops_promptly_while_another_process_locks_the_database(
    tmp_path: Path, exporter: FakeExporter
) -> None:
    exporter.set_readings(temperature=60.0)
    inventory = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml("press", exporter.url)],
        defaults="defaults:\n  scrape_interval: 1s\n  scrape_timeout: 0.9s\n"
        "  thresholds:\n    machine_temperature_celsius: {warn: 80, alarm: 95}\n",
    )
    database = tmp_path / "millwatch.db"
    args = ["scrape", "--inventory", str(inventory), "--db", f"sqlite:///{database}"]
    with MillwatchProcess(args, tmp_path) as scraper:
        # (down first is possible on a busy host: a first scrape that timed out.)
        wait_until(lambda: re.search(r"press: \w+ -> up", scraper.stderr), timeout=60, what="a good scrape")
        with write_locked(database):
            # The scrapes go on while the database is locked: the alarm is seen at once.
            exporter.set_readings(temperature=99.0)
            wait_until(
                lambda: re.search(r"press: \w+ -> alarm", scraper.stderr),
                timeout=60,
                what="the alarm during the lock",
            )
            started = time.monotonic()
            assert scraper.stop(signal.SIGINT, timeout=30) == 0
            took = time.monotonic() - started
    # 3 s for the last write, then out: before, it waited for the lock (and could wait forever).
    assert took < 15, scraper.stderr
    assert "samples not written to the store" in scraper.stderr


def test_a_machine_removed_while_its_scrape_is_in_flight_does_not_come_back(
    tmp_path: Path, sqlite_store: Store, exporter_factory: Exporters
) -> None:
    a, b = exporter_factory(), exporter_factory()
    b.delay = 1.0  # answers within its timeout, long after the reload that removes it
    path = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml("a", a.url), machine_yaml("b", b.url, scrape_interval="5s", scrape_timeout="3s")],
    )
    state = FleetState()
    seen: list[str] = []
    state.subscribe(lambda changed, removed: seen.extend(v.id for v in changed))

    async def scenario() -> None:
        async with running(path, sqlite_store, state) as service:
            await async_wait_until(lambda: b.in_flight == 1, what="b's scrape in flight")
            write_inventory(path, [machine_yaml("a", a.url)])
            await async_wait_until(lambda: state.get("b") is None, what="b removed")
            seen.clear()
            await async_wait_until(lambda: b.in_flight == 0, what="b's scrape finished")
            before = len(a.requests)
            await async_wait_until(lambda: len(a.requests) >= before + 2, what="more scrapes of a")
            await async_wait_until(lambda: service.pending_samples == 0, what="the writes done")

    run(scenario())
    assert state.get("b") is None and "b" not in seen
    assert [v.id for v in sqlite_store.load_views()] == ["a"]  # what `serve --no-scrape` shows


def test_views_queued_for_a_machine_removed_meanwhile_are_not_written(
    tmp_path: Path, hanging_store: HangingStore, exporter_factory: Exporters
) -> None:
    a, b = exporter_factory(), exporter_factory()
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("a", a.url), machine_yaml("b", b.url)])
    state = FleetState()

    async def scenario() -> None:
        async with running(path, hanging_store, state) as service:
            await async_wait_until(
                lambda: status_of(state, "a") is Status.UP and status_of(state, "b") is Status.UP,
                what="a and b up",
            )
            await async_wait_until(lambda: service.pending_samples == 0, what="the first writes")
            assert {v.id for v in hanging_store.load_views()} == {"a", "b"}
            hanging_store.open.clear()
            await async_wait_until(lambda: hanging_store.in_write == 1, what="a write hanging")
            before = len(b.requests)
            await async_wait_until(lambda: len(b.requests) >= before + 2, what="b's views queued")
            write_inventory(path, [machine_yaml("a", a.url)])
            await async_wait_until(lambda: state.get("b") is None, what="b removed")
            hanging_store.open.set()
            await async_wait_until(
                lambda: service.pending_samples == 0 and [v.id for v in hanging_store.load_views()] == ["a"],
                what="b's saved view deleted and not written again",
            )

    run(scenario())
    assert [v.id for v in hanging_store.load_views()] == ["a"]


def test_an_inventory_that_cannot_be_scheduled_is_refused_whole(
    tmp_path: Path, sqlite_store: Store, exporter_factory: Exporters, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = exporter_factory(), exporter_factory(), exporter_factory()
    real_trigger = scraper.job_planner.IntervalTrigger

    def trigger(*args: Any, seconds: float, **kwargs: Any) -> Any:
        if seconds == 7:  # the scheduler's refusal of one machine, whatever the reason
            raise ValueError("the scheduler refuses 7 s")
        return real_trigger(*args, seconds=seconds, **kwargs)

    monkeypatch.setattr(scraper.job_planner, "IntervalTrigger", trigger)
    good = [machine_yaml("a", a.url), machine_yaml("b", b.url)]
    path = write_inventory(tmp_path / "machines.yaml", good)
    state = FleetState()

    async def scenario() -> None:
        async with running(path, sqlite_store, state) as service:
            await async_wait_until(lambda: status_of(state, "b") is Status.UP, what="b up")
            # b leaves and c comes with an interval the scheduler refuses: nothing of it applies.
            write_inventory(path, [machine_yaml("a", a.url), machine_yaml("c", c.url, scrape_interval="7s")])
            error = await async_wait_until(lambda: service.inventory_error, what="the refusal")
            assert error == f"{path}: machines[1]: cannot be scheduled: the scheduler refuses 7 s"
            assert service.inventory is not None and [m.id for m in service.inventory.machines] == ["a", "b"]
            assert [v.id for v in state.snapshot()] == ["a", "b"]
            scraped = len(b.requests)
            await async_wait_until(lambda: len(b.requests) >= scraped + 2, what="b still scraped")
            assert c.requests == []

            write_inventory(path, [*good, machine_yaml("c", c.url)])
            await async_wait_until(lambda: status_of(state, "c") is Status.UP, what="c once schedulable")
            assert service.inventory_error is None

    run(scenario())


def test_a_scheduler_failure_midway_restores_the_previous_jobs(
    tmp_path: Path, sqlite_store: Store, exporter_factory: Exporters, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = exporter_factory(), exporter_factory(), exporter_factory()
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("a", a.url), machine_yaml("b", b.url)])
    state = FleetState()
    real_add_job = scraper.service.AsyncIOScheduler.add_job

    failures = [RuntimeError("job store unavailable")]

    def add_job(self: Any, func: Any, trigger: Any = None, *args: Any, **kwargs: Any) -> Any:
        # The scheduler refuses the first scrape job asked for after the change (c's), then works.
        if str(kwargs.get("id", "")).startswith("scrape:") and failures:
            raise failures.pop()
        return real_add_job(self, func, trigger, *args, **kwargs)

    async def scenario() -> None:
        async with running(path, sqlite_store, state) as service:
            await async_wait_until(lambda: status_of(state, "b") is Status.UP, what="b up")
            monkeypatch.setattr(scraper.service.AsyncIOScheduler, "add_job", add_job)
            write_inventory(path, [machine_yaml("a", a.url), machine_yaml("c", c.url)])
            error = await async_wait_until(lambda: service.inventory_error, what="the refusal")
            assert "cannot schedule the scrapes of this inventory: job store unavailable" in error
            assert [v.id for v in state.snapshot()] == ["a", "b"]
            scraped_a, scraped_b = len(a.requests), len(b.requests)
            await async_wait_until(
                lambda: len(a.requests) >= scraped_a + 2 and len(b.requests) >= scraped_b + 2,
                what="the previous machines still scraped",
            )
            assert c.requests == []

    run(scenario())


def test_retention_deletes_old_samples_soon_after_start_and_keeps_new_ones(
    tmp_path: Path, store: Store, exporter: FakeExporter
) -> None:
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)])
    long_ago = time.time() - 7200
    for step in range(5):
        store.write_samples("press", long_ago + step, [Sample("machine_temperature_celsius", {}, 50.0)])
    store.write_samples("gone", long_ago, [Sample("machine_temperature_celsius", {}, 50.0)])
    state = FleetState()

    async def scenario() -> ScraperService:
        async with running(path, store, state, retention_seconds=3600, prune_interval=0.2) as service:
            await async_wait_until(lambda: service.samples_pruned_total == 6, what="the old samples pruned")
            await async_wait_until(lambda: len(stored_times(store, "press")) >= 2, what="new samples")
            return service

    service = run(scenario())
    assert all(t > long_ago + 3600 for t in stored_times(store, "press"))
    assert stored_times(store, "gone") == []
    assert service.samples_pruned_total == 6


def test_retention_off_keeps_everything(tmp_path: Path, sqlite_store: Store, exporter: FakeExporter) -> None:
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)])
    sqlite_store.write_samples("press", 1000.0, [Sample("machine_temperature_celsius", {}, 50.0)])
    state = FleetState()

    async def scenario() -> int:
        async with running(path, sqlite_store, state, retention_seconds=None, prune_interval=0.1) as service:
            await async_wait_until(lambda: service.scrapes_total >= 3, what="a few scrapes")
            return await service.prune()

    assert run(scenario()) == 0
    assert stored_times(sqlite_store, "press")[0] == 1000.0


def test_a_failing_prune_is_counted_and_tried_again(tmp_path: Path, exporter: FakeExporter) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 'millwatch.db'}")
    store.migrate()
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)])
    state = FleetState()

    async def scenario() -> None:
        async with running(path, store, state, retention_seconds=60) as service:
            folder.rename(tmp_path / "unmounted")
            store.close()
            failures = service.store_failures_total
            assert await service.prune() == 0
            assert service.store_failures_total >= failures + 1
            (tmp_path / "unmounted").rename(folder)
            store.write_samples("press", 1000.0, [Sample("machine_temperature_celsius", {}, 50.0)])
            assert await service.prune() == 1

    try:
        run(scenario())
    finally:
        store.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retention_seconds": 0}, "retention_seconds must be greater than 0"),
        ({"retention_seconds": -5.0}, "retention_seconds must be greater than 0"),
        ({"prune_interval": 0}, "prune_interval must be greater than 0"),
    ],
)
def test_bad_retention_settings_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScraperService(tmp_path / "machines.yaml", Store("sqlite://"), FleetState(), **options)


def test_store_calls_in_daemon_threads_hand_back_results_and_errors_and_can_be_abandoned() -> None:
    async def scenario() -> None:
        assert await in_daemon_thread(lambda: 42) == 42
        with pytest.raises(ZeroDivisionError):
            await in_daemon_thread(lambda: 1 / 0)
        gate = threading.Event()
        waiting = asyncio.ensure_future(in_daemon_thread(lambda: gate.wait(10)))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.set()  # the abandoned call ends by itself; its result goes nowhere

    run(scenario())
