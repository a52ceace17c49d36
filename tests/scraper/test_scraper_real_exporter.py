"""The scraper against the real exporter: a SimulatedSensor on a pseudo-terminal, an ExporterApp on
loopback, the ScraperService writing into a real SQLite file."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from scraper_helpers import async_wait_until, machine_yaml, run, write_inventory
from support import exporter_on_sensor

from scraper.service import ScraperService
from scraper.state import FleetState, Status
from scraper.store import Store

TEMPERATURE = "machine_temperature_celsius"


def test_readings_statuses_and_stored_samples_follow_the_sensor(tmp_path: Path, sqlite_store: Store) -> None:
    with contextlib.ExitStack() as stack:
        sensor, url = stack.enter_context(exporter_on_sensor("furnace_01", "normal", tmp_path))
        inventory = write_inventory(
            tmp_path / "machines.yaml",
            [machine_yaml("furnace_01", url, thresholds={TEMPERATURE: {"warn": 80, "alarm": 95}})],
            defaults="defaults:\n  scrape_interval: 0.3s\n  scrape_timeout: 0.25s\n",
        )
        state = FleetState()
        started = time.time()

        def status() -> Status | None:
            view = state.get("furnace_01")
            return None if view is None else view.status

        async def scenario() -> None:
            service = ScraperService(inventory, sqlite_store, state, reload_interval=0.1)
            await service.start()
            try:
                # Up with its readings: an exporter that has just started is up while it waits for
                # the sensor's first line (a loaded machine can scrape it in that window).
                await async_wait_until(
                    lambda: (
                        (v := state.get("furnace_01")) is not None
                        and v.status is Status.UP
                        and TEMPERATURE in v.readings
                    ),
                    what="up with readings",
                )
                view = state.get("furnace_01")
                assert view is not None
                # The simulated sensor drifts around 65 °C, 1 bar, 1480 rpm.
                assert 50 < view.readings[TEMPERATURE] < 80
                assert 0.5 < view.readings["machine_pressure_bar"] < 1.5
                assert 1000 < view.readings["machine_speed_rpm"] < 2000
                assert view.system.uptime_seconds is not None and view.system.uptime_seconds > 0
                assert view.system.memory_used_ratio is not None and 0 < view.system.memory_used_ratio < 1

                sensor.scenario = "overheat"
                await async_wait_until(lambda: status() is Status.WARN, timeout=20, what="warn")
                await async_wait_until(lambda: status() is Status.ALARM, timeout=20, what="alarm")
                view = state.get("furnace_01")
                assert view is not None and view.reason is not None
                assert view.reason.startswith(f"{TEMPERATURE} ") and "≥ alarm 95" in view.reason

                sensor.scenario = "silent"
                # stale_after is 2 s in the exporter: then the serial sensor counts as down.
                await async_wait_until(lambda: status() is Status.SENSOR_FAULT, timeout=20, what="fault")
            finally:
                await service.stop()

        run(scenario())

        # Every scraped temperature went to the database once, rising through the overheat.
        stored = sqlite_store.query_samples("furnace_01", TEMPERATURE, started, time.time())
        times = [t for t, _ in stored]
        assert len(stored) >= 5 and times == sorted(set(times))
        assert min(v for _, v in stored) < 80 and max(v for _, v in stored) >= 95


def test_a_just_started_exporter_waits_for_its_sensor_before_sensor_fault(
    tmp_path: Path, sqlite_store: Store
) -> None:
    with contextlib.ExitStack() as stack:
        # The sensor says nothing yet: the exporter has just started (the demo's first seconds).
        sensor, url = stack.enter_context(exporter_on_sensor("kiln_02", "silent", tmp_path, stale_after="4s"))
        inventory = write_inventory(
            tmp_path / "machines.yaml",
            [machine_yaml("kiln_02", url)],
            defaults="defaults:\n  scrape_interval: 0.3s\n  scrape_timeout: 0.25s\n",
        )
        state = FleetState()
        seen: list[tuple[Status, str | None, float]] = []
        state.subscribe(
            lambda changed, _removed: seen.extend((v.status, v.reason, time.time()) for v in changed)
        )

        async def scenario() -> None:
            service = ScraperService(inventory, sqlite_store, state, reload_interval=0.1)
            await service.start()
            try:
                view = await service.scrape_now("kiln_02")
                assert (view.status, view.reason) == (Status.UP, "waiting for the sensor's first line")
                # Past its stale_after (4 s) without a line, the sensor is at fault...
                await async_wait_until(
                    lambda: (v := state.get("kiln_02")) is not None and v.status is Status.SENSOR_FAULT,
                    timeout=30,
                    what="sensor_fault once stale_after has passed",
                )
                # ...and once it speaks, the machine is up with nothing to explain.
                sensor.scenario = "normal"
                await async_wait_until(
                    lambda: (
                        (v := state.get("kiln_02")) is not None and v.status is Status.UP and v.reason is None
                    ),
                    timeout=30,
                    what="up once the sensor speaks",
                )
            finally:
                await service.stop()

        run(scenario())
        first_fault = next(t for status, _, t in seen if status is Status.SENSOR_FAULT)
        waiting = [t for status, reason, t in seen if reason == "waiting for the sensor's first line"]
        assert waiting and all(t < first_fault for t in waiting)
