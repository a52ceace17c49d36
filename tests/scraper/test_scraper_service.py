"""The scraper service end to end: real exporters on loopback, a real SQLite file, a real inventory file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scraper_helpers import (
    FakeExporter,
    async_wait_until,
    machine_yaml,
    run,
    running,
    status_of,
    write_inventory,
)
from support import closed_port_url, write_atomically

from scraper.errors import InventoryError, UnknownMachineError
from scraper.service import ScraperService
from scraper.state import FleetState, LastScrape, MachineView, Status
from scraper.store import Store

Exporters = Callable[[], FakeExporter]


def test_up_warn_alarm_and_sensor_fault(
    tmp_path: Path, sqlite_store: Store, exporter_factory: Exporters
) -> None:
    normal, warm, hot, blind = (exporter_factory() for _ in range(4))
    normal.set_readings(temperature=60.0, pressure=1.02)
    warm.set_readings(temperature=85.0)
    hot.set_readings(temperature=97.2)
    blind.serial_up.set(0)
    blind.last_reading.set(time.time() - 94)
    inventory = write_inventory(
        tmp_path / "machines.yaml",
        [
            machine_yaml(
                "normal", normal.url, name="Normal Press", site="Berlin", location={"lat": 52.5, "lon": 13.4}
            ),
            machine_yaml("warm", warm.url),
            machine_yaml("hot", hot.url),
            machine_yaml("blind", blind.url),
        ],
    )
    state = FleetState()

    async def scenario() -> None:
        async with running(inventory, sqlite_store, state) as service:
            expected = {
                "normal": Status.UP,
                "warm": Status.WARN,
                "hot": Status.ALARM,
                "blind": Status.SENSOR_FAULT,
            }
            await async_wait_until(
                lambda: all(status_of(state, k) is v for k, v in expected.items()), what="the four statuses"
            )
            assert service.scrape_failures_total == 0
            assert service.scrapes_total >= 4
            await async_wait_until(lambda: service.pending_samples == 0, what="samples written")

    run(scenario())
    normal_view = state.get("normal")
    assert normal_view is not None
    assert normal_view.reason is None
    assert normal_view.name == "Normal Press" and normal_view.site == "Berlin"
    assert normal_view.readings["machine_temperature_celsius"] == 60.0
    assert normal_view.readings["machine_pressure_bar"] == 1.02
    assert "machine_info" not in normal_view.readings
    assert normal_view.system.memory_used_ratio == pytest.approx(0.25)
    assert normal_view.system.disk_used_ratio == pytest.approx(0.7)
    assert normal_view.system.uptime_seconds == pytest.approx(3600, abs=60)
    assert normal_view.last_scrape is not None and normal_view.last_scrape.error is None
    assert state.get("warn") is None
    assert state.get("warm").reason == "machine_temperature_celsius 85 ≥ warn 80"  # type: ignore[union-attr]
    assert state.get("hot").reason == "machine_temperature_celsius 97.2 ≥ alarm 95"  # type: ignore[union-attr]
    blind_reason = state.get("blind").reason  # type: ignore[union-attr]
    assert blind_reason is not None and blind_reason.startswith("serial sensor not reporting, last reading 9")

    # What the map showed is in the database too: samples and the views of a restart.
    history = sqlite_store.query_samples("hot", "machine_temperature_celsius", 0, time.time() + 1)
    assert history and all(value == 97.2 for _, value in history)
    saved = {v.id: v for v in sqlite_store.load_views()}
    assert saved["hot"].status is Status.ALARM and saved["normal"].status is Status.UP


def slow(exporter: FakeExporter) -> str:
    exporter.delay = 10
    return exporter.url


def error_500(exporter: FakeExporter) -> str:
    exporter.status = 500
    return exporter.url


def garbage(exporter: FakeExporter) -> str:
    exporter.body = b"<html><body>Welcome to the router</body></html>\n"
    return exporter.url


def oversized(exporter: FakeExporter) -> str:
    exporter.body = b"machine_padding 1\n" * 500
    return exporter.url


@pytest.mark.parametrize(
    ("prepare", "reason"),
    [
        (lambda exporter: closed_port_url(), "connection refused"),
        (slow, "timeout after 0.25s"),
        (error_500, "HTTP 500"),
        (garbage, "bad exposition at line 1: expected a metric name, found '<html><body>Welcome'"),
        (oversized, "body larger than 1000 bytes"),
    ],
    ids=["closed-port", "slow", "http-500", "garbage", "oversized"],
)
def test_failed_scrapes_are_down_with_the_real_reason(
    tmp_path: Path,
    sqlite_store: Store,
    exporter: FakeExporter,
    prepare: Callable[[FakeExporter], str],
    reason: str,
) -> None:
    inventory = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", prepare(exporter))])
    state = FleetState()

    async def scenario() -> MachineView:
        async with running(inventory, sqlite_store, state, max_body_bytes=1000) as service:
            view = await async_wait_until(
                lambda: (v := state.get("press")) is not None and v.status is Status.DOWN and v, what="down"
            )
            assert service.scrape_failures_total >= 1
            return view

    view = run(scenario())
    assert view.reason == reason
    assert view.last_scrape is not None and view.last_scrape.error == reason
    assert view.last_success_time is None and view.readings == {}


def test_a_machine_that_goes_down_keeps_its_last_readings_and_comes_back(
    tmp_path: Path, sqlite_store: Store, exporter: FakeExporter
) -> None:
    exporter.set_readings(temperature=70.0)
    inventory = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)])
    state = FleetState()

    async def scenario() -> None:
        async with running(inventory, sqlite_store, state):
            up = await async_wait_until(
                lambda: (v := state.get("press")) and v.status is Status.UP and v, what="up"
            )
            exporter.status = 503
            down = await async_wait_until(
                lambda: (v := state.get("press")) and v.status is Status.DOWN and v, what="down"
            )
            assert down.reason == "HTTP 503"
            assert down.readings == up.readings and down.readings["machine_temperature_celsius"] == 70.0
            assert down.last_success_time is not None and down.last_success_time >= up.last_success_time
            exporter.status = 200
            await async_wait_until(lambda: status_of(state, "press") is Status.UP, what="up again")

    run(scenario())


def test_inventory_reload_adds_removes_and_disables_machines(
    tmp_path: Path, sqlite_store: Store, exporter_factory: Exporters
) -> None:
    a, b, c = exporter_factory(), exporter_factory(), exporter_factory()
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("a", a.url), machine_yaml("b", b.url)])
    state = FleetState()
    removed: list[str] = []
    state.subscribe(lambda changed, gone: removed.extend(gone))

    async def scenario() -> None:
        async with running(path, sqlite_store, state) as service:
            await async_wait_until(lambda: status_of(state, "b") is Status.UP, what="b up")
            write_inventory(path, [machine_yaml("a", a.url), machine_yaml("c", c.url, name="Newcomer")])
            await async_wait_until(lambda: status_of(state, "c") is Status.UP, what="the added machine up")
            assert state.get("c").name == "Newcomer"  # type: ignore[union-attr]
            assert state.get("b") is None and removed == ["b"]
            assert [v.id for v in sqlite_store.load_views()] == ["a", "c"] or await async_wait_until(
                lambda: [v.id for v in sqlite_store.load_views()] == ["a", "c"],
                what="b's saved view forgotten",
            )

            write_inventory(path, [machine_yaml("a", a.url), machine_yaml("c", c.url, enabled=False)])
            await async_wait_until(lambda: status_of(state, "c") is Status.DISABLED, what="c disabled")
            requests_when_disabled = len(c.requests)
            before = len(a.requests)
            await async_wait_until(lambda: len(a.requests) >= before + 3, what="more scrapes of a")
            assert len(c.requests) <= requests_when_disabled + 1  # at most one that was already under way
            assert service.inventory_error is None

    run(scenario())


def test_a_broken_inventory_keeps_the_last_good_fleet(
    tmp_path: Path, sqlite_store: Store, exporter_factory: Exporters
) -> None:
    a, b = exporter_factory(), exporter_factory()
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("a", a.url), machine_yaml("b", b.url)])
    state = FleetState()

    async def scenario() -> None:
        async with running(path, sqlite_store, state) as service:
            await async_wait_until(lambda: status_of(state, "b") is Status.UP, what="b up")
            good = path.read_text()
            write_atomically(path, good + "  - {id: c, url: 'ftp://nowhere'}\n  - id: [broken\n")
            error = await async_wait_until(lambda: service.inventory_error, what="the inventory error")
            assert error.startswith(f"{path}:")
            assert "YAML syntax error" in error
            assert [v.id for v in state.snapshot()] == ["a", "b"]
            scraped = b.requests.copy()
            await async_wait_until(lambda: len(b.requests) > len(scraped) + 2, what="scraping to go on")

            write_atomically(path, good + "  - {id: c, url: 'ftp://nowhere'}\n")  # valid YAML, bad inventory
            await async_wait_until(
                lambda: (
                    service.inventory_error
                    and "machines[2].url: must start with http" in service.inventory_error
                ),
                what="the new problem",
            )
            assert f"{path}:" in (service.inventory_error or "")
            write_atomically(path, good)
            await async_wait_until(lambda: service.inventory_error is None, what="the error cleared")
            assert [v.id for v in state.snapshot()] == ["a", "b"]

    run(scenario())


def test_start_keeps_saved_views_of_known_machines_and_marks_old_ones_stale(
    tmp_path: Path, sqlite_store: Store, exporter_factory: Exporters
) -> None:
    kept, moved = exporter_factory(), exporter_factory()
    kept.delay = moved.delay = 10  # the first scrapes do not finish before the initial views are checked
    long_ago = time.time() - 1000
    saved = MachineView(
        id="kept",
        name="old name",
        url=kept.url,
        status=Status.WARN,
        reason="machine_temperature_celsius 85 ≥ warn 80",
        last_scrape=LastScrape(time=long_ago, duration_seconds=0.01),
        last_success_time=long_ago,
        readings={"machine_temperature_celsius": 85.0},
    )
    sqlite_store.save_views(
        [
            saved,
            saved.with_changes(id="moved", url="http://127.0.0.1:9/old"),
            saved.with_changes(id="gone"),
        ]
    )
    path = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml("kept", kept.url, name="New Name"), machine_yaml("moved", moved.url)],
    )
    state = FleetState()
    first: list[list[MachineView]] = []
    state.subscribe(lambda changed, removed: first.append(changed) if not first else None)

    async def scenario() -> None:
        async with running(path, sqlite_store, state, max_concurrency=1):
            pass

    run(scenario())
    initial = {v.id: v for v in first[0]}
    assert set(initial) == {"kept", "moved"}
    assert initial["kept"].status is Status.STALE
    assert initial["kept"].reason == "no scrape for over 1s"  # 3 x 0.3s + 0.25s, a reason that stays put
    assert initial["kept"].readings == {"machine_temperature_celsius": 85.0}
    assert initial["kept"].name == "New Name"  # identity comes from the inventory
    assert initial["moved"].status is Status.UNKNOWN and initial["moved"].readings == {}


def test_start_with_a_broken_inventory_raises_and_starts_nothing(tmp_path: Path, sqlite_store: Store) -> None:
    path = tmp_path / "machines.yaml"
    path.write_text(
        "machines:\n  - {id: a, url: 'http://127.0.0.1:1/'}\n  - {id: a, url: 'http://127.0.0.1:2/'}\n"
    )
    state = FleetState()

    async def scenario() -> None:
        service = ScraperService(path, sqlite_store, state)
        with pytest.raises(InventoryError) as caught:
            await service.start()
        assert (
            str(caught.value)
            == f"{path}:3: machines[1].id: duplicate id 'a' (first used by machines[0] at line 2)"
        )
        await service.stop()  # harmless

    run(scenario())
    assert state.snapshot() == []


def test_scrape_now(tmp_path: Path, sqlite_store: Store, exporter: FakeExporter) -> None:
    path = write_inventory(
        tmp_path / "machines.yaml",
        [
            machine_yaml("on", exporter.url, scrape_interval="1h", scrape_timeout="2s"),
            machine_yaml("off", exporter.url, enabled=False),
            "  - {id: pushed, mode: push}\n",
        ],
    )
    state = FleetState()

    async def scenario() -> None:
        service = ScraperService(path, sqlite_store, state)
        with pytest.raises(RuntimeError, match="not started"):
            await service.scrape_now("on")
        async with running(path, sqlite_store, state) as service:
            # The scheduled scrapes are at the machine's phase of the hour: scraped now, by hand.
            await service.scrape_now("on")
            assert status_of(state, "on") is Status.UP
            exporter.set_readings(temperature=91.5)
            view = await service.scrape_now("on")
            assert view.status is Status.WARN and state.get("on") == view
            await async_wait_until(lambda: service.pending_samples == 0, what="the samples written")
            assert view.last_scrape is not None
            stored_at = round(view.last_scrape.time * 1000) / 1000  # the store keeps milliseconds
            assert sqlite_store.query_samples("on", "machine_temperature_celsius", stored_at, 2e9) == [
                (stored_at, 91.5)
            ]
            assert service.scheduled_machines == {"on"}  # push and disabled machines have no job
            requests = len(exporter.requests)
            assert (await service.scrape_now("off")).status is Status.DISABLED
            assert (await service.scrape_now("pushed")).status is Status.UNKNOWN  # never scraped
            assert len(exporter.requests) == requests
            with pytest.raises(UnknownMachineError) as caught:
                await service.scrape_now("nope")
            assert caught.value.machine_id == "nope"

    run(scenario())


def test_staleness_sweep(tmp_path: Path, sqlite_store: Store, exporter: FakeExporter) -> None:
    path = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml("m", exporter.url, scrape_interval="1h", scrape_timeout="2s")],
    )
    state = FleetState()

    async def scenario() -> None:
        async with running(path, sqlite_store, state) as service:
            await service.scrape_now("m")  # its scheduled scrape is at its phase of the hour
            assert status_of(state, "m") is Status.UP
            assert service.sweep_staleness(time.time()) == []
            (stale,) = service.sweep_staleness(time.time() + 3 * 3600 + 10)
            assert stale.status is Status.STALE and stale.reason == "no scrape for over 3h"
            assert status_of(state, "m") is Status.STALE
            # Later sweeps change nothing: the stale fleet is not sent to the browsers again.
            assert service.sweep_staleness(time.time() + 5 * 3600) == []

    run(scenario())


def test_scrapes_in_flight_stay_within_max_concurrency(
    tmp_path: Path, sqlite_store: Store, exporter: FakeExporter
) -> None:
    exporter.delay = 0.05
    path = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml(f"m{i:02}", exporter.url) for i in range(12)],
        defaults="defaults:\n  scrape_interval: 1s\n  scrape_timeout: 0.9s\n",
    )
    state = FleetState()

    async def scenario() -> None:
        async with running(path, sqlite_store, state, max_concurrency=3):
            await async_wait_until(
                lambda: all(v.status is Status.UP for v in state.snapshot()), 60, "every machine scraped"
            )

    run(scenario())
    assert 1 < exporter.max_in_flight <= 3


def test_a_store_outage_does_not_stop_the_map_and_loses_no_samples(
    tmp_path: Path, exporter: FakeExporter
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 'millwatch.db'}")
    store.migrate()
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)])
    state = FleetState()
    outage_scrapes: list[float] = []

    async def scenario() -> ScraperService:
        async with running(path, store, state) as service:
            await async_wait_until(lambda: status_of(state, "press") is Status.UP, what="up")
            await async_wait_until(lambda: service.pending_samples == 0, what="first samples written")
            folder.rename(tmp_path / "unmounted")  # the database goes away...
            store.close()
            await async_wait_until(lambda: service.store_failures_total >= 2, what="store failures")
            exporter.set_readings(temperature=99.0)
            view = await async_wait_until(
                lambda: (v := state.get("press")) and v.status is Status.ALARM and v,
                what="the alarm during the outage",
            )
            assert view.last_scrape is not None
            outage_scrapes.append(round(view.last_scrape.time * 1000) / 1000)  # as the store keeps it
            await async_wait_until(lambda: service.pending_samples > 0, what="samples held")
            (tmp_path / "unmounted").rename(folder)  # ...and comes back
            await async_wait_until(lambda: service.pending_samples == 0, what="held samples written")
            return service

    service = run(scenario())
    try:
        assert service.samples_dropped_total == 0
        history = store.query_samples("press", "machine_temperature_celsius", 0, time.time() + 1)
        times = [t for t, _ in history]
        assert outage_scrapes[0] in times
        assert len(times) == len(set(times))  # retried writes did not duplicate anything
        assert (outage_scrapes[0], 99.0) in history
        assert any(view.status is Status.ALARM for view in store.load_views())
    finally:
        store.close()


def test_the_queue_for_the_store_is_bounded_and_counts_what_it_drops(
    tmp_path: Path, exporter: FakeExporter
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 'millwatch.db'}")
    store.migrate()
    folder.rename(tmp_path / "unmounted")
    store.close()  # no connection left open to the moved file
    path = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)])
    state = FleetState()

    async def scenario() -> None:
        async with running(path, store, state, max_pending_samples=30) as service:
            await async_wait_until(lambda: service.samples_dropped_total > 0, what="dropped samples")
            assert 0 < service.pending_samples <= 30
            assert status_of(state, "press") is Status.UP  # the map goes on regardless

    try:
        run(scenario())
    finally:
        store.close()


def test_a_machine_switched_to_push_loses_its_scrape_job(
    tmp_path: Path, sqlite_store: Store, exporter: FakeExporter
) -> None:
    path = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml("press", exporter.url), machine_yaml("lathe", exporter.url)],
    )
    state = FleetState()

    async def scenario() -> None:
        async with running(path, sqlite_store, state) as service:
            assert service.scheduled_machines == {"press", "lathe"}
            write_inventory(path, [machine_yaml("press", exporter.url), "  - {id: lathe, mode: push}\n"])
            assert await service.reload()
            assert service.scheduled_machines == {"press"}
            assert service.inventory is not None and service.inventory.get("lathe") is not None
            write_inventory(path, [machine_yaml("press", exporter.url), machine_yaml("lathe", exporter.url)])
            assert await service.reload()
            assert service.scheduled_machines == {"press", "lathe"}

    run(scenario())
