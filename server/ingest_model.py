"""The JSON body of `POST /api/ingest`: one pydantic model, the contract of push mode.

Field names and limits come from `millwatch_common.push_wire`, which the exporter (without
pydantic) reads to build the same shape; a test validates the exporter's bodies against this model.
Everything a machine sends is bounded here: batch length, values per reading, names, numbers.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from millwatch_common import push_wire
from millwatch_common.names import CHANNEL_METRIC, MACHINE_ID, MACHINE_INFO_METRIC

# Readings before 2000-01-01 are a machine PC whose clock was never set.
EARLIEST_READING_TIME = 946_684_800.0


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _reading_metric(name: str) -> str:
    if not CHANNEL_METRIC.fullmatch(name) or name == MACHINE_INFO_METRIC or len(name) > 200:
        raise ValueError("must be a reading metric name such as machine_temperature_celsius")
    return name


Finite = Annotated[float, AfterValidator(_finite)]
Ratio = Annotated[float, Field(ge=0, le=1)]
MetricName = Annotated[str, AfterValidator(_reading_metric)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WireReading(_Wire):
    """One timestamped reading: the machine's own time and one value per metric."""

    time: Annotated[Finite, Field(ge=EARLIEST_READING_TIME)]
    values: Annotated[dict[MetricName, Finite], Field(max_length=push_wire.MAX_VALUES_PER_READING)]


class WireSerial(_Wire):
    """The serial sensor as the exporter sees it when sending: false `up` is a sensor fault."""

    up: bool
    last_reading_time: Finite | None = None


class WireSystem(_Wire):
    """The machine PC's health (the map's system summary); each figure may be null."""

    uptime_seconds: Annotated[Finite, Field(ge=0)] | None = None
    cpu_usage_ratio: Ratio | None = None
    memory_used_ratio: Ratio | None = None
    disk_used_ratio: Ratio | None = None


class IngestBatch(_Wire):
    """One batch from a push machine (see millwatch_common/push_wire.py for an example)."""

    version: Literal[1]
    machine_id: Annotated[str, Field(max_length=200, pattern=MACHINE_ID.pattern)]
    batch_id: Annotated[
        str, Field(min_length=1, max_length=push_wire.MAX_BATCH_ID_CHARS, pattern=r"^[\x21-\x7e]+$")
    ]
    sequence: Annotated[int, Field(ge=0, le=2**63 - 1)]
    sent_at: Finite
    readings: Annotated[list[WireReading], Field(max_length=push_wire.MAX_READINGS)]
    serial: WireSerial
    system: WireSystem


class IngestAnswer(BaseModel):
    """What the server answers to an accepted batch; `sequence` is the acknowledgement."""

    machine_id: str
    batch_id: str
    sequence: int
    readings: int
    samples: int
    stored: int
    duplicates: int
