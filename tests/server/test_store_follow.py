"""`millwatch serve --no-scrape`: the server shows what another process writes to the database."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from server_helpers import make_view, wait_until

from scraper.state import FleetState, LastScrape, Status
from scraper.store import Store
from server.follower import StoreFollower


def machine(base: str, machine_id: str) -> dict:
    response = httpx.get(f"{base}/api/machines/{machine_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_views_written_by_another_store_are_shown_then_turn_stale(
    state: FleetState, serve, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    writer = Store(url)  # stands for a separate `millwatch scrape` process
    writer.migrate()
    reader = Store(url)
    try:
        base = serve(state, store=reader, store_poll_interval=0.1)
        assert httpx.get(f"{base}/api/machines").json()["machines"] == []

        now = time.time()
        fresh = make_view(
            "press_01",
            scrape_interval_seconds=0.5,
            last_scrape=LastScrape(time=now, duration_seconds=0.01),
            last_success_time=now,
        )
        writer.save_views([fresh])

        shown = wait_until(lambda: machine(base, "press_01")["status"] == "up", what="the fresh view")
        assert shown
        assert httpx.get(f"{base}/healthz").json()["scraper"] == "off"

        # Nobody scrapes any more: within a few intervals the machine is stale, with the reason why.
        stale = wait_until(
            lambda: (m := machine(base, "press_01"))["status"] == "stale" and m, timeout=15, what="stale"
        )
        assert stale["reason"].startswith("no scrape for")
        assert stale["readings"] == fresh.to_dict()["readings"]

        # A new result written by the scraper shows up again.
        later = time.time()
        writer.save_views(
            [
                fresh.with_changes(
                    status=Status.ALARM,
                    reason="machine_temperature_celsius 97 ≥ alarm 95",
                    last_scrape=LastScrape(time=later, duration_seconds=0.01),
                    last_success_time=later,
                )
            ]
        )
        wait_until(lambda: machine(base, "press_01")["status"] == "alarm", what="the new alarm")
    finally:
        writer.close()
        reader.close()


def test_a_stale_fleet_is_not_sent_again_at_every_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store(url)
    store.migrate()
    last = LastScrape(time=time.time() - 65, duration_seconds=0.01)  # stale after 60 s
    store.save_views([make_view(f"press_{i}", last_scrape=last) for i in range(3)])
    state = FleetState()
    sent: list[list[str]] = []
    state.subscribe(lambda changed, removed: sent.append([v.id for v in changed]))
    now = [time.time()]
    follower = StoreFollower(store, state, clock=lambda: now[0])

    async def reads() -> None:
        for _ in range(4):  # every 2 s in `serve --no-scrape`; the machines' age grows each time
            assert await follower.reload_once()
            now[0] += 2.0

    try:
        asyncio.run(reads())
    finally:
        store.close()
    assert sent == [["press_0", "press_1", "press_2"]]  # once, when they turned stale
    assert {v.reason for v in state.snapshot()} == {"no scrape for over 60s"}  # 4 x 15 s, without the timeout
