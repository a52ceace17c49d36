"""The demo's fleet plan: sizes, failures, names, places, and a valid inventory."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from scraper.inventory import load_inventory
from server.demo import _write_inventory
from server.demo_fleet import SITES, Scenario, failure_counts, plan_fleet


def test_fifty_machines_have_the_failures_of_the_brief() -> None:
    counts = Counter(m.scenario for m in plan_fleet(50))
    assert counts == {
        Scenario.NORMAL: 42,
        Scenario.OVERHEAT: 2,
        Scenario.HOT: 1,
        Scenario.SILENT: 2,
        Scenario.GARBAGE: 1,
        Scenario.UNREACHABLE: 1,
        Scenario.DISABLED: 1,
    }


@pytest.mark.parametrize("size", [8, 9, 10, 23, 200])
def test_every_failure_at_least_once_from_eight_machines(size: int) -> None:
    counts = Counter(m.scenario for m in plan_fleet(size))
    assert all(counts[s] >= 1 for s in Scenario)
    assert sum(counts.values()) == size


def test_failures_scale_with_the_fleet() -> None:
    assert failure_counts(500)[Scenario.OVERHEAT] == 20
    assert failure_counts(500)[Scenario.UNREACHABLE] == 10


@pytest.mark.parametrize("size", [1, 2, 5, 7])
def test_small_fleets_keep_at_least_half_normal(size: int) -> None:
    machines = plan_fleet(size)
    assert len(machines) == size
    assert sum(m.scenario is Scenario.NORMAL for m in machines) >= size / 2


def test_zero_machines_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 1 machine"):
        plan_fleet(0)


def test_ids_names_and_places() -> None:
    machines = plan_fleet(500)  # more machines than sites: towns are reused, ids stay unique
    ids = [m.id for m in machines]
    assert len(set(ids)) == len(ids)
    sites = {s.town: s for s in SITES}
    for m in machines:
        site = sites[m.site]
        assert abs(m.lat - site.lat) <= 0.06 + 1e-9 and abs(m.lon - site.lon) <= 0.06 + 1e-9
        assert m.id.isascii() and m.id == m.id.lower() and " " not in m.id
        assert m.name.split()[-1] == m.id.rsplit("_", 1)[1]  # "IronCast Berlin 03" ~ ironcast_berlin_03
        assert set(m.labels) == {"line", "hall", "demo_scenario"}
        assert (m.overheat_after is not None) == (m.scenario is Scenario.OVERHEAT)
        if m.overheat_after is not None:
            assert 20 <= m.overheat_after <= 40
    assert sum(1 for s in SITES if s.lat > 34 and -11 < s.lon < 32) > len(SITES) / 2, "mostly Europe"


def test_the_plan_is_the_same_on_every_run() -> None:
    assert plan_fleet(50) == plan_fleet(50)


def test_the_written_inventory_is_valid_for_the_scraper(tmp_path: Path) -> None:
    machines = plan_fleet(20)
    urls = {m.id: f"http://127.0.0.1:{10000 + i}/metrics" for i, m in enumerate(machines)}
    path = tmp_path / "machines.yaml"

    _write_inventory(path, machines, urls, 1.0)

    inventory = load_inventory(path)
    assert [m.id for m in inventory.machines] == [m.id for m in machines]
    disabled = {m.id for m in machines if m.scenario is Scenario.DISABLED}
    assert {m.id for m in inventory.machines if not m.enabled} == disabled
    assert all(m.scrape_timeout_seconds < m.scrape_interval_seconds for m in inventory.machines)
    raw = YAML(typ="safe").load(path)
    assert raw["machines"][0]["url"] == urls[machines[0].id]
    assert path.read_text().startswith("# Written by `millwatch demo`")
