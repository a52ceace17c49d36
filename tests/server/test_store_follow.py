"""`millwatch serve --no-scrape`: the server shows what another process writes to the database."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from server_helpers import make_view, wait_until

import server.follower as follower_module
from scraper.state import FleetState, LastScrape, MachineView, Status
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


def test_between_full_reads_only_the_views_saved_since_are_read(tmp_path: Path) -> None:
    """A read of 10,000 views a second would cost a core: after the first read, only what was saved
    since (with a margin for late writers) is read; a machine deleted leaves at the next full read."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store(url)
    store.migrate()
    store.save_views([make_view(f"press_{i}") for i in range(3)])
    state = FleetState()
    follower = StoreFollower(store, state)
    read: list[int] = []
    load_view_texts = store.load_view_texts

    def counting(*, changed_since: float | None = None) -> list:
        rows = load_view_texts(changed_since=changed_since)
        read.append(len(rows))
        return rows

    store.load_view_texts = counting  # type: ignore[method-assign]

    async def reads() -> None:
        assert await follower.reload_once()  # the first read: all of them
        store.save_views([make_view("press_1", status=Status.ALARM)])
        store.delete_views(["press_2"])
        assert await follower.reload_once(full=False)
        assert state.get("press_1").status is Status.ALARM  # type: ignore[union-attr]
        assert state.get("press_2") is not None  # still there until a full read
        assert await follower.reload_once(full=True)

    try:
        asyncio.run(reads())
    finally:
        store.close()
    # The incremental read sees press_1 (just saved) and the rows within the margin, not the fleet
    # again in a fleet of thousands; here all three were saved within the margin.
    assert read[0] == 3 and read[2] == 2
    assert [v.id for v in state.snapshot()] == ["press_0", "press_1"]


def test_an_incremental_read_leaves_out_the_views_saved_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store(url)
    store.migrate()
    try:
        store.save_views([make_view("old")])
        cut = time.time()
        assert wait_until(lambda: time.time() > cut + 0.01, what="the clock to move on")
        store.save_views([make_view("new")])
        assert [v.id for v in store.load_views(changed_since=cut)] == ["new"]
        assert [v.id for v in store.load_views()] == ["new", "old"]
    finally:
        store.close()


def test_a_view_read_again_unchanged_is_not_decoded_again_and_stays_the_same_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every incremental read returns the views of the last ten seconds again: at 10,000 machines,
    decoding them all again each second cost a third of a core, and new objects for the same views
    made the server encode the whole fleet's JSON again at its next answer."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store(url)
    store.migrate()
    store.save_views([make_view(f"press_{i}") for i in range(3)])
    state = FleetState()
    follower = StoreFollower(store, state)
    decoded: list[str] = []
    real = follower_module.decode_view

    def counting(machine_id: str, text: str) -> MachineView | None:
        decoded.append(machine_id)
        return real(machine_id, text)

    monkeypatch.setattr(follower_module, "decode_view", counting)

    async def reads() -> None:
        assert await follower.reload_once()
        first = state.get("press_0")
        version = state.version
        assert await follower.reload_once(full=False)  # the same three rows, within the margin
        assert await follower.reload_once(full=True)
        assert state.get("press_0") is first
        assert state.version == version, "an unchanged fleet must not look changed"
        store.save_views([make_view("press_1", status=Status.ALARM)])
        assert await follower.reload_once(full=False)
        assert state.get("press_1").status is Status.ALARM  # type: ignore[union-attr]

    try:
        asyncio.run(reads())
    finally:
        store.close()
    assert sorted(decoded) == ["press_0", "press_1", "press_1", "press_2"]


def test_a_full_read_keeps_the_objects_of_unchanged_views() -> None:
    state = FleetState()
    first, second = make_view("press_0"), make_view("press_1")
    state.put([first, second])
    # Equal views as a new read decodes them: new objects.
    state.replace_all([replace(first), replace(second, status=Status.ALARM)])
    held = first
    assert state.get("press_0") is held
    assert state.get("press_1").status is Status.ALARM  # type: ignore[union-attr]
