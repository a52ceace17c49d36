"""Helpers of the push-mode tests: a database per backend, an inventory with push machines, batches."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from support import database_url

from millwatch_common.push_wire import batch_body
from scraper.schema import sample_time_sql

__all__ = ["INVENTORY", "body", "database_url", "stored_samples"]

INVENTORY = """\
defaults:
  push_interval: 1s
  push_stale_intervals: 2
  thresholds:
    machine_temperature_celsius: {warn: 80, alarm: 95}
machines:
  - id: press
    mode: push
    location: {lat: 41.15, lon: -8.63}
  - id: lathe
    mode: push
  - id: puller
    url: http://127.0.0.1:9/metrics
  - id: parked
    mode: push
    enabled: false
"""


def body(
    machine_id: str = "press",
    readings: list[tuple[float, dict[str, float]]] | None = None,
    *,
    sequence: int = 3,
    batch_id: str = "1-3",
    serial_up: bool = True,
) -> dict[str, Any]:
    """A valid batch, built by the exporter's own builder (default readings: three, a second apart)."""
    now = time.time()
    if readings is None:
        readings = [
            (now - 3 + i, {"machine_temperature_celsius": 70.0 + i, "machine_pressure_bar": 1.0})
            for i in range(3)
        ]
    return batch_body(
        machine_id=machine_id,
        batch_id=batch_id,
        sequence=sequence,
        sent_at=now,
        readings=readings,
        serial_up=serial_up,
        last_reading_time=readings[-1][0] if readings else None,
        system={
            "uptime_seconds": 3600.0,
            "cpu_usage_ratio": 0.25,
            "memory_used_ratio": 0.5,
            "disk_used_ratio": 0.75,
        },
    )


def stored_samples(url: str, machine_id: str) -> list[tuple[str, float, float]]:
    """(metric, time, value) of every stored sample of `machine_id`, sorted."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    f"SELECT s.metric, {sample_time_sql('p')} AS t, p.value FROM samples p "
                    "JOIN series s ON s.id = p.series_id WHERE s.machine_id = :m ORDER BY s.metric, t"
                ),
                {"m": machine_id},
            ).all()
    finally:
        engine.dispose()
    return [(str(m), int(t) / 1000, float(v)) for m, t, v in rows]
