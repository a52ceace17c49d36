"""Backfill after a gap: `millwatch scrape` (a real process) is stopped for 60 s while real
exporters on pseudo-terminals go on reading, then started again. Every reading of the gap must
then be in the database exactly once, at its own sensor time, compared with the exporters' own
buffers; nothing else is stored between the last scrape before and the first scrape after.

The reconciliation rule (docs/architecture.md): readings with a sensor time strictly between the
reading the last stored scrape saw (L) and the one the first scrape after the gap saw (R) come
from /history; L and R themselves are in the database as those scrapes' samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from scraper_helpers import async_wait_until, machine_yaml, run, running, status_of, write_inventory
from support import MillwatchProcess, exporter_on_sensor, wait_until

from scraper.backfill import Backfiller, Gap
from scraper.backfill import _merge as merge_gaps
from scraper.errors import StoreError
from scraper.http1 import Http1Transport
from scraper.inventory import parse_inventory
from scraper.state import FleetState, Status
from scraper.stats import ScraperStats
from scraper.store import SampleBatch, Store

MACHINES = ("press_01", "kiln_02")
CHANNELS = ("machine_temperature_celsius", "machine_pressure_bar", "machine_speed_rpm")
LAST_READING = "millwatch_serial_last_reading_timestamp_seconds"
GAP_SECONDS = 60.0
T = TypeVar("T")


def ms(t: float) -> int:
    """Times compared to the millisecond (what any storage layout keeps of a sensor time)."""
    return round(t * 1000)


def buffered(folder: Path, machine_id: str, metric: str, after: float, before: float) -> dict[int, float]:
    """The exporter's own buffer: readings of `metric` with after < time < before, by millisecond.

    The store keys samples by the millisecond and keeps the first value of a series at one time:
    lines the exporter parsed within one millisecond (a backlog read at once on a loaded host) are
    one sample, the earliest reading's.
    """
    with contextlib.closing(sqlite3.connect(folder / f"{machine_id}.sqlite")) as db:
        rows = db.execute(
            "SELECT time, value FROM readings WHERE metric = ? AND time > ? AND time < ? ORDER BY time",
            (metric, after, before),
        ).fetchall()
    first: dict[int, float] = {}
    for t, v in rows:
        first.setdefault(ms(t), v)
    return first


def stored_rows(
    url: str, machine_id: str, metric: str, start: float, end: float
) -> list[tuple[float, float]]:
    """Every stored row of the series with start < time < end, duplicates included (counted directly)."""
    store = Store(url)
    try:
        return [(t, v) for t, v in store.query_samples(machine_id, metric, start, end) if start < t < end]
    finally:
        store.close()


def scrape_times(url: str, machine_id: str) -> list[tuple[float, float]]:
    """(scrape time, sensor time of the reading it saw), oldest first ([] before the first migration)."""
    store = Store(url)
    try:
        return store.query_samples(machine_id, LAST_READING, 0, 2e9)
    except StoreError:
        return []
    finally:
        store.close()


@pytest.mark.timeout(600)  # the outage itself lasts 60 s
def test_a_60s_scraper_outage_is_backfilled_exactly_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'millwatch.db'}"
    with contextlib.ExitStack() as stack:
        urls = {
            m: stack.enter_context(exporter_on_sensor(m, "normal", tmp_path, stale_after="5s", interval=0.2))[
                1
            ]
            for m in MACHINES
        }
        inventory = write_inventory(
            tmp_path / "machines.yaml",
            [machine_yaml(m, u) for m, u in urls.items()],
            defaults="defaults:\n  scrape_interval: 1s\n  scrape_timeout: 0.8s\n",
        )
        args = ["scrape", "--inventory", str(inventory), "--db", url, "--log-level", "info"]

        with MillwatchProcess(args, tmp_path) as first:
            wait_until(
                lambda: (
                    all(len(scrape_times(url, m)) >= 3 for m in MACHINES)
                    if (tmp_path / "millwatch.db").exists()
                    else False
                ),
                60,
                "three scrapes of each machine stored",
            )
            assert first.stop(signal.SIGTERM) == 0, first.stderr
        stopped = time.time()
        # The exporters go on reading for a full minute with nobody scraping them.
        wait_until(lambda: time.time() - stopped >= GAP_SECONDS, GAP_SECONDS + 30, "the 60 s outage")

        with MillwatchProcess(args, tmp_path) as second:
            restarted = time.time()

            def gap_ends() -> dict[str, tuple[float, float, float, float]]:
                """Per machine: (L scrape time, L reading, R scrape time, R reading) around the outage."""
                ends = {}
                for m in MACHINES:
                    rows = scrape_times(url, m)
                    before = [r for r in rows if r[0] < stopped]
                    after = [r for r in rows if r[0] > restarted]
                    if not before or not after:
                        return {}
                    ends[m] = (*before[-1], *after[0])
                return ends

            ends = wait_until(gap_ends, 60, "a scrape of each machine after the restart")

            def filled() -> bool:
                for m, (_, l_reading, _, r_reading) in ends.items():
                    for metric in CHANNELS:
                        expected = buffered(tmp_path, m, metric, l_reading, r_reading)
                        got = {ms(t) for t, _ in stored_rows(url, m, metric, l_reading, r_reading)}
                        if not set(expected) <= got:
                            return False
                return True

            wait_until(filled, 60, "the gap's readings in the database")
            assert second.stop(signal.SIGTERM) == 0, second.stderr
        assert "backfilled" in second.stderr

    for m, (l_scrape, l_reading, r_scrape, r_reading) in ends.items():
        assert r_reading - l_reading >= GAP_SECONDS  # the sensor read all along
        for metric in CHANNELS:
            expected = buffered(tmp_path, m, metric, l_reading, r_reading)
            assert len(expected) >= GAP_SECONDS * 4, (m, metric, len(expected))  # 5 lines a second
            scraped = {t for t, _ in scrape_times(url, m)}
            # The window also holds the scrape before the outage (its time is after the reading it
            # saw): the backfilled readings are the rows at other times.
            rows = [(t, v) for t, v in stored_rows(url, m, metric, l_reading, r_reading) if t not in scraped]
            times = [ms(t) for t, _ in rows]
            assert len(times) == len(set(times)), f"{m} {metric}: a reading stored twice"
            # Every reading of the gap, once, with its own value...
            by_time = {ms(t): v for t, v in rows}
            assert {t: by_time.get(t) for t in expected} == expected
            # ...and nothing else between the last scrape before the outage and the first after it.
            between = {ms(t) for t, _ in stored_rows(url, m, metric, l_scrape, r_scrape)}
            assert between <= set(expected), f"{m} {metric}: samples in the gap that no reading explains"


def gap_bounds(url: str, machine_id: str, failed_from: float) -> tuple[float, float, float, float] | None:
    """(L scrape time, L reading, R scrape time, R reading) around failures from `failed_from` on.

    L: the last stored scrape before the failures that saw a reading; R: the first after them
    (the failures last more than 3 s). None until both are stored.
    """
    rows = scrape_times(url, machine_id)
    before = [r for r in rows if r[0] < failed_from]
    after = [r for r in rows if r[0] > failed_from + 3]
    if not before or not after:
        return None
    return (*before[-1], *after[0])


def gap_filled(folder: Path, url: str, machine_id: str, after: float, before: float) -> bool:
    """Every buffered reading with after < time < before is in the database."""
    for metric in CHANNELS:
        expected = buffered(folder, machine_id, metric, after, before)
        got = {ms(t) for t, _ in stored_rows(url, machine_id, metric, after, before)}
        if not set(expected) <= got:
            return False
    return True


async def wait_in_thread(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """`async_wait_until` for a predicate that reads files or databases: run off the loop, every 0.2 s.

    The scraper under test shares the loop: a database read on it would delay the scrapes.
    """
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


def assert_backfilled_once(
    folder: Path, url: str, machine_id: str, ends: tuple[float, float, float, float], minimum: int
) -> None:
    """The gap's readings stored once at their own times, nothing else between the two scrapes."""
    l_scrape, l_reading, r_scrape, r_reading = ends
    scraped = {t for t, _ in scrape_times(url, machine_id)}
    for metric in CHANNELS:
        expected = buffered(folder, machine_id, metric, l_reading, r_reading)
        assert len(expected) >= minimum, (metric, len(expected))
        stored = [
            (t, v) for t, v in stored_rows(url, machine_id, metric, l_reading, r_reading) if t not in scraped
        ]
        times = [ms(t) for t, _ in stored]
        assert len(times) == len(set(times)), f"{metric}: a reading stored twice"
        assert {t: v for t, v in ((ms(t), v) for t, v in stored) if t in expected} == expected
        between = {ms(t) for t, _ in stored_rows(url, machine_id, metric, l_scrape, r_scrape)}
        assert between <= set(expected), f"{metric}: samples in the gap that no reading explains"


# Each phase has its own deadline (a failure names it); the whole is bounded by `run`'s.
@pytest.mark.timeout(300)
def test_a_gap_of_failed_scrapes_is_backfilled_exactly_once(tmp_path: Path, sqlite_store: Store) -> None:
    """Scrapes fail for a few seconds (the token file is gone: the scraper refuses to send a
    request), then succeed again: the readings of those seconds come from /history, once."""
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    url = str(sqlite_store.url)
    with exporter_on_sensor("press_01", "normal", tmp_path, stale_after="5s", interval=0.1) as (
        _,
        metrics_url,
    ):
        inventory = write_inventory(
            tmp_path / "machines.yaml",
            [machine_yaml("press_01", metrics_url, auth={"bearer_token_file": str(token)})],
            defaults="defaults:\n  scrape_interval: 0.3s\n  scrape_timeout: 0.25s\n",
        )
        state = FleetState()

        async def scenario() -> tuple[float, float, float, float]:
            async with running(inventory, sqlite_store, state) as service:
                # A scrape that saw a reading (an exporter just started may not have one yet: that
                # case is the next test's).
                await async_wait_until(
                    lambda: seen_reading(state, "press_01"), 30, "a scrape that saw a reading"
                )
                token.unlink()
                await async_wait_until(lambda: status_of(state, "press_01") is Status.DOWN, 30, "down")
                failed_from = time.time()
                await async_wait_until(lambda: time.time() - failed_from > 3, 30, "three seconds of failures")
                token.write_text("s3cret\n")
                # What is asserted below, waited for: the stored readings, not a counter that an
                # earlier (load-made) gap may have moved already.
                ends = await async_wait_until_in_thread(
                    lambda: gap_bounds(url, "press_01", failed_from), 60, "a scrape stored after the failures"
                )
                await wait_in_thread(
                    lambda: gap_filled(tmp_path, url, "press_01", ends[1], ends[3]), 60, "the gap backfilled"
                )
                assert service.stats.backfill_readings_total > 0
                return ends

        ends = run(scenario(), timeout=240)
        assert_backfilled_once(tmp_path, url, "press_01", ends, minimum=20)  # 10 lines a second for over 3 s


@pytest.mark.timeout(300)
def test_a_gap_after_a_scrape_that_saw_no_reading_yet_is_backfilled(
    tmp_path: Path, sqlite_store: Store
) -> None:
    """The only scrape before the outage came while the exporter waited for its sensor's first
    line (up, no reading): the readings of the outage are still backfilled, from the exporter's
    start on. (Before the fix there was no `L` and the outage was lost.)"""
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    url = str(sqlite_store.url)
    with exporter_on_sensor("press_01", "silent", tmp_path, stale_after="60s", interval=0.1) as (
        sensor,
        metrics_url,
    ):
        inventory = write_inventory(
            tmp_path / "machines.yaml",
            [machine_yaml("press_01", metrics_url, auth={"bearer_token_file": str(token)})],
            defaults="defaults:\n  scrape_interval: 0.3s\n  scrape_timeout: 0.25s\n",
        )
        state = FleetState()

        async def scenario() -> tuple[float, tuple[float, float]]:
            async with running(inventory, sqlite_store, state) as service:
                await async_wait_until(lambda: status_of(state, "press_01") is Status.UP, 30, "up")
                token.unlink()
                await async_wait_until(lambda: status_of(state, "press_01") is Status.DOWN, 30, "down")
                assert not seen_reading(state, "press_01")  # every scrape so far came before the first line
                failed_from = time.time()
                sensor.scenario = "normal"  # the sensor starts talking while nobody can scrape
                await async_wait_until(lambda: time.time() - failed_from > 3, 30, "three seconds of failures")
                token.write_text("s3cret\n")

                def first_stored_after() -> tuple[float, float] | None:
                    """(scrape time, reading) of the first scrape after the outage, once stored."""
                    after = [r for r in scrape_times(url, "press_01") if r[0] > failed_from + 3]
                    return after[0] if after else None

                r_scrape, r_reading = await async_wait_until_in_thread(
                    first_stored_after, 60, "a scrape that saw a reading stored"
                )
                await wait_in_thread(
                    lambda: gap_filled(tmp_path, url, "press_01", 0, r_reading), 60, "the outage backfilled"
                )
                assert service.stats.backfill_readings_total > 0
                return failed_from, (r_scrape, r_reading)

        failed_from, (r_scrape, r_reading) = run(scenario(), timeout=240)
        assert [r for r in scrape_times(url, "press_01") if r[0] < failed_from] == [], "a reading seen before"
        # Every reading from the exporter's start to R, once, and nothing else before the scrape of R.
        assert_backfilled_once(tmp_path, url, "press_01", (0.0, 0.0, r_scrape, r_reading), minimum=20)


def seen_reading(state: FleetState, machine_id: str) -> bool:
    """Whether a scrape of the machine has shown a sensor reading (an exporter just started has none)."""
    view = state.get(machine_id)
    return view is not None and bool(view.readings)


async def async_wait_until_in_thread(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    """`wait_in_thread` returning the predicate's first truthy value."""
    found: list[T] = []

    def check() -> bool:
        value = predicate()
        if value:
            found.append(value)
        return bool(value)

    await wait_in_thread(check, timeout, what)
    return found[0]


def test_a_gap_merged_with_one_whose_start_is_unknown_is_still_filled(
    tmp_path: Path, sqlite_store: Store
) -> None:
    """A first backfill postponed before its start was read from the store (a busy database),
    then a gap of failed scrapes: merged, the store is asked for the start and has none (a new
    machine). The failed scrapes' gap knows its start (L) and is filled all the same."""
    with exporter_on_sensor("press_01", "normal", tmp_path, stale_after="5s", interval=0.1) as (
        _,
        metrics_url,
    ):
        inventory = parse_inventory(
            "defaults:\n  scrape_interval: 0.3s\n  scrape_timeout: 0.25s\nmachines:\n"
            + machine_yaml("press_01", metrics_url)
        )
        machine = inventory.get("press_01")
        assert machine is not None
        first_line = wait_until(
            lambda: min(buffered(tmp_path, "press_01", CHANNELS[0], 0, 2e9), default=None),
            30,
            "a first reading",
        )
        wait_until(
            lambda: len(buffered(tmp_path, "press_01", CHANNELS[0], 0, 2e9)) >= 20, 60, "twenty readings"
        )
        now = time.time()
        l_reading, r_reading = first_line / 1000, now - 0.05
        postponed = Gap(None, l_reading, l_reading)  # the first scrape's gap: start in the store
        failures = Gap(l_reading, r_reading, now)  # L seen by a scrape, R by the one after failures
        merged = merge_gaps(postponed, failures)
        assert merged.after is None  # the store is asked first...
        queued: list[SampleBatch] = []

        async def fill() -> int:
            client = Http1Transport()
            try:
                backfiller = Backfiller(sqlite_store, ScraperStats(), queued.extend, asyncio.Semaphore(4))
                return await backfiller.run(client, machine, merged)
            finally:
                await client.aclose()

        count = run(fill())
    # ...and has nothing: the known start is used, every reading between L and R is fetched.
    expected = {m: buffered(tmp_path, "press_01", m, l_reading, r_reading) for m in CHANNELS}
    got: dict[str, dict[int, float]] = {m: {} for m in CHANNELS}
    for batch in queued:
        for sample in batch.samples:
            got[sample.name].setdefault(ms(batch.time), sample.value)
    assert count >= sum(len(e) for e in expected.values()) > 0  # two readings of one ms: one sample
    assert got == expected


@pytest.mark.timeout(120)
def test_a_history_that_keeps_failing_is_retried_less_and_less_often(
    tmp_path: Path, sqlite_store: Store
) -> None:
    """An exporter whose `/history` answers 500 (a broken buffer, an older exporter): the gap is
    retried after the next scrape, then after longer and longer waits, not beside every scrape."""
    import http.server
    import threading

    requests = {"metrics": 0, "history": 0}
    failing_until = [0.0]

    class Exporter(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.startswith("/history"):
                requests["history"] += 1
                self.send_error(500, "buffer unreadable")
                return
            requests["metrics"] += 1
            if time.time() < failing_until[0]:
                self.send_error(503, "busy")
                return
            body = (
                "machine_temperature_celsius 65\n"
                f"millwatch_serial_last_reading_timestamp_seconds {time.time() - 0.05}\n"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        inventory = write_inventory(
            tmp_path / "machines.yaml",
            [machine_yaml("press_01", f"http://127.0.0.1:{server.server_address[1]}/metrics")],
            defaults="defaults:\n  scrape_interval: 0.2s\n  scrape_timeout: 0.15s\n",
        )
        state = FleetState()

        async def scenario() -> tuple[int, int]:
            async with running(inventory, sqlite_store, state) as service:
                await async_wait_until(lambda: status_of(state, "press_01") is Status.UP, 30, "up")
                failing_until[0] = time.time() + 1.5
                await async_wait_until(lambda: status_of(state, "press_01") is Status.DOWN, 30, "down")
                await async_wait_until(
                    lambda: service.stats.backfill_failures_total >= 1, 30, "a failed backfill"
                )
                scrapes_before, history_before = requests["metrics"], requests["history"]
                await async_wait_until(
                    lambda: requests["metrics"] - scrapes_before >= 40, 60, "40 more scrapes"
                )
                return requests["metrics"] - scrapes_before, requests["history"] - history_before

        scrapes, history = run(scenario(), timeout=100)
    finally:
        server.shutdown()
        server.server_close()
    # Waits of 0, 1, 3, 7, 15, 31 intervals after each failure: about six retries in 40 scrapes.
    assert 1 <= history <= 7, (scrapes, history)
