"""The serial sensor's readings and the reader's health, read from `SerialReader` at scrape time.

A channel's gauge is exported only while its newest reading is fresh (`ReaderStatus.is_fresh`, the
reader's `stale_after`): a frozen value from a dead sensor would otherwise look like a healthy machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from exporter.config import ChannelConfig
from exporter.exposition import CounterMetricFamily, GaugeMetricFamily, Metric
from exporter.serial_reader import REASONS, ReaderStatus


class ReaderLike(Protocol):
    """What the collector needs from a SerialReader (a test may hand in something else)."""

    def status(self) -> ReaderStatus: ...


class SerialCollector:
    """Yields the channel gauges (value * scale + offset) and the `millwatch_serial_*` families.

    `millwatch_serial_up` is 1 only when the port is open and the newest reading is fresh
    (`ReaderStatus.up`). Freshness is the reader's rule with the reader's `stale_after`.
    """

    def __init__(
        self,
        reader: ReaderLike,
        channels: Sequence[ChannelConfig],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._channels = tuple(channels)
        self._clock = clock
        # Made when the exporter is set up, just before its reader starts: the scraper gives the
        # sensor `stale_after` from here to send its first line before calling it a fault.
        self._started = clock()

    def collect(self) -> Iterable[Metric]:
        status = self._reader.status()
        now = self._clock()
        for channel in self._channels:
            value = status.fresh_value(channel.key, now)
            if value is not None:
                yield GaugeMetricFamily(channel.metric, channel.help, value=channel.apply(value))

        yield GaugeMetricFamily(
            "millwatch_serial_up",
            "1 when the serial port is open and its newest reading is younger than stale_after, else 0.",
            value=1.0 if status.up(now) else 0.0,
        )
        # The scraper's grace at start: no first line within stale_after of the start is a
        # sensor fault; before that, the sensor simply has not spoken yet.
        yield GaugeMetricFamily(
            "millwatch_serial_stale_after_seconds",
            "A reading older than this is not current (the exporter's serial.stale_after).",
            value=float(status.stale_after),
        )
        yield GaugeMetricFamily(
            "millwatch_serial_start_time_seconds",
            "Unix time when the exporter started reading its serial port.",
            value=self._started,
        )
        yield CounterMetricFamily(
            "millwatch_serial_readings",
            "Sensor lines read and parsed successfully.",
            value=float(status.readings_total),
        )
        errors = CounterMetricFamily(
            "millwatch_serial_errors",
            "Serial input problems by reason: overlong, decode, parse (lines dropped), "
            "too_many_keys (values of keys without a channel not kept), open, io (port failures).",
            labels=["reason"],
        )
        for reason in REASONS:
            errors.add_metric([reason], float(status.errors_total.get(reason, 0)))
        yield errors
        if status.last_reading_time is not None:
            yield GaugeMetricFamily(
                "millwatch_serial_last_reading_timestamp_seconds",
                "Unix time of the newest reading parsed from the serial port.",
                value=status.last_reading_time,
            )
