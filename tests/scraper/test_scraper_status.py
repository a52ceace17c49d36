"""The status rules, one test per rule: what the map shows for each situation."""

from __future__ import annotations

import random

import pytest

from scraper.errors import ConnectFailed, HTTPStatusError, ScrapeTimeout
from scraper.exposition import ParsedSamples, Sample, parse_samples
from scraper.inventory import Machine
from scraper.line_cache import LineCache, SeriesRef
from scraper.state import LastScrape, MachineView, Status, Threshold
from scraper.status import (
    apply_staleness,
    crossings,
    evaluate,
    failed,
    format_number,
    readings_of,
    system_summary,
)

T0 = 1_764_136_800.0


def machine(**changes: object) -> Machine:
    values: dict[str, object] = {
        "id": "press_01",
        "name": "Press 01",
        "url": "http://127.0.0.1:9817/metrics",
        "scrape_interval_seconds": 15.0,
        "scrape_timeout_seconds": 5.0,
        "thresholds": {
            "machine_temperature_celsius": Threshold(warn=80, alarm=95),
            "machine_pressure_bar": Threshold(warn=2, alarm=3),
            "machine_speed_rpm": Threshold(alarm=3000),
        },
    }
    values.update(changes)
    return Machine.model_validate(values)


def healthy(**readings: float) -> list[Sample]:
    values = {"machine_temperature_celsius": 60.0, "machine_pressure_bar": 1.0, "machine_speed_rpm": 1480.0}
    values.update(readings)
    return [
        *(Sample(name, {}, value) for name, value in values.items()),
        Sample("millwatch_serial_up", {}, 1.0),
        Sample("machine_info", {"machine_id": "press_01", "name": "Press 01"}, 1.0),
    ]


def test_all_readings_below_their_limits_is_up_with_no_reason() -> None:
    view = evaluate(machine(), healthy(), T0, 0.012)
    assert view.status is Status.UP
    assert view.reason is None
    assert view.readings == {
        "machine_temperature_celsius": 60,
        "machine_pressure_bar": 1,
        "machine_speed_rpm": 1480,
    }
    # 5 samples: three readings, millwatch_serial_up, machine_info
    assert view.last_scrape == LastScrape(time=T0, duration_seconds=0.012, error=None, samples=5)
    assert view.consecutive_failures == 0
    assert view.last_success_time == T0
    assert view.name == "Press 01" and view.scrape_interval_seconds == 15.0


def test_readings_are_unlabelled_finite_machine_samples_except_machine_info() -> None:
    samples = [
        Sample("machine_temperature_celsius", {}, 70.0),
        Sample("machine_temperature_celsius", {"sensor": "2"}, 99.0),  # labelled: not a reading
        Sample("machine_info", {}, 1.0),
        Sample("machine_level_ratio", {}, float("nan")),
        Sample("process_cpu_seconds_total", {}, 3.0),
    ]
    assert evaluate(machine(), samples, T0, 0.01).readings == {"machine_temperature_celsius": 70.0}


def test_reading_at_warn_limit_is_warn_and_names_metric_value_and_limit() -> None:
    view = evaluate(machine(), healthy(machine_temperature_celsius=80.0), T0, 0.01)
    assert view.status is Status.WARN
    assert view.reason == "machine_temperature_celsius 80 ≥ warn 80"


def test_reading_at_or_above_alarm_is_alarm() -> None:
    view = evaluate(machine(), healthy(machine_temperature_celsius=97.2), T0, 0.01)
    assert view.status is Status.ALARM
    assert view.reason == "machine_temperature_celsius 97.2 ≥ alarm 95"


def test_several_crossings_name_the_worst_first_then_count_the_others() -> None:
    samples = healthy(machine_temperature_celsius=85.0, machine_pressure_bar=3.5, machine_speed_rpm=3100.0)
    view = evaluate(machine(), samples, T0, 0.01)
    assert view.status is Status.ALARM
    # Both alarms: pressure is 17% past its limit, speed 3%; the warning comes last.
    assert view.reason == "machine_pressure_bar 3.5 ≥ alarm 3, +2 more"
    order = [c.metric for c in crossings(view.readings, machine().thresholds)]
    assert order == ["machine_pressure_bar", "machine_speed_rpm", "machine_temperature_celsius"]


def test_thresholds_apply_to_any_unlabelled_metric() -> None:
    m = machine(thresholds={"system_cpu_usage_ratio": Threshold(warn=0.9)})
    view = evaluate(m, [*healthy(), Sample("system_cpu_usage_ratio", {}, 0.95)], T0, 0.01)
    assert view.status is Status.WARN
    assert view.reason == "system_cpu_usage_ratio 0.95 ≥ warn 0.9"


def test_serial_down_is_sensor_fault_with_the_age_of_the_last_reading() -> None:
    samples = [
        Sample("millwatch_serial_up", {}, 0.0),
        Sample("millwatch_serial_last_reading_timestamp_seconds", {}, T0 - 94),
    ]
    view = evaluate(machine(), samples, T0, 0.01)
    assert view.status is Status.SENSOR_FAULT
    assert view.reason == "serial sensor not reporting, last reading 94s ago"
    assert view.readings == {}


def test_serial_down_without_any_reading_yet() -> None:
    samples = [
        Sample("millwatch_serial_up", {}, 0.0),
        Sample("millwatch_serial_last_reading_timestamp_seconds", {}, 0),
    ]
    assert evaluate(machine(), samples, T0, 0.01).reason == "serial sensor not reporting"


def test_an_exporter_that_just_started_is_not_a_sensor_fault_before_stale_after() -> None:
    starting = [
        Sample("millwatch_serial_up", {}, 0.0),
        Sample("millwatch_serial_stale_after_seconds", {}, 30.0),
        Sample("process_start_time_seconds", {}, T0 - 5),
    ]
    view = evaluate(machine(), starting, T0, 0.01)
    assert view.status is Status.UP and view.reason == "waiting for the sensor's first line"
    # Past its stale_after without a first line, the sensor is at fault.
    late = evaluate(machine(), starting, T0 + 26, 0.01)
    assert late.status is Status.SENSOR_FAULT and late.reason == "serial sensor not reporting"
    # An exporter that does not say its stale_after gets the exporter's default, 30 s.
    without = [s for s in starting if s.name != "millwatch_serial_stale_after_seconds"]
    assert evaluate(machine(), without, T0 + 24, 0.01).status is Status.UP
    assert evaluate(machine(), without, T0 + 26, 0.01).status is Status.SENSOR_FAULT
    # A sensor that did send lines and stopped is a fault at once, however young the exporter.
    spoke = [*starting, Sample("millwatch_serial_last_reading_timestamp_seconds", {}, T0 - 2)]
    assert evaluate(machine(), spoke, T0, 0.01).status is Status.SENSOR_FAULT
    # Without the exporter's start time nothing is excused.
    unknown_start = [s for s in starting if s.name != "process_start_time_seconds"]
    assert evaluate(machine(), unknown_start, T0, 0.01).status is Status.SENSOR_FAULT


def test_sensor_fault_wins_over_stale_readings_past_their_limits() -> None:
    samples = [Sample("millwatch_serial_up", {}, 0.0), Sample("machine_temperature_celsius", {}, 120.0)]
    assert evaluate(machine(), samples, T0, 0.01).status is Status.SENSOR_FAULT


def test_an_exporter_without_serial_metrics_is_judged_by_readings_alone() -> None:
    view = evaluate(machine(), [Sample("machine_temperature_celsius", {}, 50.0)], T0, 0.01)
    assert view.status is Status.UP


def test_disabled_machine_stays_disabled() -> None:
    m = machine(enabled=False)
    assert m.initial_view().status is Status.DISABLED
    assert evaluate(m, healthy(machine_temperature_celsius=120.0), T0, 0.01).status is Status.DISABLED
    assert failed(m.initial_view(), ConnectFailed("connection refused"), T0, 0.01).status is Status.DISABLED


def test_system_summary() -> None:
    samples = [
        Sample("system_boot_time_seconds", {}, T0 - 86400),
        Sample("system_cpu_usage_ratio", {}, 0.12),
        Sample("system_memory_total_bytes", {}, 8e9),
        Sample("system_memory_available_bytes", {}, 2e9),
        Sample("system_disk_total_bytes", {"mountpoint": "C:\\"}, 100.0),
        Sample("system_disk_free_bytes", {"mountpoint": "C:\\"}, 30.0),
        Sample("system_disk_total_bytes", {"mountpoint": "D:\\"}, 100.0),
        Sample("system_disk_free_bytes", {"mountpoint": "D:\\"}, 90.0),
        Sample("system_disk_total_bytes", {"mountpoint": "E:\\"}, 0.0),  # an empty card reader
        Sample("system_disk_free_bytes", {"mountpoint": "E:\\"}, 0.0),
    ]
    system = evaluate(machine(), samples, T0, 0.01).system
    assert system.uptime_seconds == 86400
    assert system.cpu_usage_ratio == 0.12
    assert system.memory_used_ratio == pytest.approx(0.75)
    assert system.disk_used_ratio == pytest.approx(0.7)


def test_missing_system_figures_stay_unknown() -> None:
    system = evaluate(machine(), healthy(), T0, 0.01).system
    assert (
        system.uptime_seconds is None and system.memory_used_ratio is None and system.disk_used_ratio is None
    )


def test_failed_scrape_is_down_with_the_error_text_and_keeps_last_readings() -> None:
    before = evaluate(machine(), healthy(machine_temperature_celsius=83.1), T0, 0.01)
    after = failed(before, ScrapeTimeout(5.0), T0 + 15, 5.0)
    assert after.status is Status.DOWN
    assert after.reason == "timeout after 5s"
    assert after.last_scrape == LastScrape(
        time=T0 + 15, duration_seconds=5.0, error="timeout after 5s", samples=0
    )
    assert after.consecutive_failures == 1
    assert after.readings == before.readings
    assert after.system == before.system
    assert after.last_success_time == T0


def test_failed_scrape_of_a_never_scraped_machine() -> None:
    view = failed(machine().initial_view(), HTTPStatusError(503), T0, 0.003)
    assert (view.status, view.reason, view.readings, view.last_success_time) == (
        Status.DOWN,
        "HTTP 503",
        {},
        None,
    )


def scraped(at: float, status: Status = Status.UP, interval: float = 15.0) -> MachineView:
    return MachineView(
        id="m",
        name="m",
        url="http://127.0.0.1:1/metrics",
        scrape_interval_seconds=interval,
        status=status,
        last_scrape=LastScrape(time=at, duration_seconds=0.01),
        last_success_time=at,
        readings={"machine_temperature_celsius": 70.0},
    )


def test_staleness_after_three_intervals_plus_the_timeout() -> None:
    view = scraped(T0)
    assert apply_staleness(view, T0 + 50, scrape_timeout_seconds=5) is view  # 3 x 15 + 5 = 50: not yet
    stale = apply_staleness(view, T0 + 94, scrape_timeout_seconds=5)
    assert stale.status is Status.STALE
    assert stale.reason == "no scrape for over 50s"
    assert stale.readings == view.readings
    assert stale.last_scrape == view.last_scrape  # the page shows the age from the last scrape's time


def test_the_stale_reason_names_the_limit_and_does_not_change_while_stale() -> None:
    # A reason that changed every sweep ("5s" -> "10s") would re-send the whole stale fleet to every
    # browser each time; the same object back means the fleet state sees no change at all.
    stale = apply_staleness(scraped(T0), T0 + 94, scrape_timeout_seconds=5)
    assert apply_staleness(stale, T0 + 99, scrape_timeout_seconds=5) is stale
    assert apply_staleness(stale, T0 + 3 * 3600, scrape_timeout_seconds=5) is stale
    hourly = apply_staleness(scraped(T0, interval=3600), T0 + 86400, scrape_timeout_seconds=10)
    assert hourly.reason == "no scrape for over 3h"
    assert apply_staleness(scraped(T0, interval=20), T0 + 66, scrape_timeout_seconds=5).reason == (
        "no scrape for over 65s"
    )


def test_staleness_without_the_timeout_allows_a_whole_interval_for_it() -> None:
    view = scraped(T0)
    assert apply_staleness(view, T0 + 60).status is Status.UP
    assert apply_staleness(view, T0 + 61).status is Status.STALE


def test_down_machines_turn_stale_too_but_never_scraped_or_disabled_ones_do_not() -> None:
    assert apply_staleness(scraped(T0, Status.DOWN), T0 + 1000).status is Status.STALE
    never = MachineView(id="n", name="n", url="http://127.0.0.1:1/")
    assert apply_staleness(never, T0 + 1e6) is never
    disabled = scraped(T0).with_changes(enabled=False, status=Status.DISABLED)
    assert apply_staleness(disabled, T0 + 1e6) is disabled


def test_staleness_is_idempotent_and_lifted_by_the_next_scrape() -> None:
    stale = apply_staleness(scraped(T0), T0 + 100)
    assert apply_staleness(stale, T0 + 100) is stale
    assert evaluate(machine(), healthy(), T0 + 101, 0.01).status is Status.UP


@pytest.mark.parametrize(
    ("value", "text"),
    [(95.0, "95"), (97.2, "97.2"), (1.02, "1.02"), (1480.0, "1480"), (0.000123, "0.000123")],
)
def test_numbers_in_reasons_read_naturally(value: float, text: str) -> None:
    assert format_number(value) == text


def test_a_push_batch_follows_the_scrape_rules_and_keeps_readings_when_it_has_none() -> None:
    from scraper.state import SystemSummary
    from scraper.status import evaluate_push

    pushed = machine(mode="push", url="", push_interval_seconds=10.0, push_stale_intervals=3)
    system = SystemSummary(uptime_seconds=60.0)
    hot = evaluate_push(pushed, None, {"machine_temperature_celsius": 96.0}, True, T0, system, T0 + 1, 0.01)
    assert hot.status is Status.ALARM and hot.reason == "machine_temperature_celsius 96 ≥ alarm 95"
    assert hot.last_scrape == LastScrape(time=T0 + 1, duration_seconds=0.01) and hot.system == system
    quiet = evaluate_push(pushed, hot, {}, False, T0, system, T0 + 11, 0.01)
    assert (
        quiet.status is Status.SENSOR_FAULT
        and quiet.reason == "serial sensor not reporting, last reading 11s ago"
    )
    assert quiet.readings == {"machine_temperature_celsius": 96.0}
    assert apply_staleness(quiet, T0 + 11 + 30) is quiet
    stale = apply_staleness(quiet, T0 + 11 + 31)
    assert stale.status is Status.STALE and stale.reason == "no data pushed for over 30s"
    assert stale.last_scrape == quiet.last_scrape  # the page shows the age of the last batch


def test_readings_and_system_read_the_same_from_parsed_samples_as_from_sample_objects() -> None:
    """The rules read a scrape's samples in C (masks over the parser's lists): fuzzed against the
    plain reading of every sample in order — the last value of a name wins, NaN and ±Inf are never
    readings, and a disk's size counts only with its mount point."""
    rng = random.Random(7)
    names = [
        "machine_temperature_celsius",
        "machine_speed_rpm",
        "machine_info",
        "system_memory_total_bytes",
        "system_memory_available_bytes",
        "system_disk_total_bytes",
        "system_disk_free_bytes",
        "system_cpu_usage_ratio",
        "system_boot_time_seconds",
    ]
    label_sets = [{}, {}, {"mountpoint": "/"}, {"mountpoint": "/data"}, {"device": "sda"}]
    spellings = [float("nan"), float("inf"), -float("inf"), 0.0, 1e9, 4e9, 0.5, 90.0]
    for _ in range(300):
        samples = [
            Sample(rng.choice(names), dict(rng.choice(label_sets)), rng.choice(spellings))
            for _ in range(rng.randrange(0, 25))
        ]
        parsed = ParsedSamples([SeriesRef.of(s.name, s.labels) for s in samples], [s.value for s in samples])
        expected_readings: dict[str, float] = {}
        for s in samples:
            if not s.labels and s.name.startswith("machine_") and s.name != "machine_info":
                if s.value == s.value and abs(s.value) != float("inf"):
                    expected_readings[s.name] = s.value
        assert readings_of(parsed) == readings_of(samples) == expected_readings
        assert system_summary(parsed, 2e9) == system_summary(samples, 2e9)


def exposition_of(samples: list[Sample]) -> str:
    lines = ["# HELP a comment the template keeps"]
    for s in samples:
        labels = ",".join(f'{k}="{v}"' for k, v in s.labels.items())
        lines.append(f"{s.name}{{{labels}}} {s.value!r}" if labels else f"{s.name} {s.value!r}")
    return "\n".join(lines) + "\n"


def test_readings_and_system_read_the_same_through_a_body_template() -> None:
    """A body read through its template (the same shape as the last, new values): the rules pick
    its values by the places they worked out once for that shape — fuzzed against the plain
    reading of the same samples, scrape after scrape with new values."""
    rng = random.Random(11)
    names = ["machine_temperature_celsius", "machine_info", "system_memory_total_bytes"]
    names += ["system_memory_available_bytes", "system_disk_total_bytes", "system_disk_free_bytes"]
    label_sets = [{}, {}, {"mountpoint": "/"}, {"mountpoint": "/data"}, {"device": "sda"}]
    spellings = [float("nan"), float("inf"), -float("inf"), 0.0, 1e9, 4e9, 0.5, 90.0]
    for _ in range(100):
        series = [(rng.choice(names), rng.choice(label_sets)) for _ in range(rng.randrange(1, 20))]
        cache = LineCache()
        for scrape in range(4):
            samples = [Sample(name, dict(labels), rng.choice(spellings)) for name, labels in series]
            parsed = parse_samples(exposition_of(samples), cache)
            assert (parsed.shape is not None) == (scrape > 0), "read through the template after the first"
            assert readings_of(parsed) == readings_of(samples)
            assert system_summary(parsed, 2e9) == system_summary(samples, 2e9)
