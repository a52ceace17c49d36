"""The alert engine and the notifier on a real SQLite database and a real webhook receiver: grouping,
a failing channel, and no storm after a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from alert_helpers import Hook, webhook_receiver
from server_helpers import metric_samples, running_app, wait_until
from support import get_json

from scraper.alerting.config import parse_notifications
from scraper.alerting.engine import AlertEngine
from scraper.alerting.message import FIRING
from scraper.alerting.notifier import Notifier
from scraper.alerting.store import AlertRecord, AlertStore
from scraper.inventory import parse_inventory
from scraper.state import FleetState, LastScrape, MachineView, Status
from scraper.store import Store
from server.app import create_app
from server.settings import Settings

T = TypeVar("T")


async def eventually(predicate: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def run(coroutine: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout=60)

    return asyncio.run(bounded())


def record(alert_id: int, machine: str, site: str) -> AlertRecord:
    return AlertRecord(
        id=alert_id, machine_id=machine, rule="status", state="firing", severity="critical", level="down",
        reason="down: connection refused", site=site, labels={}, started_at=1000.0, fired_at=1000.0,
    )  # fmt: skip


def hook_settings(hook: Hook, **extra: str) -> str:
    lines = [f"  {k}: {v}" for k, v in extra.items()]
    return "\n".join(
        [
            "notifications:",
            *lines,
            "  channels:",
            f"    hook: {{type: webhook, url: '{hook.url}', retries: 2}}",
        ]
    )


def test_ten_machines_of_one_site_going_down_together_make_one_message() -> None:
    with webhook_receiver() as hook:
        settings = parse_notifications(hook_settings(hook, group_wait="0.5s"))

        async def scenario() -> None:
            notifier = Notifier(settings, None)
            await notifier.start()
            try:
                for n in range(10):
                    notifier.submit(FIRING, record(n + 1, f"press_{n:02}", "Lyon"))
                notifier.submit(FIRING, record(99, "lathe_01", "Turin"))
                await eventually(lambda: len(hook.raw()) == 2, "two messages")
            finally:
                await notifier.stop()

        run(scenario())
    by_site = {payload["site"]: payload for _, payload in hook.received()}
    assert len(by_site["Lyon"]["alerts"]) == 10 and len(by_site["Turin"]["alerts"]) == 1
    assert by_site["Lyon"]["title"].startswith("millwatch [FIRING:10] critical Lyon: press_00, press_01")
    assert by_site["Lyon"]["title"].endswith("and 5 more")


def test_a_failing_channel_is_retried_counted_and_shown(tmp_path: Path, static_dir: Path) -> None:
    """Through the app: the failures reach /metrics and GET /api/alerts/channels."""
    with webhook_receiver() as hook:
        hook.status = 500
        (tmp_path / "notifications.yaml").write_text(
            hook_settings(hook, group_wait="0.05s", retry_backoff="0.05s")
        )
        inventory = tmp_path / "machines.yaml"
        inventory.write_text("machines:\n  - {id: press_01, url: 'http://127.0.0.1:1/metrics', site: Lyon}\n")
        store = Store(f"sqlite:///{tmp_path / 'm.db'}")
        store.migrate()
        state = FleetState()
        # Anonymous read: this test reads as a wall screen does (test_auth_routes.py covers access).
        settings = Settings(
            static_dir=static_dir,
            inventory=inventory,
            scrape=False,
            store_poll_interval=0.1,
            anonymous_read=True,
        )
        try:
            with running_app(create_app(settings, state=state, store=store, scraper=None)) as base:
                now = time.time()
                view = MachineView(id="press_01", name="p", url="http://127.0.0.1:1/metrics", site="Lyon")
                last = LastScrape(now + 1, 0.01, "connection refused")
                store.save_views(
                    [view.with_changes(status=Status.DOWN, reason="connection refused", last_scrape=last)]
                )

                def failed() -> dict[str, Any]:
                    (channel,) = get_json(f"{base}/api/alerts/channels")["channels"]
                    assert channel["dropped_total"] == 1, channel
                    return channel

                channel = wait_until(failed, timeout=30, what="the channel to give up after its retries")
                assert len(hook.raw()) == 3  # the first attempt and two retries
                assert (channel["failures_total"], channel["sent_total"], channel["last_error"]) == (
                    3,
                    0,
                    "HTTP 500",
                )
                metrics = metric_samples(httpx_get(f"{base}/metrics"))
                assert metrics[("millwatch_notification_failures_total", (("channel", "hook"),))] == 3
                assert metrics[("millwatch_notifications_dropped_total", (("channel", "hook"),))] == 1
                assert (
                    metrics[("millwatch_alerts_open", (("severity", "critical"), ("state", "firing")))] == 1
                )
                (alert,) = get_json(f"{base}/api/alerts?state=firing")["alerts"]
                kinds = [e["kind"] for e in get_json(f"{base}/api/alerts/{alert['id']}")["history"]]
                assert kinds == ["fired", "notify_failed"], kinds
        finally:
            store.close()


def httpx_get(url: str) -> str:
    return httpx.get(url, timeout=10).text


def test_after_a_restart_known_alerts_are_not_sent_again_and_stale_is_not_the_machines_fault(
    tmp_path: Path,
) -> None:
    inventory = parse_inventory(
        "machines:\n"
        "  - {id: press_01, url: 'http://127.0.0.1:1/metrics', site: Lyon}\n"
        "  - {id: lathe_02, url: 'http://127.0.0.1:2/metrics', site: Lyon}\n"
    )
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    store.migrate()
    base = {m.id: m.initial_view() for m in inventory.machines}

    def scraped(machine: str, status: Status, at: float, reason: str | None = None) -> MachineView:
        return base[machine].with_changes(status=status, reason=reason, last_scrape=LastScrape(at, 0.01))

    async def engine_run(hook: Hook, body: Callable[[FleetState, AlertEngine], Awaitable[None]]) -> None:
        state = FleetState()
        alerts = AlertStore(store.sqlalchemy_url)
        settings = parse_notifications(hook_settings(hook, group_wait="0.05s"))
        engine = AlertEngine(state, lambda: inventory, alerts, Notifier(settings, alerts), tick_interval=0.05)
        await engine.start()
        try:
            await eventually(lambda: engine.loaded, "the engine to read the database")
            await body(state, engine)
        finally:
            await engine.stop()
            alerts.close()

    with webhook_receiver() as hook:

        async def first(state: FleetState, engine: AlertEngine) -> None:
            state.put([scraped("press_01", Status.DOWN, time.time(), "connection refused")])
            await eventually(lambda: len(hook.raw()) == 1, "the first notification")

        async def after_restart(state: FleetState, engine: AlertEngine) -> None:
            # Before the scraper publishes anything the engine has no view: an open alert stays open.
            deadline = time.monotonic() + 0.5
            await eventually(lambda: time.monotonic() > deadline, "a few ticks of the engine")
            assert engine.open_counts() == {("firing", "critical"): 1}
            # What the saved views say at start-up: old news, and stale only because this host was down.
            long_ago = time.time() - 3600
            state.replace_all(
                [scraped("press_01", Status.DOWN, long_ago, "connection refused"),
                 scraped("lathe_02", Status.STALE, long_ago, "no scrape for over 50s")]
            )  # fmt: skip
            # A fresh scrape that still finds it down: the same alert goes on, nothing is sent.
            state.put([scraped("press_01", Status.DOWN, time.time() + 0.5, "connection refused")])
            deadline = time.monotonic() + 1.0
            await eventually(lambda: time.monotonic() > deadline, "a few ticks of the engine")
            assert len(hook.raw()) == 1
            assert engine.open_counts() == {("firing", "critical"): 1}
            # Recovery is news: the resolved message goes out.
            state.put([scraped("press_01", Status.UP, time.time() + 1)])
            await eventually(lambda: len(hook.raw()) == 2, "the resolved message")

        run(engine_run(hook, first))
        run(engine_run(hook, after_restart))
        statuses = [payload["status"] for _, payload in hook.received()]
        machines = [[a["machine_id"] for a in payload["alerts"]] for _, payload in hook.received()]
    assert statuses == ["firing", "resolved"] and machines == [["press_01"], ["press_01"]]
    alerts = AlertStore(store.sqlalchemy_url)
    try:
        assert [a.machine_id for a in alerts.list_alerts()] == ["press_01"]  # lathe_02's stale: no alert
    finally:
        alerts.close()
        store.close()
