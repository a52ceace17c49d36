"""machines.yaml: every problem reported at once with file:line and field path; defaults resolved."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from scraper.errors import InventoryError, InventoryUnreadable, Problem
from scraper.inventory import (
    AlertRuleSpec,
    Auth,
    BasicAuth,
    DefaultsSpec,
    LocationSpec,
    MachineSpec,
    ThresholdSpec,
    check_command,
    load_inventory,
    parse_duration,
)
from scraper.state import Location, Status, Threshold

DESIGN_EXAMPLE = """\
defaults:
  scrape_interval: 15s
  scrape_timeout: 5s
  thresholds:
    machine_temperature_celsius: {warn: 80, alarm: 95}
machines:
  - id: ironcast_berlin            # unique, [a-z0-9_-]
    name: IronCast Berlin
    url: http://10.0.1.23:9817/metrics
    location: {lat: 52.52, lon: 13.405}
    site: Berlin
    labels: {line: casting}
    auth: {bearer_token_file: /etc/millwatch/ironcast_berlin.token}   # or _env, or basic
    enabled: true
"""


def write(tmp_path: Path, text: str, name: str = "machines.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(write(tmp_path, text))
    return [str(p) for p in caught.value.problems]


def test_the_design_example_loads_with_everything_resolved(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, DESIGN_EXAMPLE))
    (machine,) = inventory.machines
    assert machine.id == "ironcast_berlin"
    assert machine.name == "IronCast Berlin"
    assert machine.url == "http://10.0.1.23:9817/metrics"
    assert machine.location == Location(52.52, 13.405)
    assert machine.site == "Berlin"
    assert machine.labels == {"line": "casting"}
    assert (
        machine.auth is not None and machine.auth.bearer_token_file == "/etc/millwatch/ironcast_berlin.token"
    )
    assert machine.enabled is True
    assert (machine.scrape_interval_seconds, machine.scrape_timeout_seconds) == (15.0, 5.0)
    assert machine.thresholds == {"machine_temperature_celsius": Threshold(warn=80, alarm=95)}
    assert inventory.get("ironcast_berlin") is machine and inventory.get("nope") is None


def test_initial_views(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            "machines:\n"
            "  - {id: a, url: 'http://127.0.0.1:1/metrics', scrape_interval: 1m}\n"
            "  - {id: b, url: 'http://127.0.0.1:2/metrics', enabled: false}\n",
        )
    )
    a, b = (m.initial_view() for m in inventory.machines)
    assert (a.status, a.name, a.scrape_interval_seconds, a.enabled) == (Status.UNKNOWN, "a", 60.0, True)
    assert (b.status, b.enabled) == (Status.DISABLED, False)
    assert "auth" not in a.to_dict()
    assert [m.id for m in inventory.enabled_machines] == ["a"]


def test_minimal_file_takes_every_default(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(tmp_path, "machines:\n  - id: m1\n    url: https://plant.example:9817/metrics\n")
    )
    machine = inventory.machines[0]
    assert (machine.name, machine.scrape_interval_seconds, machine.scrape_timeout_seconds) == (
        "m1",
        15.0,
        5.0,
    )
    assert (
        machine.thresholds == {}
        and machine.labels == {}
        and machine.auth is None
        and machine.location is None
    )


def test_an_empty_fleet_is_valid(tmp_path: Path) -> None:
    assert load_inventory(write(tmp_path, "machines: []\n")).machines == []


def test_per_machine_settings_override_and_thresholds_merge_per_metric(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(
            tmp_path,
            """\
defaults:
  scrape_interval: 30s
  thresholds:
    machine_temperature_celsius: {warn: 80, alarm: 95}
    machine_pressure_bar: {warn: 2, alarm: 3}
machines:
  - id: hot_oven
    url: http://127.0.0.1:9817/metrics
    scrape_interval: 1m30s
    scrape_timeout: 500ms
    thresholds:
      machine_temperature_celsius: {warn: 90}
      machine_pressure_bar: {warn: null}
      machine_speed_rpm: {alarm: 3000}
""",
        )
    )
    machine = inventory.machines[0]
    assert (machine.scrape_interval_seconds, machine.scrape_timeout_seconds) == (90.0, 0.5)
    assert machine.thresholds == {
        "machine_temperature_celsius": Threshold(warn=90, alarm=95),
        "machine_pressure_bar": Threshold(warn=None, alarm=3),
        "machine_speed_rpm": Threshold(warn=None, alarm=3000),
    }


def test_labels_given_as_numbers_become_strings(tmp_path: Path) -> None:
    inventory = load_inventory(
        write(tmp_path, "machines:\n  - {id: m, url: 'http://h', labels: {floor: 2}}\n")
    )
    assert inventory.machines[0].labels == {"floor": "2"}


def test_relative_secret_files_are_resolved_against_the_inventory_folder(tmp_path: Path) -> None:
    text = (
        "machines:\n"
        "  - {id: a, url: 'http://h', auth: {bearer_token_file: secrets/a.token}}\n"
        "  - {id: b, url: 'http://h', auth: {basic: {username: scraper, password_file: b.pw}}}\n"
        "  - {id: c, url: 'http://h', auth: {basic: {username: scraper, password_env: MW_PW}}}\n"
    )
    a, b, c = load_inventory(write(tmp_path, text)).machines
    assert a.auth is not None and a.auth.bearer_token_file == str(tmp_path / "secrets" / "a.token")
    assert b.auth is not None and b.auth.basic is not None
    assert b.auth.basic.password_file == str(tmp_path / "b.pw")
    assert c.auth is not None and c.auth.basic is not None and c.auth.basic.password_env == "MW_PW"


def test_every_problem_is_reported_at_once_with_line_and_path(tmp_path: Path) -> None:
    text = """\
defaults:
  scrape_interval: 15s
machines:
  - id: press_01
    url: http://127.0.0.1:9817/metrics
  - id: Press 02
    url: ftp://10.0.0.2/metrics
    location: {lat: 91, lon: 13}
    colour: red
  - id: press_01
    url: http://127.0.0.1:9818/metrics
    enabled: maybe
  - name: no id or url
"""
    where = tmp_path / "machines.yaml"
    assert problems_of(tmp_path, text) == [
        f"{where}:6: machines[1].id: must use only lowercase letters, digits, '_' and '-'",
        f"{where}:7: machines[1].url: must start with http:// or https://",
        f"{where}:8: machines[1].location.lat: must be less than or equal to 90 (got 91)",
        f"{where}:9: machines[1].colour: unknown key (expected one of: id, name, mode, url, "
        "location, plan_position, site, labels, auth, enabled, scrape_interval, scrape_timeout, "
        "push_interval, push_stale_intervals, thresholds, alerts, sample_limit, label_limit, "
        "label_name_length_limit, label_value_length_limit, metric_name_length_limit, body_size_limit, "
        "follow_redirects)",
        f"{where}:10: machines[2].id: duplicate id 'press_01' (first used by machines[0] at line 4)",
        f"{where}:12: machines[2].enabled: must be true or false (got 'maybe')",
        f"{where}:13: machines[3].id: required",
        f"{where}:13: machines[3].url: required (or `mode: push` for a machine that sends its readings)",
    ]


def test_problem_and_error_text() -> None:
    problem = Problem("machines.yaml", 12, "machines[3].url", "must start with http:// or https://")
    assert str(problem) == "machines.yaml:12: machines[3].url: must start with http:// or https://"
    assert str(Problem("machines.yaml", None, "", "cannot read: No such file or directory")) == (
        "machines.yaml: cannot read: No such file or directory"
    )
    error = InventoryError([problem, Problem("machines.yaml", 14, "machines[4].id", "required")])
    assert str(error).splitlines() == [str(problem), "machines.yaml:14: machines[4].id: required"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("machines:\n  - id: a\n  url: x\n", ":3: YAML syntax error: expected <block end>"),
        ("machines: [\n", ":2: YAML syntax error:"),
        (
            "machines:\n  - {id: a, id: b, url: 'http://h'}\n",
            ':2: YAML syntax error: found duplicate key "id"',
        ),
        ("machines:\n  - id: a\n\tbad: tab\n", ":3: YAML syntax error:"),
        ("", ": the file is empty"),
        ("- just a list\n", ": the top level must be a mapping"),
        ("defaults: {}\n", ": machines: required"),
        ("machines: 3\n", ":1: machines: must be a list of machines"),
        ("machines: []\nextra: 1\n", ":2: extra: unknown key (expected one of: defaults, machines)"),
        ("machines:\n  - just-a-string\n", ":2: machines[0]: must be a mapping (got 'just-a-string')"),
    ],
)
def test_structural_problems(tmp_path: Path, text: str, expected: str) -> None:
    problems = problems_of(tmp_path, text)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (
            "{id: m, url: 'http://h', scrape_interval: 5s, scrape_timeout: 5s}",
            "machines[0].scrape_timeout: scrape_timeout (5s) must be shorter than scrape_interval (5s)",
        ),
        (
            "{id: m, url: 'http://h', scrape_timeout: 15s}",
            "machines[0].scrape_timeout: scrape_timeout (15s) must be shorter than "
            "scrape_interval (15s, from defaults)",
        ),
        (
            "{id: m, url: 'http://h', scrape_interval: 2d}",
            "machines[0].scrape_interval: must be at most 1d (got '2d')",
        ),
        (
            "{id: m, url: 'http://h', scrape_timeout: 1e15}",
            "machines[0].scrape_timeout: must be at most 1d (got 1000000000000000.0)",
        ),
        (
            "{id: m, url: 'http://h', scrape_interval: fast}",
            "machines[0].scrape_interval: must be a duration",
        ),
        (
            "{id: m, url: 'http://h', scrape_interval: 0s}",
            "machines[0].scrape_interval: must be greater than 0",
        ),
        (
            "{id: m, url: 'http://h', scrape_interval: -1}",
            "machines[0].scrape_interval: must be greater than 0",
        ),
        (
            "{id: m, url: 'http://h', scrape_interval: true}",
            "machines[0].scrape_interval: must be a duration",
        ),
        ("{id: m, url: 'http:///metrics'}", "machines[0].url: has no host"),
        ("{id: m, url: 'http://h:99999/'}", "machines[0].url: has a bad port number"),
        ("{id: m, url: 'http://h/a b'}", "machines[0].url: must not contain spaces"),
        (
            "{id: m, url: 'http://scraper@h:9817/metrics'}",
            "machines[0].url: must not contain a user or password: put credentials under auth:",
        ),
        ("{id: m, url: 'http://h', location: {lat: 1}}", "machines[0].location.lon: required"),
        (
            "{id: m, url: 'http://h', location: {lat: 1, lon: -181}}",
            "machines[0].location.lon: must be greater",
        ),
        (
            "{id: m, url: 'http://h', location: {lat: '52', lon: 1}}",
            "machines[0].location.lat: must be a number",
        ),
        (
            "{id: m, url: 'http://h', auth: {}}",
            "machines[0].auth: needs exactly one of bearer_token_file, bearer_token_env, basic",
        ),
        (
            "{id: m, url: 'http://h', auth: {bearer_token_file: a, bearer_token_env: B}}",
            "machines[0].auth: needs exactly one of",
        ),
        ("{id: m, url: 'http://h', auth: {bearer_token_env: ''}}", "machines[0].auth: must not be empty"),
        (
            "{id: m, url: 'http://h', auth: {basic: {username: u}}}",
            "machines[0].auth.basic: needs exactly one of password_file, password_env",
        ),
        (
            "{id: m, url: 'http://h', auth: {basic: {password_env: P}}}",
            "machines[0].auth.basic.username: required",
        ),
        (
            "{id: m, url: 'http://h', auth: {token: x}}",
            "machines[0].auth.token: unknown key (expected one of: "
            "bearer_token_file, bearer_token_env, basic)",
        ),
        (
            "{id: m, url: 'http://h', labels: {'bad-label': x}}",
            "machines[0].labels.bad-label: is not a valid label",
        ),
        ("{id: m, url: 'http://h', labels: [a]}", "machines[0].labels: must be a mapping"),
        (
            "{id: m, url: 'http://h', thresholds: {'temp.c': {warn: 1}}}",
            "machines[0].thresholds.temp.c: is not a valid metric name",
        ),
        (
            "{id: m, url: 'http://h', thresholds: {m1: {warn: 5, alarm: 4}}}",
            "machines[0].thresholds.m1: warn (5) must not be above alarm (4)",
        ),
        (
            "{id: m, url: 'http://h', thresholds: {m1: {warn: high}}}",
            "machines[0].thresholds.m1.warn: must be a number (got 'high')",
        ),
        (
            "{id: m, url: 'http://h', thresholds: {m1: {warm: 1}}}",
            "machines[0].thresholds.m1.warm: unknown key (expected one of: warn, alarm)",
        ),
        ("{id: m, url: 'http://h', name: ''}", "machines[0].name: must not be empty"),
        ("{id: 7, url: 'http://h'}", "machines[0].id: must be a string (got 7)"),
    ],
)
def test_machine_problems(tmp_path: Path, machine: str, expected: str) -> None:
    problems = problems_of(tmp_path, f"machines:\n  - {machine}\n")
    assert any(f"machines.yaml:2: {expected}" in p for p in problems), problems


def test_merged_thresholds_are_checked_too(tmp_path: Path) -> None:
    text = (
        "defaults:\n  thresholds:\n    machine_temperature_celsius: {warn: 80, alarm: 95}\n"
        "machines:\n  - id: m\n    url: http://h\n    thresholds:\n"
        "      machine_temperature_celsius: {warn: 99}\n"
    )
    where = tmp_path / "machines.yaml"
    assert problems_of(tmp_path, text) == [
        f"{where}:8: machines[0].thresholds.machine_temperature_celsius: warn (99) must not "
        "be above alarm (95) once merged with the defaults"
    ]


def test_defaults_problems(tmp_path: Path) -> None:
    text = (
        "defaults:\n  scrape_interval: 10s\n  scrape_timeout: 10s\n  colour: red\n"
        "  thresholds:\n    9lives: {warn: 1}\nmachines: []\n"
    )
    problems = problems_of(tmp_path, text)
    assert any(
        ":4: defaults.colour: unknown key (expected one of: scrape_interval, scrape_timeout, "
        "push_interval, push_stale_intervals, thresholds, alerts, sample_limit" in p
        for p in problems
    ), problems
    assert any(":6: defaults.thresholds.9lives: is not a valid metric name" in p for p in problems), problems
    text = "defaults:\n  scrape_interval: 10s\n  scrape_timeout: 10s\nmachines: []\n"
    where = tmp_path / "machines.yaml"
    assert problems_of(tmp_path, text) == [
        f"{where}:3: defaults.scrape_timeout: scrape_timeout (10s) must be shorter than scrape_interval (10s)"
    ]


def test_a_password_in_a_url_is_refused_at_its_line_and_never_repeated(tmp_path: Path) -> None:
    text = (
        "machines:\n"
        "  - {id: a, url: 'http://127.0.0.1:9817/metrics'}\n"
        "  - {id: b, url: 'http://127.0.0.1:9818/metrics'}\n"
        "  - id: c\n"
        "    url: http://admin:hunter2@host:9817/metrics\n"
    )
    path = write(tmp_path, text)
    out, err = io.StringIO(), io.StringIO()
    assert check_command(path, out, err) == 1
    assert err.getvalue().splitlines() == [
        f"{path}:5: machines[2].url: must not contain a user or password: put credentials under auth:",
        f"{path}: 1 problem",
    ]
    assert "hunter2" not in err.getvalue() + out.getvalue()


def test_scrape_durations_are_bounded_to_a_day(tmp_path: Path) -> None:
    where = tmp_path / "machines.yaml"
    text = "defaults:\n  scrape_interval: 1e15\n  scrape_timeout: 25h\nmachines: []\n"
    assert problems_of(tmp_path, text) == [
        f"{where}:2: defaults.scrape_interval: must be at most 1d (got 1000000000000000.0)",
        f"{where}:3: defaults.scrape_timeout: must be at most 1d (got '25h')",
    ]
    inventory = load_inventory(
        write(tmp_path, "machines:\n  - {id: m, url: 'http://h', scrape_interval: 1d}\n")
    )
    assert inventory.machines[0].scrape_interval_seconds == 86400.0


@pytest.mark.parametrize(
    ("text", "interval", "timeout"),
    [
        # Not written: 5s, or 80 % of a shorter interval, so a short interval is never a conflict.
        ("defaults: {scrape_interval: 2s}\n", 2.0, 1.6),
        ("defaults: {scrape_interval: 10s}\n", 10.0, 5.0),
        ("defaults: {scrape_interval: 500ms}\n", 0.5, 0.4),
        # Written: kept as written.
        ("defaults: {scrape_interval: 2s, scrape_timeout: 1900ms}\n", 2.0, 1.9),
        ("defaults: {scrape_timeout: 14s}\n", 15.0, 14.0),
    ],
)
def test_an_unwritten_default_timeout_fits_the_interval(
    tmp_path: Path, text: str, interval: float, timeout: float
) -> None:
    inventory = load_inventory(write(tmp_path, text + "machines:\n  - {id: m, url: 'http://h'}\n"))
    assert (inventory.defaults.scrape_interval_seconds, inventory.defaults.scrape_timeout_seconds) == (
        interval,
        pytest.approx(timeout),
    )
    machine = inventory.machines[0]
    assert (machine.scrape_interval_seconds, machine.scrape_timeout_seconds) == (
        interval,
        pytest.approx(timeout),
    )


def test_a_machine_without_its_own_timeout_gets_one_that_fits_its_interval(tmp_path: Path) -> None:
    text = """\
defaults:
  scrape_interval: 1m
  scrape_timeout: 10s
machines:
  - {id: fast, url: 'http://h', scrape_interval: 5s}
  - {id: slow, url: 'http://h', scrape_interval: 5m}
  - {id: same, url: 'http://h'}
  - {id: own, url: 'http://h', scrape_interval: 5s, scrape_timeout: 4500ms}
"""
    timeouts = {m.id: m.scrape_timeout_seconds for m in load_inventory(write(tmp_path, text)).machines}
    # The defaults' written 10s, capped at 80 % of the machine's own interval when that is shorter.
    assert timeouts == {"fast": 4.0, "slow": 10.0, "same": 10.0, "own": 4.5}
    # A default interval of 2s made the defaults' timeout 1.6s, but it was not written: a machine
    # with a longer interval gets the usual 5s, not 1.6s.
    text = "defaults: {scrape_interval: 2s}\nmachines:\n  - {id: m, url: 'http://h', scrape_interval: 1m}\n"
    assert load_inventory(write(tmp_path, text)).machines[0].scrape_timeout_seconds == 5.0


def test_a_timeout_conflict_is_blamed_on_the_written_timeout(tmp_path: Path) -> None:
    where = tmp_path / "machines.yaml"
    text = """\
defaults:
  scrape_interval: 10s
  scrape_timeout: 8s
machines:
  - id: a
    url: http://h
    scrape_interval: 5s
    scrape_timeout: 6s
  - id: b
    url: http://h
    scrape_timeout: 12s
  - id: c
    url: http://h
    scrape_interval: 5s
"""
    assert problems_of(tmp_path, text) == [
        f"{where}:8: machines[0].scrape_timeout: scrape_timeout (6s) must be shorter than "
        "scrape_interval (5s)",
        f"{where}:11: machines[1].scrape_timeout: scrape_timeout (12s) must be shorter than "
        "scrape_interval (10s, from defaults)",
    ]
    text = "defaults:\n  scrape_timeout: 20s\nmachines: []\n"
    assert problems_of(tmp_path, text) == [
        f"{where}:2: defaults.scrape_timeout: scrape_timeout (20s) must be shorter than "
        "scrape_interval (15s, the default)"
    ]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("15s", 15),
        ("2m", 120),
        ("1h", 3600),
        ("1d", 86400),
        ("1m30s", 90),
        (7, 7),
        (0.25, 0.25),
        ("12", 12),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_not_utf8_is_a_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "machines.yaml"
    path.write_bytes(b"machines:\n  - id: caf\xe9\n")
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert not isinstance(caught.value, InventoryUnreadable)
    assert str(caught.value) == f"{path}:2: not valid UTF-8 text"


def test_check_command_valid(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        DESIGN_EXAMPLE.replace("enabled: true", "enabled: false")
        + "  - {id: second, url: 'http://127.0.0.1:9817/metrics'}\n",
    )
    out, err = io.StringIO(), io.StringIO()
    assert check_command(path, out, err) == 0
    assert out.getvalue() == f"{path}: OK, 2 machines (1 enabled)\n"
    assert err.getvalue() == ""


def test_check_command_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "machines:\n  - {id: a, url: 'ftp://x'}\n  - {id: a, url: 'http://x'}\n")
    out, err = io.StringIO(), io.StringIO()
    assert check_command(path, out, err) == 1
    assert err.getvalue().splitlines() == [
        f"{path}:2: machines[0].url: must start with http:// or https://",
        f"{path}:3: machines[1].id: duplicate id 'a' (first used by machines[0] at line 2)",
        f"{path}: 2 problems",
    ]
    assert out.getvalue() == ""


def test_check_command_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_command(tmp_path / "missing.yaml") == 2
    assert capsys.readouterr().err == f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory\n"
    assert check_command(tmp_path) == 2  # a folder
    assert "cannot read" in capsys.readouterr().err


def test_the_example_inventory_of_the_repository_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "machines.yaml"
    out, err = io.StringIO(), io.StringIO()
    assert check_command(example, out, err) == 0, err.getvalue()
    inventory = load_inventory(example)
    assert len(inventory.machines) == 4
    assert [m.id for m in inventory.machines if m.mode == "push"] == ["foundry_porto"]


def test_every_key_is_documented_in_the_guide_and_the_example() -> None:
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "inventory.md").read_text(encoding="utf-8")
    example = (root / "machines.yaml").read_text(encoding="utf-8")
    keys = {"defaults", "machines"}
    for model in (DefaultsSpec, MachineSpec, LocationSpec, Auth, BasicAuth, ThresholdSpec, AlertRuleSpec):
        keys |= {field.alias or name for name, field in model.model_fields.items()}
    for key in sorted(keys):
        assert re.search(rf"\b{key}\b", guide), f"{key} is not in docs/inventory.md"
        assert re.search(rf"\b{key}\b", example), f"{key} is not in machines.yaml"


PUSH_INVENTORY = """\
defaults:
  push_interval: 20s
machines:
  - id: porto
    mode: push
    location: {lat: 41.15, lon: -8.63}
  - id: faro
    mode: push
    push_interval: 5s
    push_stale_intervals: 4
  - id: berlin
    url: http://127.0.0.1:9817/metrics
"""


def test_push_machines_have_no_url_and_are_not_scraped(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, PUSH_INVENTORY))
    porto, faro, berlin = inventory.machines
    assert (porto.mode, porto.url, porto.push_interval_seconds, porto.push_stale_after_seconds) == (
        "push",
        "",
        20.0,
        60.0,
    )
    assert (faro.push_interval_seconds, faro.push_stale_after_seconds) == (5.0, 20.0)
    assert berlin.mode == "pull"
    assert [m.id for m in inventory.scraped_machines] == ["berlin"]
    view = faro.initial_view()
    assert (view.mode, view.url, view.scrape_interval_seconds, view.stale_after_seconds) == (
        "push",
        "",
        5.0,
        20.0,
    )
    assert berlin.initial_view().stale_after_seconds is None


def test_mode_mistakes_are_reported_at_their_keys(tmp_path: Path) -> None:
    text = """\
machines:
  - id: a
    mode: push
    url: http://127.0.0.1:9817/metrics
    scrape_interval: 10s
  - id: b
    push_interval: 5s
  - id: c
    mode: pushed
  - id: d
"""
    where = tmp_path / "machines.yaml"
    pushed_only = (
        "not allowed with `mode: push`: a push machine is never scraped, "
        "it sends its readings to POST /api/ingest"
    )
    assert problems_of(tmp_path, text) == [
        f"{where}:4: machines[0].url: {pushed_only}",
        f"{where}:5: machines[0].scrape_interval: {pushed_only}",
        f"{where}:6: machines[1].url: required (or `mode: push` for a machine that sends its readings)",
        f"{where}:7: machines[1].push_interval: only for `mode: push` machines (this one is pulled)",
        f"{where}:9: machines[2].mode: must be 'pull' or 'push' (got 'pushed')",
        f"{where}:10: machines[3].url: required (or `mode: push` for a machine that sends its readings)",
    ]
