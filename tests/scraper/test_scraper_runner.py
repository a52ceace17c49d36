"""`millwatch scrape` (scraper.runner.run_scrape): runs until a signal, logs as told, fails before starting.

How the `millwatch` command prints those failures is tested with the command, in
tests/server/test_millwatch_cli.py.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from scraper_helpers import FakeExporter, machine_yaml, write_inventory
from support import MillwatchProcess, wait_until

from scraper.errors import InventoryError, InventoryUnreadable, StoreError
from scraper.runner import run_scrape
from scraper.store import Store

# Timeouts a loaded test host meets; the first scrape is at the machine's phase of the interval.
SLOW_OK = (
    "defaults:\n  scrape_interval: 1s\n  scrape_timeout: 0.9s\n"
    "  thresholds:\n    machine_temperature_celsius: {warn: 80, alarm: 95}\n"
)
WARN_LINE = re.compile(r"press: (unknown|down) -> warn \(machine_temperature_celsius 88 ≥ warn 80\)")
UP_LINE = re.compile(r"press: (unknown|down) -> up")


def scrape_process(folder: Path, inventory: Path, db_url: str, *extra: str) -> MillwatchProcess:
    return MillwatchProcess(["scrape", "--inventory", str(inventory), "--db", db_url, *extra], folder)


def stored_temperatures(db_url: str) -> list[tuple[float, float]]:
    store = Store(db_url)
    try:
        return store.query_samples("press", "machine_temperature_celsius", 0, 2e9)
    except StoreError:
        return []  # not migrated yet
    finally:
        store.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_scrapes_into_the_database_until_a_signal(
    tmp_path: Path, exporter: FakeExporter, stop_signal: signal.Signals
) -> None:
    exporter.set_readings(temperature=88.0)
    inventory = write_inventory(
        tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)], defaults=SLOW_OK
    )
    db_url = f"sqlite:///{tmp_path / 'millwatch.db'}"
    with scrape_process(tmp_path, inventory, db_url) as scraper:
        wait_until(lambda: (tmp_path / "millwatch.db").exists(), timeout=60, what="the database file")
        history = wait_until(lambda: stored_temperatures(db_url), timeout=60, what="stored samples")
        assert history[0][1] == 88.0
        # On a busy host a first scrape may time out (down) before one succeeds: wait for the warn.
        wait_until(lambda: WARN_LINE.search(scraper.stderr), timeout=60, what="the change to warn in the log")
        code = scraper.stop(stop_signal)
    assert code == 0, scraper.stderr
    assert "scraper stopped" in scraper.stderr
    store = Store(db_url)
    try:
        (view,) = store.load_views()
        assert view.id == "press" and view.reason == "machine_temperature_celsius 88 ≥ warn 80"
    finally:
        store.close()


def test_scheduler_logs_show_at_debug_level_only(tmp_path: Path, exporter: FakeExporter) -> None:
    inventory = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml("press", exporter.url, scrape_interval="300ms", scrape_timeout="290ms")],
        defaults=SLOW_OK,
    )
    quiet_db = f"sqlite:///{tmp_path / 'quiet.db'}"
    with scrape_process(tmp_path, inventory, quiet_db) as quiet:
        wait_until(lambda: len(stored_temperatures(quiet_db)) >= 2, timeout=60, what="two scrapes")
        wait_until(lambda: UP_LINE.search(quiet.stderr), timeout=60, what="the change to up in the log")
        assert quiet.stop() == 0
    # Their warnings would still show (a missed run on a busy host): not their per-run lines.
    assert "INFO apscheduler" not in quiet.stderr and "INFO aiohttp" not in quiet.stderr

    with scrape_process(
        tmp_path, inventory, f"sqlite:///{tmp_path / 'debug.db'}", "--log-level", "debug"
    ) as loud:
        wait_until(
            lambda: " apscheduler." in loud.stderr,
            timeout=20,
            what="apscheduler log lines",
        )
        assert loud.stop() == 0


def test_an_inventory_with_problems_is_raised_before_the_database_is_created(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text("machines:\n  - {id: a, url: 'gopher://x'}\n  - {id: B, url: 'http://x'}\n")
    with pytest.raises(InventoryError) as caught:
        run_scrape(inventory, f"sqlite:///{tmp_path / 'millwatch.db'}")
    assert [str(p) for p in caught.value.problems] == [
        f"{inventory}:2: machines[0].url: must start with http:// or https://",
        f"{inventory}:3: machines[1].id: must use only lowercase letters, digits, '_' and '-'",
    ]
    assert not (tmp_path / "millwatch.db").exists()


def test_a_missing_inventory_is_raised_as_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InventoryUnreadable, match="nowhere.yaml: cannot read: No such file or directory"):
        run_scrape(tmp_path / "nowhere.yaml", f"sqlite:///{tmp_path / 'millwatch.db'}")


def test_an_unusable_database_is_raised(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "machines.yaml", [])
    with pytest.raises(StoreError, match="store open failed: the folder"):
        run_scrape(inventory, f"sqlite:///{tmp_path / 'missing' / 'millwatch.db'}")
