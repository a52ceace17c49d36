"""The apprise channel through a real apprise `json://` notification to a loopback receiver, and the
`millwatch` command refusing a broken notifications file with its lines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alert_helpers import webhook_receiver
from support import free_port, run_millwatch

from scraper.alerting.channels import deliver
from scraper.alerting.config import parse_notifications
from scraper.alerting.errors import DeliveryFailed
from scraper.alerting.message import FIRING, Item, Message
from scraper.alerting.store import AlertRecord

ALERT = AlertRecord(
    id=7, machine_id="press_01", rule="status", state="firing", severity="critical", level="down",
    reason="down: connection refused", site="Lyon", labels={}, started_at=1000.0, fired_at=1000.0,
)  # fmt: skip


def test_apprise_delivers_to_a_service_url_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        monkeypatch.setenv("MILLWATCH_TEST_APPRISE_URLS", f"json://127.0.0.1:{port}/hook")
        settings = parse_notifications(
            "notifications:\n  channels:\n"
            "    chat: {type: apprise, urls_env: MILLWATCH_TEST_APPRISE_URLS, timeout: 20s}\n"
        )
        message = Message(site="Lyon", items=(Item(FIRING, ALERT),), time=1001.0)
        asyncio.run(deliver("chat", settings.channels["chat"], message, tmp_path))
        ((_, payload),) = hook.received()
    assert payload["title"] == "millwatch [FIRING:1] critical Lyon: press_01"
    assert "press_01 [critical] down: connection refused" in payload["message"]


def test_a_channel_whose_secret_is_missing_fails_naming_the_variable_not_a_secret(tmp_path: Path) -> None:
    settings = parse_notifications(
        "notifications:\n  channels:\n    chat: {type: apprise, urls_env: MILLWATCH_TEST_NOT_SET_ANYWHERE}\n"
    )
    message = Message(site=None, items=(Item(FIRING, ALERT),), time=1001.0)
    with pytest.raises(
        DeliveryFailed, match="urls_env: environment variable MILLWATCH_TEST_NOT_SET_ANYWHERE"
    ):
        asyncio.run(deliver("chat", settings.channels["chat"], message, tmp_path))


def test_serve_refuses_a_broken_notifications_file_before_anything_starts(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text("machines: []\n")
    (tmp_path / "notifications.yaml").write_text(
        "notifications:\n  channels:\n"
        "    hook: {type: webhook, url: 'http://127.0.0.1:1/', hmac_key: inline}\n"
    )
    db = tmp_path / "millwatch.db"
    result = run_millwatch(
        ["serve", "--inventory", str(inventory), "--db", f"sqlite:///{db}", "--port", str(free_port())]
    )
    assert result.returncode == 2
    assert "millwatch: error: invalid notifications settings" in result.stderr
    assert (
        f"{tmp_path / 'notifications.yaml'}:3: notifications.channels.hook.hmac_key: unknown key"
        in result.stderr
    )
    assert not db.exists()

    checked = run_millwatch(
        ["check", str(inventory), "--notifications", str(tmp_path / "notifications.yaml")]
    )
    assert checked.returncode == 1
    assert "notifications.channels.hook.hmac_key: unknown key" in checked.stderr
