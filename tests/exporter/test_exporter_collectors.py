"""Collectors with injected fakes: exact families, staleness, and failures that never break a scrape."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exporter_helpers import samples

from exporter.collectors.guard import GuardedCollector
from exporter.collectors.info import InfoCollector
from exporter.collectors.serial import SerialCollector
from exporter.config import DEFAULT_CHANNELS, ChannelConfig
from exporter.exposition import GaugeMetricFamily, Metric, Registry, render
from exporter.serial_reader import REASONS, ReaderStatus, is_fresh


def exposition(*collectors: Any) -> dict[str, float]:
    registry = Registry()
    for collector in collectors:
        registry.register(collector)
    return samples(render(registry.collect()).decode())


class FakeReader:
    def __init__(self, status: ReaderStatus) -> None:
        self.current = status

    def status(self) -> ReaderStatus:
        return self.current


def reader_status(
    *,
    connected: bool = True,
    latest: dict[str, tuple[float, float]] | None = None,
    errors: dict[str, int] | None = None,
    stale_after: float = 10.0,
) -> ReaderStatus:
    latest = latest or {}
    return ReaderStatus(
        port="/dev/ttyUSB0",
        connected=connected,
        readings_total=7,
        errors_total={**dict.fromkeys(REASONS, 0), **(errors or {})},
        last_reading_time=max((t for _, t in latest.values()), default=None),
        latest=latest,
        last_error=None,
        stale_after=stale_after,
    )


def test_serial_collector_exports_fresh_channels_scaled() -> None:
    channels = (
        *DEFAULT_CHANNELS,
        ChannelConfig("humidity", "machine_humidity_ratio", scale=0.01, offset=0.0),
    )
    reader = FakeReader(
        reader_status(
            latest={
                "temperature": (72.5, 995.0),
                "pressure": (1.02, 980.0),  # older than stale_after (10 s): not exported
                "humidity": (40.0, 999.0),
                "vibration": (3.0, 999.0),  # no channel: not exported
            },
            errors={"parse": 2},
        )
    )
    got = exposition(SerialCollector(reader, channels, clock=lambda: 1000.0))
    assert got == {
        "machine_temperature_celsius": 72.5,
        "machine_humidity_ratio": 0.4,
        "millwatch_serial_up": 1.0,
        "millwatch_serial_stale_after_seconds": 10.0,
        "millwatch_serial_start_time_seconds": 1000.0,
        "millwatch_serial_readings_total": 7.0,
        **{f'millwatch_serial_errors_total{{reason="{r}"}}': (2.0 if r == "parse" else 0.0) for r in REASONS},
        "millwatch_serial_last_reading_timestamp_seconds": 999.0,
    }


def test_serial_up_needs_an_open_port_and_a_fresh_reading() -> None:
    fresh = {"temperature": (70.0, 999.0)}
    cases = [
        (reader_status(connected=True, latest=fresh), 1000.0, 1.0),
        (reader_status(connected=True, latest=fresh), 1010.0, 0.0),  # stale
        (reader_status(connected=False, latest=fresh), 1000.0, 0.0),  # port closed
        (reader_status(connected=True, latest={}), 1000.0, 0.0),  # never read anything
    ]
    for status, now, up in cases:
        got = exposition(SerialCollector(FakeReader(status), DEFAULT_CHANNELS, clock=lambda now=now: now))
        assert got["millwatch_serial_up"] == up, (status, now)
    empty = exposition(SerialCollector(FakeReader(reader_status(latest={})), DEFAULT_CHANNELS))
    assert "millwatch_serial_last_reading_timestamp_seconds" not in empty
    assert not any(name.startswith("machine_") for name in empty)


def test_freshness_is_one_rule_with_the_readers_stale_after() -> None:
    assert is_fresh(990.0, 1000.0, 10.0), "exactly stale_after old is still fresh"
    assert not is_fresh(989.9, 1000.0, 10.0)
    assert not is_fresh(None, 1000.0, 10.0), "nothing read yet is never fresh"
    status = reader_status(latest={"temperature": (70.0, 990.0), "speed": (1480.0, 999.0)}, stale_after=5.0)
    assert status.fresh_value("temperature", 1000.0) is None
    assert status.fresh_value("speed", 1000.0) == 1480.0
    assert status.fresh_value("pressure", 1000.0) is None
    assert status.up(1000.0) and not status.up(1004.1)
    # The collector follows the status's own stale_after, not a second copy of it.
    for stale_after, expected in (
        (5.0, {"machine_speed_rpm"}),
        (60.0, {"machine_speed_rpm", "machine_temperature_celsius"}),
    ):
        current = reader_status(latest=dict(status.latest), stale_after=stale_after)
        got = exposition(SerialCollector(FakeReader(current), DEFAULT_CHANNELS, clock=lambda: 1000.0))
        assert {name for name in got if name.startswith("machine_")} == expected


def test_info_collector() -> None:
    got = exposition(InfoCollector("ironcast_berlin", 'IronCast "Berlin"', "1.2.3"))
    assert got == {
        'machine_info{machine_id="ironcast_berlin",name="IronCast \\"Berlin\\""}': 1.0,
        'millwatch_exporter_build_info{version="1.2.3"}': 1.0,
    }


class Broken:
    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("half_written", "never shown", value=1.0)
        raise OSError("psutil exploded")


def test_a_failing_collector_is_reported_not_fatal() -> None:
    ticks = iter([0.0, 0.25, 1.0, 1.5])
    guarded = GuardedCollector(
        {"info": InfoCollector("m", "M", "1"), "system": Broken()}, timer=lambda: next(ticks)
    )
    got = exposition(guarded)
    assert got['machine_info{machine_id="m",name="M"}'] == 1.0
    assert "half_written" not in got, "a failed collector contributes nothing, not half its output"
    assert got['millwatch_collector_success{collector="info"}'] == 1.0
    assert got['millwatch_collector_success{collector="system"}'] == 0.0
    assert got['millwatch_collector_duration_seconds{collector="info"}'] == 0.25
    assert got['millwatch_collector_duration_seconds{collector="system"}'] == 0.5
