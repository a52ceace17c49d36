"""`millwatch demo`: a real simulated fleet, scraped over HTTP, stopped with Ctrl-C."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from ruamel.yaml import YAML
from server_helpers import wait_until
from support import MillwatchProcess, free_port, get_json

from scraper.schema import sample_time_sql
from server.demo_fleet import Scenario, failure_counts, plan_fleet
from server.settings import PACKAGE_STATIC_DIR
from server.static_files import NOT_BUILT_MESSAGE

# Where each simulated failure must end up once scraped (overheating machines take 20–40 s to start
# heating, so they may still be up, or already warn/alarm).
EXPECTED = {
    Scenario.NORMAL: {"up"},
    Scenario.OVERHEAT: {"up", "warn", "alarm"},
    Scenario.HOT: {"alarm"},
    Scenario.SILENT: {"sensor_fault"},
    Scenario.GARBAGE: {"sensor_fault"},
    Scenario.UNREACHABLE: {"down"},
    Scenario.DISABLED: {"disabled"},
}


def test_demo_of_ten_machines_shows_every_simulated_failure_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["demo", "--machines", "10", "--port", str(port), "--dir", str(folder), "--interval", "1s"]

    # The demo switches anonymous read on itself, whatever the environment says.
    with MillwatchProcess(args, tmp_path, env={"MILLWATCH_ANONYMOUS_READ": "false"}) as demo:

        def settled() -> list[dict[str, Any]]:
            assert demo.running(), demo.stderr
            body = get_json(f"{base}/api/machines")
            assert body is not None, "the server does not answer yet"
            machines: list[dict[str, Any]] = body["machines"]
            wrong = {
                m["id"]: (m["labels"]["demo_scenario"], m["status"], m["reason"])
                for m in machines
                if m["status"] not in EXPECTED[Scenario(m["labels"]["demo_scenario"])]
            }
            assert len(machines) == 10 and not wrong, wrong
            return machines

        machines = wait_until(settled, timeout=120, what="every demo machine to show its simulated status")
        assert "unknown" not in {m["status"] for m in machines}
        by_scenario: dict[str, list[dict[str, Any]]] = {}
        for m in machines:
            by_scenario.setdefault(m["labels"]["demo_scenario"], []).append(m)
        assert {s: len(ms) for s, ms in by_scenario.items() if s != "normal"} == {
            s.value: n for s, n in failure_counts(10).items()
        }
        assert by_scenario["unreachable"][0]["reason"] == "connection refused"
        assert by_scenario["hot"][0]["reason"].startswith("machine_temperature_celsius ")
        for m in machines:
            assert m["location"] is not None and m["site"]
            assert set(m["labels"]) == {"line", "hall", "demo_scenario"}
        assert [m["id"] for m in machines] == sorted(m.id for m in plan_fleet(10))

        page = httpx.get(f"{base}/")
        if (PACKAGE_STATIC_DIR / "index.html").is_file():
            assert page.status_code == 200 and "<html" in page.text.lower()
        else:  # `make install` builds the page; without it the server says so
            assert page.status_code == 503 and page.text == NOT_BUILT_MESSAGE

        inventory = YAML(typ="safe").load(folder / "machines.yaml")
        exporter_ports = [
            urlsplit(m["url"]).port
            for m in inventory["machines"]
            if m["labels"]["demo_scenario"] != "unreachable"
        ]
        assert len(exporter_ports) == 9
        assert all(httpx.get(f"http://127.0.0.1:{p}/healthz").status_code == 200 for p in exporter_ports)

        # The admin login it prints works, and is an admin.
        announced = re.search(r"admin login for this demo: (\S+) / (\S+)\n", demo.stdout)
        assert announced is not None, demo.stdout
        login = httpx.post(
            f"{base}/api/auth/login", json={"name": announced[1], "password": announced[2]}, timeout=30
        )
        assert login.status_code == 200 and login.json()["role"] == "admin", login.text
        assert httpx.get(f"{base}/api/admin/users").status_code == 401  # anonymous reads, never administers

        assert demo.stop(signal.SIGINT) == 0
        assert demo.stdout == (
            f"millwatch demo: 10 machines — open {base}/\n"
            "millwatch demo: anonymous read is on (MILLWATCH_ANONYMOUS_READ): anyone who reaches this "
            "port sees the map\n"
            f"millwatch demo: admin login for this demo: admin / {announced[2]}\n"
        )
        assert announced[2] not in demo.stderr
        assert "Traceback" not in demo.stderr

    for p in [*exporter_ports, port]:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", p)) != 0, f"port {p} still answers after the demo stopped"


def test_demo_runs_again_in_the_same_folder_with_a_fresh_database(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    for _ in range(2):
        started = time.time()
        port = free_port()
        args = ["demo", "--machines", "3", "--port", str(port), "--dir", str(folder), "--interval", "1"]
        with MillwatchProcess(args, tmp_path) as demo:

            def scraped(demo: MillwatchProcess = demo, port: int = port) -> bool:
                assert demo.running(), demo.stderr
                body = get_json(f"http://127.0.0.1:{port}/api/machines")
                assert body is not None
                assert len(body["machines"]) == 3
                assert all(m["status"] != "unknown" for m in body["machines"]), body
                return True

            wait_until(scraped, timeout=90, what="the demo fleet to be scraped")
            assert demo.stop(signal.SIGTERM) == 0

        # Nothing of the previous run is left in the database.
        with contextlib.closing(sqlite3.connect(folder / "millwatch-demo.db")) as db:
            oldest_sql = f"SELECT MIN{sample_time_sql()} / 1000.0 FROM samples"
            (oldest,) = db.execute(oldest_sql).fetchone()
        assert oldest is not None and oldest >= started - 1
