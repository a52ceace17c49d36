"""`millwatch scrape` (scraper.runner.run_scrape) as a real process: runs until a signal, clear exits."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from scraper_helpers import FakeExporter, machine_yaml, write_inventory
from support import wait_until

from scraper.errors import StoreError
from scraper.store import Store

RUN = "import sys; from scraper.runner import run_scrape; sys.exit(run_scrape(sys.argv[1], sys.argv[2]))"


def start(inventory: Path, db_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(inventory), db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 20) -> tuple[int, str]:
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, stderr


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
    inventory = write_inventory(tmp_path / "machines.yaml", [machine_yaml("press", exporter.url)])
    db_url = f"sqlite:///{tmp_path / 'millwatch.db'}"
    process = start(inventory, db_url)
    try:
        wait_until(lambda: (tmp_path / "millwatch.db").exists(), what="the database file")
        history = wait_until(lambda: stored_temperatures(db_url), timeout=20, what="stored samples")
        assert history[0][1] == 88.0
        process.send_signal(stop_signal)
        code, stderr = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert code == 0, stderr
    assert "press: unknown -> warn (machine_temperature_celsius 88 ≥ warn 80)" in stderr
    assert "scraper stopped" in stderr
    store = Store(db_url)
    try:
        (view,) = store.load_views()
        assert view.id == "press" and view.reason == "machine_temperature_celsius 88 ≥ warn 80"
    finally:
        store.close()


def test_an_inventory_with_problems_exits_2_and_prints_them(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text("machines:\n  - {id: a, url: 'gopher://x'}\n  - {id: B, url: 'http://x'}\n")
    code, stderr = finish(start(inventory, f"sqlite:///{tmp_path / 'millwatch.db'}"))
    assert code == 2
    assert f"{inventory}:2: machines[0].url: must start with http:// or https://" in stderr
    assert f"{inventory}:3: machines[1].id: must use only lowercase letters" in stderr


def test_a_missing_inventory_exits_2(tmp_path: Path) -> None:
    code, stderr = finish(start(tmp_path / "nowhere.yaml", f"sqlite:///{tmp_path / 'millwatch.db'}"))
    assert code == 2
    assert f"{tmp_path / 'nowhere.yaml'}: cannot read: No such file or directory" in stderr


def test_an_unusable_database_exits_1(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "machines.yaml", [])
    code, stderr = finish(start(inventory, f"sqlite:///{tmp_path / 'missing' / 'millwatch.db'}"))
    assert code == 1
    assert "millwatch scrape: store open failed: the folder" in stderr
