"""The local reading buffer's health: `millwatch_buffer_*`, read at scrape time.

`millwatch_buffer_up` is 0 while writes fail (a full disk, an unwritable or vanished file): the
live values are still served, but readings are not kept for `/history` until it is 1 again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from exporter.buffer import ReadingBuffer
from exporter.exposition import CounterMetricFamily, GaugeMetricFamily, Metric


class BufferCollector:
    """`buffer()` returns the open buffer, or None before the app starts (then nothing is yielded)."""

    def __init__(self, buffer: Callable[[], ReadingBuffer | None]) -> None:
        self._buffer = buffer

    def collect(self) -> Iterable[Metric]:
        buffer = self._buffer()
        if buffer is None:
            return
        health = buffer.health()
        yield GaugeMetricFamily(
            "millwatch_buffer_up",
            "1 when the last write to the local reading buffer succeeded, 0 while writes fail.",
            value=0.0 if health.last_error else 1.0,
        )
        yield CounterMetricFamily(
            "millwatch_buffer_write_errors",
            "Writes to the local reading buffer that failed (full disk, unwritable file).",
            value=float(health.write_errors_total),
        )
        yield CounterMetricFamily(
            "millwatch_buffer_evicted_readings",
            "Oldest readings deleted from the local buffer to keep it under buffer.max_bytes.",
            value=float(health.evicted_total),
        )
        yield GaugeMetricFamily(
            "millwatch_buffer_readings", "Readings held in the local buffer.", value=float(health.rows)
        )
        yield GaugeMetricFamily(
            "millwatch_buffer_size_bytes",
            "Bytes the readings take in the local buffer file.",
            value=float(health.size_bytes),
        )
        if health.oldest is not None:
            yield GaugeMetricFamily(
                "millwatch_buffer_oldest_reading_timestamp_seconds",
                "Unix time of the oldest reading in the local buffer.",
                value=health.oldest,
            )
