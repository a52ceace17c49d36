"""Beyond one host: two `millwatch scrape` and two `millwatch serve --no-scrape` on one PostgreSQL.

All four start together on an empty database (the migrations must not race), the scrapers share
the fleet through leases, one scraper is killed with SIGKILL mid-run and the other takes over
its machines within a bounded time, and both servers see status changes through LISTEN/NOTIFY.
Real processes, real exporters on pseudo-terminals, the real PostgreSQL (a database of its own,
`<test database>_scale`, emptied first).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from support import MillwatchProcess, exporter_on_sensor, free_port, get_json, wait_until

from exporter.simulator import SimulatedSensor

pytestmark = pytest.mark.postgres

MACHINES = ["press_01", "press_02", "lathe_03", "lathe_04", "mill_05", "mill_06"]
LEASE_TTL = 3.0


def scale_database_url() -> str:
    """A database of this test's own beside the test database, created if needed and emptied."""
    url = os.environ.get("MILLWATCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("MILLWATCH_TEST_POSTGRES_URL is not set: the scale-out test needs PostgreSQL")
    base = sa.make_url(url)
    name = f"{base.database}_scale"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists is None:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    scale = base.set(database=name)
    engine = sa.create_engine(scale)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return scale.render_as_string(hide_password=False)


def leases(url: str) -> dict[str, str]:
    """machine -> node holding an unexpired lease on it."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT machine_id, node_id FROM scraper_leases"
                    " WHERE expires_at >= EXTRACT(EPOCH FROM clock_timestamp())"
                )
            ).all()
    except sa.exc.ProgrammingError:
        return {}  # not migrated yet
    finally:
        engine.dispose()
    return {str(row[0]): str(row[1]) for row in rows}


def machines(base: str) -> dict[str, dict[str, Any]]:
    body = get_json(f"{base}/api/machines")
    return {} if body is None else {m["id"]: m for m in body["machines"]}


def metric(base: str, name: str) -> float:
    """One unlabelled sample of the server's own /metrics (0 when absent or unreachable)."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=5).text
    except httpx.TransportError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[dict[str, tuple[SimulatedSensor, str]]]:
    with contextlib.ExitStack() as stack:
        yield {m: stack.enter_context(exporter_on_sensor(m, "normal", tmp_path)) for m in MACHINES}


@pytest.mark.timeout(600)  # six exporters, four processes: minutes on a loaded 2-core host
def test_two_scrapers_share_the_fleet_and_one_killed_hands_its_machines_over(
    tmp_path: Path, fleet: dict[str, tuple[SimulatedSensor, str]]
) -> None:
    url = scale_database_url()
    inventory = tmp_path / "machines.yaml"
    lines = ["defaults:", "  scrape_interval: 0.5s", "  scrape_timeout: 0.4s", "machines:"]
    lines += [f"  - {{id: {m}, url: '{u}'}}" for m, (_, u) in fleet.items()]
    inventory.write_text("\n".join(lines) + "\n")
    common = ["--inventory", str(inventory), "--db", url, "--log-level", "info"]
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]

    with contextlib.ExitStack() as stack:
        # All four at once on the empty database: whoever migrates, the others wait and go on.
        scrapers = [
            stack.enter_context(
                MillwatchProcess(["scrape", *common, "--lease-ttl", str(LEASE_TTL)], tmp_path)
            )
            for _ in range(2)
        ]
        servers = [
            stack.enter_context(
                MillwatchProcess(["serve", "--no-scrape", *common, "--port", str(p)], tmp_path)
            )
            for p in ports
        ]
        for server, port in zip(servers, ports):
            server.wait_healthy(port, timeout=120)
        for scraper in scrapers:
            assert scraper.running(), f"a scraper exited at start:\n{scraper.stderr}"

        # The fleet is shared: every machine leased, both scrapers holding some.
        def shared() -> bool:
            held = leases(url)
            return set(held) == set(MACHINES) and len(set(held.values())) == 2

        wait_until(shared, 120, "both scrapers holding a part of the fleet")
        for base in bases:
            wait_until(
                lambda base=base: (
                    {m: v["status"] for m, v in machines(base).items()} == dict.fromkeys(MACHINES, "up")
                ),
                120,
                f"every machine up on {base}",
            )

        # SIGKILL one scraper mid-run: no clean release, its leases must expire and be taken over.
        held = leases(url)
        victim_pid = scrapers[0].process.pid  # type: ignore[union-attr]
        victim_node = next(n for n in set(held.values()) if f":{victim_pid}:" in n)
        orphaned = sorted(m for m, n in held.items() if n == victim_node)
        assert orphaned
        scrapers[0].stop(signal.SIGKILL)
        killed_at = time.time()

        survivor = next(n for n in set(held.values()) if n != victim_node)
        wait_until(
            lambda: leases(url) == dict.fromkeys(MACHINES, survivor),
            60,
            "the surviving scraper holding every machine",
        )
        taken_over_after = time.time() - killed_at
        # ...and scraping them: both servers see fresh scrapes of the orphaned machines.
        for base in bases:
            wait_until(
                lambda base=base: all(
                    (v := machines(base).get(m)) is not None
                    and v["status"] == "up"
                    and v["last_scrape"]["time"] > killed_at
                    for m in orphaned
                ),
                120,
                f"the orphaned machines scraped again, seen on {base}",
            )

        # A status change of a taken-over machine reaches both servers, through NOTIFY.
        sensor, _ = fleet[orphaned[0]]
        sensor.scenario = "silent"
        for base in bases:
            wait_until(
                lambda base=base: machines(base)[orphaned[0]]["status"] == "sensor_fault",
                120,
                f"{orphaned[0]}'s sensor_fault on {base}",
            )
            assert metric(base, "millwatch_store_notifications_total") > 0
        assert scrapers[1].running(), scrapers[1].stderr
        assert taken_over_after < 60
        for server in servers:
            assert server.stop(signal.SIGTERM) == 0
        assert scrapers[1].stop(signal.SIGTERM) == 0
    assert leases(url) == {}, "a scraper that stops cleanly gives its leases back"
