"""The JSON shapes of `/api/inventory`, `/api/sites` and `/api/audit` (one pydantic model each, so the
OpenAPI description at /api/openapi.json is the contract the page is built against)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# A machine's entry is its mapping as written in machines.yaml (docs/inventory.md), secrets masked:
# free-form on purpose, the inventory's own rules (`millwatch check`) say what it may hold.
Entry = dict[str, Any]


class InventoryMachines(BaseModel):
    """`GET /api/inventory/machines`: every entry in file order; `etag` is also the ETag header."""

    machines: list[Entry]
    etag: str
    problems: list[FieldProblemModel] = Field(
        default_factory=list, description="what is wrong with the file on disk now (empty when valid)"
    )


class MachineWritten(BaseModel):
    """The answer of a change: the machine's entry as now written, and the file's new ETag."""

    machine: Entry
    etag: str


class FieldProblemModel(BaseModel):
    """Why a change was refused, placed by `loc`: the path within the machine's entry
    (`["location", "lat"]`), or `["inventory", ...]` for a place elsewhere in the file."""

    loc: list[str | int]
    msg: str
    machine: str | None = None
    row: int | None = Field(default=None, description="bulk import: the row (CSV line, YAML item from 1)")
    line: int | None = None


class ValidationRefusal(BaseModel):
    """422: every problem of the change."""

    detail: list[FieldProblemModel]


class Conflict(BaseModel):
    """412: the file changed since the ETag sent; `current` is the machine's entry now (null: none)."""

    detail: str
    etag: str
    current: Entry | None


class ImportResult(BaseModel):
    created: list[str]
    updated: list[str]
    etag: str


class PlanModel(BaseModel):
    width: int
    height: int
    etag: str


class SiteModel(BaseModel):
    name: str
    machines: int
    counts: dict[str, int] = Field(description="machines per status (up, warn, alarm, ...)")
    plan: PlanModel | None


class SiteList(BaseModel):
    sites: list[SiteModel]


class AuditEntry(BaseModel):
    id: str = Field(description="`inventory:N` or `alerts:N`")
    source: str = Field(description="inventory (machines, floor plans) or alerts")
    time: float
    actor: str = Field(description="the user's login, or token:NAME")
    action: str
    target: str
    machine: str | None
    detail: str | None = Field(description="inventory: a unified diff of the entry, secrets masked")


class AuditList(BaseModel):
    audit: list[AuditEntry]
    next_before: float | None = Field(description="pass as `before` for the next (older) page")


InventoryMachines.model_rebuild()
