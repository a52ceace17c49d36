"""The read API's answers as pydantic models: the OpenAPI description they give is the contract, and
the web page's types are generated from it (`make web-types` → web/src/api.gen.ts).

The routes still send pre-serialised JSON (server/jsonout.py) for speed — a list of 10,000 machines
validated by FastAPI would take most of its 100 ms budget — so these models document the answers;
tests/server/test_api_contract.py validates real answers against them with unknown keys forbidden.
The live WebSocket's messages are not an HTTP answer: `LIVE_MODELS` are added to the description's
components by `server.openapi.describe`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scraper.state import Status
from scraper.view_model import Machine

_ANSWER = ConfigDict(json_schema_serialization_defaults_required=True, frozen=True)


class StatusCounts(BaseModel):
    """How many machines have each status (every status is present, 0 included)."""

    model_config = _ANSWER

    up: int = 0
    warn: int = 0
    alarm: int = 0
    sensor_fault: int = 0
    down: int = 0
    stale: int = 0
    disabled: int = 0
    unknown: int = 0


class FleetCounts(BaseModel):
    """Counts per status of the whole fleet and of the machines the filters matched."""

    model_config = _ANSWER

    fleet: StatusCounts = Field(description="every machine, whatever the filters")
    matched: StatusCounts = Field(description="the machines in this answer (all of them without filters)")
    total: int = Field(description="machines in the fleet")
    matched_total: int = Field(description="machines in this answer")


class MachineList(BaseModel):
    """`GET /api/machines`: the machines matching the filters, sorted by id."""

    model_config = _ANSWER

    machines: list[Machine]
    counts: FleetCounts
    time: float = Field(description="the server's time (Unix seconds)")


class ScrapeHealth(BaseModel):
    """How the machine's scrapes go (a push machine: its batches)."""

    model_config = _ANSWER

    last_scrape_time: float | None = Field(description="Unix seconds of the last scrape; null: never")
    last_duration_seconds: float | None
    samples_scraped: int | None = Field(description="samples of the last scrape (push: of the last batch)")
    last_error: str | None = Field(description="why the last scrape failed; null when it succeeded")
    last_success_time: float | None
    consecutive_failures: int = Field(description="failed scrapes since the last success")
    interval_seconds: float


class MachineDetail(Machine):
    """`GET /api/machines/{id}`: the machine, its scrape health and what has history."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True, frozen=True)

    health: ScrapeHealth
    history_metrics: list[str] = Field(
        description="metrics with history for GET /api/machines/{id}/history: the machine's readings "
        "and the scrape series up, scrape_duration_seconds, scrape_samples_scraped"
    )


class HistoryPoint(BaseModel):
    """One step: the values stored in [time, time + step)."""

    model_config = _ANSWER

    time: float = Field(description="the step's start (Unix seconds)")
    min: float
    avg: float
    max: float
    count: int = Field(description="samples aggregated")


class History(BaseModel):
    """`GET /api/machines/{id}/history`: one metric of one machine, oldest step first; steps without
    data are left out."""

    model_config = _ANSWER

    machine_id: str
    metric: str = Field(description="the stored metric name (a channel name given is resolved to it)")
    start: float
    end: float
    step: float = Field(description="seconds per point, as used (a rollup rounds it down to whole buckets)")
    source: Literal["raw", "minute", "hour"] = Field(description="raw samples or the rollup read")
    points: list[HistoryPoint]


class SnapshotMessage(BaseModel):
    """`WS /api/live`, first message: the whole fleet."""

    model_config = _ANSWER

    type: Literal["snapshot"]
    machines: list[Machine]
    time: float
    ping_interval: float = Field(description="seconds between the server's pings")


class UpdateMessage(BaseModel):
    """`WS /api/live`: the machines that changed and the ids removed since the last message."""

    model_config = _ANSWER

    type: Literal["update"]
    machines: list[Machine]
    removed: list[str]
    time: float


class PingMessage(BaseModel):
    """`WS /api/live`: a sign of life every `ping_interval` seconds."""

    model_config = _ANSWER

    type: Literal["ping"]
    time: float


LIVE_MODELS: tuple[type[BaseModel], ...] = (SnapshotMessage, UpdateMessage, PingMessage)


def count_statuses(statuses: list[Status]) -> dict[str, int]:
    """`StatusCounts` as a dict: every status, 0 included."""
    counts = dict.fromkeys((s.value for s in Status), 0)
    for status in statuses:
        counts[status.value] += 1
    return counts
