"""The JSON shape of one machine, as one pydantic model: the contract of the API, the live WebSocket
and the views the store keeps.

`MachineView.to_dict()` (scraper/state.py) writes this shape by hand, because it runs for every
machine of every list answer and live message and a model round trip per machine costs several
times as much; a contract test (tests/server/test_api_contract.py) holds every answer to this model
with unknown keys forbidden, so the two cannot drift. `MachineView.from_dict()` reads through the
model. The server's answers (server/api_models.py) wrap it, and the web page's types are generated
from the OpenAPI description that carries it (web/src/api.gen.ts, `make web-types`).

Pydantic only, no FastAPI: the scraper runs without the server.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scraper.state import Status

#: "pull" (scraped) or "push" (sends to POST /api/ingest).
Mode = Literal["pull", "push"]

# Answers always carry every key, so the OpenAPI description marks fields with defaults as required
# too (the defaults are for reading views stored by an older version). Unknown keys are ignored when
# reading; the contract test forbids them in answers.
_WIRE = ConfigDict(json_schema_serialization_defaults_required=True, extra="ignore", frozen=True)


class Location(BaseModel):
    """Where the machine is on the map (WGS 84 degrees)."""

    model_config = _WIRE

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PlanPosition(BaseModel):
    """Where the machine is on its site's floor plan, as fractions of the image (0..1 from the left
    and from the top)."""

    model_config = _WIRE

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)


class Threshold(BaseModel):
    """A reading at or above `warn` is a warning, at or above `alarm` an alarm (null: no limit)."""

    model_config = _WIRE

    warn: float | None = None
    alarm: float | None = None


class LastScrape(BaseModel):
    """The machine's last scrape (a push machine: its last batch)."""

    model_config = _WIRE

    time: float = Field(description="Unix seconds when the scrape started (push: when the batch arrived)")
    duration_seconds: float
    error: str | None = Field(default=None, description="why it failed; null when it succeeded")
    samples: int | None = Field(
        default=None,
        ge=0,
        description="samples the exporter sent (0 when the scrape failed; push: samples in the batch); "
        "null when not known",
    )


class SystemSummary(BaseModel):
    """The machine PC's own health, as the last successful scrape saw it (null: not reported)."""

    model_config = _WIRE

    uptime_seconds: float | None = None
    cpu_usage_ratio: float | None = None
    memory_used_ratio: float | None = None
    disk_used_ratio: float | None = Field(default=None, description="the fullest mount")


class Maintenance(BaseModel):
    """The maintenance window the machine is in (docs/alerts.md)."""

    model_config = _WIRE

    window: int = Field(description="the window's id in GET /api/maintenance")
    until: float = Field(description="Unix seconds when this occurrence of the window ends")
    reason: str


class Machine(BaseModel):
    """One machine as the map and the API show it. Times are Unix seconds; never holds secrets.

    Readings are finite numbers (the scraper drops NaN and ±Inf samples from them); a system figure
    that is not a finite number is null.
    """

    model_config = _WIRE

    id: str
    name: str
    url: str = Field(description='the exporter\'s /metrics URL; "" for a push machine')
    site: str | None = None
    location: Location | None = None
    plan_position: PlanPosition | None = Field(
        default=None, description="position on the site's floor plan; null when not placed"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    scrape_interval_seconds: float = Field(default=15.0, description="push machines: the push interval")
    status: Status = Status.UNKNOWN
    reason: str | None = Field(default=None, description="why the machine has its status")
    last_scrape: LastScrape | None = None
    last_success_time: float | None = None
    consecutive_failures: int = Field(default=0, ge=0, description="failed scrapes since the last success")
    readings: dict[str, float] = Field(
        default_factory=dict, description="latest sensor reading per metric name (machine_*)"
    )
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    system: SystemSummary = Field(default_factory=SystemSummary)
    mode: Mode = "pull"
    stale_after_seconds: float | None = Field(
        default=None, description="push machines: seconds without a batch after which it is stale"
    )
    maintenance: Maintenance | None = None
