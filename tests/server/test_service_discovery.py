"""`GET /api/sd`: the fleet as Prometheus HTTP service discovery — its shape, and Debian's real
Prometheus discovering a real exporter through it with a viewer token and scraping it `up`."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_helpers import Accounts, bearer
from server_helpers import make_view
from support import MillwatchProcess, exporter_on_sensor, free_port, run_millwatch, wait_until

from scraper.state import FleetState, Status

PROMETHEUS = Path("/usr/bin/prometheus")


def test_sd_lists_enabled_pulled_machines_as_target_groups(
    state: FleetState, serve: Callable[..., str], accounts: Accounts
) -> None:
    accounts.store.save_views(
        [
            make_view(
                "press_01", url="http://10.0.1.23:9817/metrics", labels={"line": "casting", "hall-no": "3"}
            ),
            make_view(
                "kiln_02", url="https://user:pw@kiln.example:9443/probe?module=kiln", site=None, labels={}
            ),
            make_view("old_03", enabled=False, status=Status.DISABLED),
        ]
    )
    base = serve(state, store=accounts.store, anonymous_read=False)
    answer = httpx.get(f"{base}/api/sd", headers=bearer(accounts.viewer_token))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.json() == [
        {
            "targets": ["kiln.example:9443"],
            "labels": {
                "__scheme__": "https",
                "__metrics_path__": "/probe",
                "machine_id": "kiln_02",
                "__meta_millwatch_machine_id": "kiln_02",
                "__meta_millwatch_name": "Kiln 02",
                "__meta_millwatch_site": "",
                "__param_module": "kiln",
            },
        },
        {
            "targets": ["10.0.1.23:9817"],
            "labels": {
                "__scheme__": "http",
                "__metrics_path__": "/metrics",
                "machine_id": "press_01",
                "__meta_millwatch_machine_id": "press_01",
                "__meta_millwatch_name": "Press 01",
                "__meta_millwatch_site": "Berlin",
                "__meta_millwatch_label_hall_no": "3",
                "__meta_millwatch_label_line": "casting",
            },
        },
    ]
    assert "user:pw" not in answer.text  # credentials in a URL are never passed on
    assert httpx.get(f"{base}/api/sd").status_code == 401


@contextlib.contextmanager
def prometheus(config: Path, folder: Path) -> Iterator[str]:
    """Debian's Prometheus on a loopback port with its storage in `folder`; yields its base URL."""
    if not PROMETHEUS.exists():
        pytest.fail("Debian's prometheus is not installed (.ci/run installs it: apt-get install prometheus)")
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.timeout(600)
def test_prometheus_discovers_and_scrapes_the_fleet_through_sd(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'millwatch.db'}"
    created = run_millwatch(["token", "create", "prometheus", "--role", "viewer", "--db", db])
    assert created.returncode == 0, created.stderr
    token_file = tmp_path / "prometheus.token"
    token_file.write_text(created.stdout.strip())

    with exporter_on_sensor("press_01", "normal", tmp_path) as (_, exporter_url):
        inventory = tmp_path / "machines.yaml"
        inventory.write_text(
            "machines:\n"
            "  - id: press_01\n"
            "    name: Press 01\n"
            f"    url: {exporter_url}\n"
            "    site: Berlin\n"
            "    labels: {line: casting}\n"
        )
        args = ["serve", "--port", "0", "--db", db, "--inventory", str(inventory)]
        with MillwatchProcess(args, tmp_path, env={"MILLWATCH_ANONYMOUS_READ": "false"}) as server:
            port = server.wait_serving()
            config = tmp_path / "prometheus.yml"
            config.write_text(
                "global: {scrape_interval: 1s, scrape_timeout: 900ms}\n"
                "scrape_configs:\n"
                "  - job_name: millwatch\n"
                "    http_sd_configs:\n"
                f"      - url: http://127.0.0.1:{port}/api/sd\n"
                "        refresh_interval: 1s\n"
                f"        authorization: {{type: Bearer, credentials_file: {token_file}}}\n"
            )
            with prometheus(config, tmp_path) as prom:

                def target_up() -> dict[str, Any]:
                    assert server.running(), server.stderr
                    try:
                        body = httpx.get(f"{prom}/api/v1/targets", timeout=5).json()
                    except (httpx.TransportError, ValueError):
                        return {}
                    targets = body["data"]["activeTargets"]
                    assert [t["health"] for t in targets] in ([], ["unknown"], ["up"]), targets
                    return targets[0] if targets and targets[0]["health"] == "up" else {}

                target = wait_until(
                    target_up, timeout=60, what="Prometheus to scrape the discovered exporter"
                )
                assert target["scrapeUrl"] == exporter_url
                assert target["labels"]["machine_id"] == "press_01"
                assert target["discoveredLabels"]["__meta_millwatch_site"] == "Berlin"
                assert target["discoveredLabels"]["__meta_millwatch_label_line"] == "casting"

                def scraped() -> bool:
                    query = {"query": 'machine_temperature_celsius{machine_id="press_01"}'}
                    result = httpx.get(f"{prom}/api/v1/query", params=query, timeout=5).json()
                    return bool(result["data"]["result"])

                wait_until(scraped, timeout=30, what="the exporter's readings in Prometheus")
            assert server.stop(signal.SIGINT) == 0
    listed = run_millwatch(["token", "list", "--db", db])
    assert listed.stdout.splitlines()[1].split()[0] == "prometheus"
    assert not listed.stdout.splitlines()[1].endswith("never")  # Prometheus' requests count as use
