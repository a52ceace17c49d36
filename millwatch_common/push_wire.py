"""The push wire format: what an exporter in push mode sends to `POST /api/ingest`, and its limits.

The server's pydantic model (`server.ingest_model.IngestBatch`) is the contract and checks every
field; this module is the small description both sides read, so that the exporter (which has no
pydantic) builds exactly that shape and stays inside the same limits. A test validates what
`batch_body` builds against the server's model.

One batch, as JSON (version 1):

    {"version": 1, "machine_id": "press_07", "batch_id": "41-57", "sequence": 57,
     "sent_at": 1764480000.5,
     "readings": [{"time": 1764479999.0, "values": {"machine_temperature_celsius": 72.5}}],
     "serial": {"up": true, "last_reading_time": 1764479999.0},
     "system": {"uptime_seconds": 86400.0, "cpu_usage_ratio": 0.12,
                "memory_used_ratio": 0.4, "disk_used_ratio": 0.7}}

`readings` holds the machine's own timestamps (sensor time, Unix seconds); `sequence` is the
exporter's buffer position of the batch's last reading, echoed by the server so the exporter knows
what was acknowledged. Storing is idempotent on (machine, metric, time): a batch sent twice is
stored once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The version this module describes; the server refuses others.
WIRE_VERSION = 1
#: Where the server takes batches.
INGEST_PATH = "/api/ingest"
#: Every machine key starts with this, so a leaked one is recognised (and found by secret scanners).
KEY_PREFIX = "mwk_"
#: The largest request body the server reads, in bytes (checked while reading, before parsing).
MAX_BODY_BYTES = 1024 * 1024
#: The most readings (timestamps) in one batch.
MAX_READINGS = 1000
#: The most metric values in one reading.
MAX_VALUES_PER_READING = 64
#: The longest batch id.
MAX_BATCH_ID_CHARS = 128
#: How far a reading's time may be ahead of the server's clock, in seconds.
MAX_CLOCK_AHEAD_SECONDS = 300.0
#: The machine PC's health figures of `system` (each a number or null).
SYSTEM_FIELDS = ("uptime_seconds", "cpu_usage_ratio", "memory_used_ratio", "disk_used_ratio")
#: The top-level fields of a batch, in the order `batch_body` writes them.
BATCH_FIELDS = ("version", "machine_id", "batch_id", "sequence", "sent_at", "readings", "serial", "system")


def batch_body(
    *,
    machine_id: str,
    batch_id: str,
    sequence: int,
    sent_at: float,
    readings: Sequence[tuple[float, Mapping[str, float]]],
    serial_up: bool,
    last_reading_time: float | None,
    system: Mapping[str, float | None],
) -> dict[str, Any]:
    """One batch as the JSON object the server expects (see the module docstring).

    `readings` are (time, {metric: value}) pairs, oldest first; `system` may leave figures out
    (they are sent as null). Raises ValueError when the batch breaks a limit of this module.
    """
    if len(readings) > MAX_READINGS:
        raise ValueError(f"a batch holds at most {MAX_READINGS} readings, got {len(readings)}")
    if not batch_id or len(batch_id) > MAX_BATCH_ID_CHARS:
        raise ValueError(f"a batch id has 1 to {MAX_BATCH_ID_CHARS} characters")
    for _, values in readings:
        if len(values) > MAX_VALUES_PER_READING:
            raise ValueError(f"a reading holds at most {MAX_VALUES_PER_READING} values, got {len(values)}")
    return {
        "version": WIRE_VERSION,
        "machine_id": machine_id,
        "batch_id": batch_id,
        "sequence": sequence,
        "sent_at": sent_at,
        "readings": [{"time": at, "values": dict(values)} for at, values in readings],
        "serial": {"up": serial_up, "last_reading_time": last_reading_time},
        "system": {name: system.get(name) for name in SYSTEM_FIELDS},
    }
