"""Alert rules (conditions, severities), maintenance windows and the notifications file: pure code."""

from __future__ import annotations

from pathlib import Path

import pytest

from scraper.alerting.config import parse_notifications
from scraper.alerting.errors import NotificationsError
from scraper.alerting.maintenance import WEEK_SECONDS, MaintenanceWindow, active_window
from scraper.alerting.rules import DEFAULT_RULES, AlertRule
from scraper.errors import InventoryError
from scraper.inventory import parse_inventory
from scraper.state import LastScrape, MachineView, Status, Threshold

ROOT = Path(__file__).resolve().parents[2]


def view(status: Status, **changes: object) -> MachineView:
    base = MachineView(
        id="press_01",
        name="Press",
        url="http://127.0.0.1:1/metrics",
        site="Lyon",
        labels={"line": "pressing"},
        status=status,
        last_scrape=LastScrape(time=100.0, duration_seconds=0.01),
        readings={"machine_temperature_celsius": 97.0},
        thresholds={"machine_temperature_celsius": Threshold(warn=80, alarm=95)},
    )
    return base.with_changes(**changes)


def test_status_rules_and_channel_rules_hold_for_what_they_name() -> None:
    (default,) = DEFAULT_RULES
    assert default.condition(view(Status.WARN)) is None  # warn colours the map, pages nobody
    down = default.condition(view(Status.DOWN, reason="connection refused"))
    assert down is not None and (down.level, down.reason) == ("down", "down: connection refused")
    assert default.severity_of(down) == "critical"
    stale = default.condition(view(Status.STALE))
    assert stale is not None and default.severity_of(stale) == "warning"

    hot = AlertRule(name="hot", statuses=frozenset({"alarm"}), metric="machine_temperature_celsius")
    held = hot.condition(view(Status.ALARM))
    assert held is not None and held.reason == "machine_temperature_celsius 97 ≥ alarm 95"
    # A machine that does not answer has old readings: a channel rule does not hold on them.
    assert hot.condition(view(Status.DOWN)) is None
    warm = view(Status.WARN, readings={"machine_temperature_celsius": 85.0})
    assert hot.condition(warm) is None
    assert AlertRule(name="w", statuses=frozenset({"warn"}), metric="machine_temperature_celsius").condition(
        warm
    )


def test_alerts_in_the_inventory_resolve_per_machine_with_lines_for_problems() -> None:
    text = (
        "defaults:\n"
        "  alerts:\n"
        "    - {statuses: [down], for: 2m, severity: warning}\n"
        "machines:\n"
        "  - {id: a, url: 'http://h:1/metrics'}\n"
        "  - id: b\n"
        "    url: http://h:2/metrics\n"
        "    alerts: []\n"
    )
    inventory = parse_inventory(text)
    (rule,) = inventory.machines[0].alerts
    assert (rule.name, rule.statuses, rule.for_seconds, rule.severity) == (
        "status",
        {"down"},
        120.0,
        "warning",
    )
    assert inventory.machines[1].alerts == ()

    with pytest.raises(
        InventoryError, match=r"machines.yaml:3: defaults.alerts\[0\].for: must be at most 7d"
    ):
        parse_inventory(text.replace("for: 2m", "for: 8d"))
    broken = text.replace(
        "    alerts: []\n", "    alerts:\n      - {statuses: [down]}\n      - {statuses: [alarm]}\n"
    )
    with pytest.raises(InventoryError) as caught:
        parse_inventory(broken)
    assert "machines.yaml:10: machines[1].alerts[1]: two rules named 'status' (alerts[0])" in str(
        caught.value
    )


def test_a_weekly_window_repeats_and_a_label_window_covers_its_machines() -> None:
    window = MaintenanceWindow(
        id=1, scope="label", target="line=pressing", starts_at=1000.0, ends_at=1000.0 + 3600,
        weekly=True, reason="cleaning", created_by="admin", created_at=0.0,
    )  # fmt: skip
    machine = view(Status.UP)
    assert window.covers(machine) and not window.covers(machine.with_changes(labels={"line": "casting"}))
    assert window.active(1500.0) and not window.active(5000.0)
    next_week = 1500.0 + WEEK_SECONDS
    assert window.active(next_week) and window.current_end(next_week) == 1000.0 + 3600 + WEEK_SECONDS
    assert not window.finished(10 * WEEK_SECONDS)
    assert active_window([window], machine, next_week) is window
    assert active_window([window], machine, 999.0) is None


def test_notifications_problems_are_reported_with_their_lines() -> None:
    text = (
        "notifications:\n"
        "  group_wait: soon\n"
        "  channels:\n"
        "    mail:\n"
        "      type: email\n"
        "      host: smtp.plant.test\n"
        "      from: a@plant.test\n"
        "      to: [b@plant.test]\n"
        "      username: alerts\n"
        "    pager:\n"
        "      type: carrier_pigeon\n"
    )
    with pytest.raises(NotificationsError) as caught:
        parse_notifications(text)
    lines = str(caught.value).splitlines()
    assert (
        "notifications.yaml:2: notifications.group_wait: must be a duration such as 30s, 5m, 4h "
        "or a number of seconds" in lines
    )
    assert (
        "notifications.yaml:4: notifications.channels.mail: needs exactly one of password_file, password_env"
        in lines
    )
    assert any(line.startswith("notifications.yaml:10: notifications.channels.pager") for line in lines), (
        lines
    )

    with pytest.raises(
        NotificationsError,
        match=r"notifications.yaml:5: notifications.routes\[0\].channels\[0\]: no channel 'nope'",
    ):
        parse_notifications(
            "notifications:\n  channels:\n    hook: {type: webhook, url: 'http://127.0.0.1:1/'}\n"
            "  routes:\n    - {channels: [nope]}\n"
        )


def test_routes_pick_channels_by_site_severity_and_label() -> None:
    settings = parse_notifications(
        "notifications:\n"
        "  channels:\n"
        "    hook: {type: webhook, url: 'http://127.0.0.1:1/'}\n"
        "    lyon: {type: webhook, url: 'http://127.0.0.1:2/'}\n"
        "  routes:\n"
        "    - {channels: [hook], severities: [critical]}\n"
        "    - {channels: [lyon], sites: [Lyon], labels: {line: pressing}}\n"
    )
    assert settings.channels_for("Lyon", "critical", {"line": "pressing"}) == ["hook", "lyon"]
    assert settings.channels_for("Lyon", "warning", {"line": "pressing"}) == ["lyon"]
    assert settings.channels_for("Lyon", "warning", {"line": "casting"}) == []
    assert settings.channels_for(None, "critical", {}) == ["hook"]
    every = parse_notifications(
        "notifications:\n  channels:\n    a: {type: webhook, url: 'http://127.0.0.1:1/'}\n"
    )
    assert every.channels_for("anywhere", "info", {}) == ["a"]


def test_the_example_notifications_file_is_valid() -> None:
    from scraper.alerting.config import load_notifications

    settings = load_notifications(ROOT / "integrations" / "notifications.example.yaml")
    assert set(settings.channels) == {"oncall-mail", "maintenance-system", "chat"}
