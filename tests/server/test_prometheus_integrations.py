"""`millwatch rules export` checked and unit-tested by Debian's promtool, and the shipped Grafana
dashboards checked against what a live exporter (on a simulated serial port) really serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from support import exporter_on_sensor, run_millwatch, wait_until

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed"
)

INVENTORY = """\
defaults:
  thresholds:
    machine_temperature_celsius: {warn: 80, alarm: 95}
    machine_pressure_bar: {alarm: 8}
  alerts:
    - statuses: [alarm, down, sensor_fault, stale]
      for: 2m
    - metric: machine_temperature_celsius
      statuses: [alarm, warn]
      for: 30s
machines:
  - id: furnace_01
    url: http://10.0.0.1:9817/metrics
  - id: furnace_02
    url: http://10.0.0.2:9817/metrics
    thresholds:
      machine_temperature_celsius: {warn: 70}
  - id: quiet_press
    url: http://10.0.0.3:9817/metrics
    alerts: []
"""

UNIT_TESTS = """\
rule_files: [rules.yaml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'machine_temperature_celsius{instance="10.0.0.1:9817", job="mills"}'
        values: '90 96 96 96 96 96 96'
      - series: 'machine_info{instance="10.0.0.1:9817", job="mills", machine_id="furnace_01", name="F1"}'
        values: '1 1 1 1 1 1 1'
      - series: 'machine_temperature_celsius{instance="10.0.0.3:9817", job="mills"}'
        values: '99 99 99 99 99 99 99'
      - series: 'machine_info{instance="10.0.0.3:9817", job="mills", machine_id="quiet_press", name="Q"}'
        values: '1 1 1 1 1 1 1'
      - series: 'up{instance="10.0.0.2:9817", job="mills"}'
        values: '1 0 0 0 0 0 0 0 0 0 0 0'
      - series: 'machine_info{instance="10.0.0.2:9817", job="mills", machine_id="furnace_02", name="F2"}'
        values: '1 _ _ _ _ _ _ _ _ _ _ _'
    alert_rule_test:
      # 15 s above the alarm is a spike: the 30 s `for:` has not passed.
      - eval_time: 30s
        alertname: MillwatchMachineTemperatureCelsiusAlarm
        exp_alerts: []
      # Held long enough: firing for furnace_01, never for quiet_press (alerts: []).
      - eval_time: 90s
        alertname: MillwatchMachineTemperatureCelsiusAlarm
        exp_alerts:
          - exp_labels:
              severity: critical
              millwatch_status: alarm
              metric: machine_temperature_celsius
              limit: "95"
              instance: "10.0.0.1:9817"
              job: mills
              machine_id: furnace_01
              name: F1
            exp_annotations:
              summary: "furnace_01: machine_temperature_celsius 96 ≥ alarm 95"
      # A down exporter serves no machine_info: the last one of the day names it.
      - eval_time: 165s
        alertname: MillwatchDown
        exp_alerts:
          - exp_labels:
              severity: critical
              millwatch_status: down
              instance: "10.0.0.2:9817"
              job: mills
              machine_id: furnace_02
              name: F2
            exp_annotations:
              summary: "furnace_02: the exporter does not answer (10.0.0.2:9817)"
"""


@needs_promtool
def test_exported_rules_pass_promtool_check_and_fire_like_the_inventory_says(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(INVENTORY)
    rules = tmp_path / "rules.yaml"
    result = run_millwatch(["rules", "export", "--inventory", str(inventory), "-o", str(rules)])
    assert result.returncode == 0, result.stderr
    assert f"rules written to {rules}" in result.stderr
    text = rules.read_text()
    assert "quiet_press" not in text  # alerts: [] notifies nothing, here or in Prometheus
    assert 'machine_id="furnace_02"' in text and ">= 70) < 95" in text  # its own warn limit

    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout

    (tmp_path / "tests.yaml").write_text(UNIT_TESTS)
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yaml"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_the_rules_of_the_example_inventory_pass_promtool(tmp_path: Path) -> None:
    result = run_millwatch(["rules", "export", "--inventory", str(ROOT / "machines.yaml")])
    assert result.returncode == 0, result.stderr
    (tmp_path / "rules.yaml").write_text(result.stdout)
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_export_refuses_a_broken_inventory_with_its_lines(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(
        "machines:\n  - id: a\n    url: http://x:1/metrics\n    alerts:\n      - statuses: [hot]\n"
    )
    result = run_millwatch(["rules", "export", "--inventory", str(inventory)])
    assert result.returncode == 2
    assert f"{inventory}:5: machines[0].alerts[0].statuses[0]: must be 'alarm'" in result.stderr
    assert result.stdout == ""


# --- Grafana ---------------------------------------------------------------------------------------

DASHBOARDS = sorted((ROOT / "integrations" / "grafana").glob("*.json"))
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "time", "vector", "label_values",
    "max_over_time", "min_over_time", "avg_over_time", "topk", "bottomk", "abs", "clamp_min", "clamp_max",
}  # fmt: skip


def metrics_of(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, strings, ranges, functions removed)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {w for w in words if w not in PROMQL_WORDS}


def test_the_dashboards_are_importable_and_query_only_what_a_live_exporter_serves(tmp_path: Path) -> None:
    assert {p.name for p in DASHBOARDS} == {"millwatch-fleet.json", "millwatch-machine.json"}
    with exporter_on_sensor("press_07", "normal", tmp_path) as (_sensor, url):

        def served() -> set[str]:
            body = httpx.get(url, timeout=5).text
            names = {
                line.split("{")[0].split(" ")[0] for line in body.splitlines() if line and line[0] != "#"
            }
            assert "machine_temperature_celsius" in names, "no reading yet"
            return names

        names = wait_until(served, timeout=20, what="the exporter's first readings")

    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert dashboard["title"].startswith("millwatch") and dashboard["schemaVersion"] >= 36
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        assert "id" not in dashboard or dashboard["id"] is None  # an id would clash on import
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        panel_ids = [p["id"] for p in dashboard["panels"]]
        assert len(panel_ids) == len(set(panel_ids)) and panel_ids
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                used = metrics_of(target["expr"])
                assert used, (panel["title"], target["expr"])
                assert used <= names, f"{path.name}: {panel['title']}: not served: {sorted(used - names)}"
        if path.name == "millwatch-machine.json":
            machine = variables["machine_id"]
            assert machine["query"]["query"] == "label_values(machine_info, machine_id)"
            exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
            assert all('machine_id="$machine_id"' in e for e in exprs)
