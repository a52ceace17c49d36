"""Alerts, their acknowledgement, the notification channels and maintenance windows.

Included with `require_viewer` (server/app.py); the routes below that need more say so themselves.

| route | who |
| --- | --- |
| `GET /api/alerts?state=&machine=&site=&severity=&limit=` | viewer |
| `GET /api/alerts/channels` | viewer |
| `GET /api/alerts/audit` | admin |
| `GET /api/alerts/{id}` (with its history) | viewer |
| `POST /api/alerts/{id}/ack` `{"reason": ...}` | viewer or admin, by login or token (not anonymous read) |
| `GET /api/maintenance` | viewer |
| `POST /api/maintenance`, `DELETE /api/maintenance/{id}` | admin |

503 `{"detail": "alerts are off ..."}` when this process runs no alert engine (after the access check).
Who acted is recorded in the alert's history and the audit: the user's login, or `token:NAME`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

from millwatch_common.names import LABEL_NAME, MACHINE_ID
from scraper.alerting.engine import AlertEngine
from scraper.alerting.errors import AlertNotFound, AlertNotOpen, WindowNotFound
from scraper.alerting.maintenance import WEEK_SECONDS
from server.deps import AdminDep, ContextDep, NamedDep, actor_name, require_admin
from server.jsonout import json_response

router = APIRouter(prefix="/api", tags=["alerts"])

MAX_REASON = 500
MAX_WINDOW_SECONDS = 366 * 86400.0


def _acknowledger(principal: NamedDep) -> str:
    """Who acknowledges: a user or token of either role (anonymous read may not)."""
    return actor_name(principal)


def _administrator(principal: AdminDep) -> str:
    """Who adds or deletes a maintenance window: an admin user or token."""
    return actor_name(principal)


AcknowledgerDep = Annotated[str, Depends(_acknowledger)]
AdministratorDep = Annotated[str, Depends(_administrator)]


def _engine(context: ContextDep) -> AlertEngine:
    if context.alerts is None:
        raise HTTPException(
            status_code=503, detail="alerts are off in this server (no database or alerts=false)"
        )
    return context.alerts


EngineDep = Annotated[AlertEngine, Depends(_engine)]


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON, description="why, for the next shift")


class WindowBody(BaseModel):
    """A window either `hours` from now, or from `starts_at` to `ends_at` (Unix seconds)."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["machine", "site", "label"]
    target: str = Field(min_length=1, max_length=200, description="machine id, site name, or name=value")
    hours: float | None = Field(default=None, gt=0, le=MAX_WINDOW_SECONDS / 3600)
    starts_at: float | None = Field(default=None, ge=0)
    ends_at: float | None = Field(default=None, ge=0)
    weekly: bool = False
    reason: str = Field(min_length=1, max_length=MAX_REASON)

    @model_validator(mode="after")
    def _when(self) -> WindowBody:
        if (self.hours is None) == (self.starts_at is None and self.ends_at is None):
            raise ValueError("give either hours, or starts_at and ends_at")
        if self.hours is None and (self.starts_at is None or self.ends_at is None):
            raise ValueError("a scheduled window needs both starts_at and ends_at")
        if self.scope == "machine" and not MACHINE_ID.fullmatch(self.target):
            raise ValueError("target: not a machine id")
        if self.scope == "label":
            name, sep, value = self.target.partition("=")
            if not sep or not value or not LABEL_NAME.fullmatch(name):
                raise ValueError("target: a label is written name=value")
        return self

    def span(self, now: float) -> tuple[float, float]:
        if self.hours is not None:
            return now, now + self.hours * 3600
        assert self.starts_at is not None and self.ends_at is not None
        return self.starts_at, self.ends_at


@router.get("/alerts")
async def list_alerts(
    engine: EngineDep,
    state: Annotated[Literal["firing", "acknowledged", "resolved", "open"] | None, Query()] = None,
    machine: Annotated[str | None, Query(max_length=200)] = None,
    site: Annotated[str | None, Query(max_length=200)] = None,
    severity: Annotated[Literal["critical", "warning", "info"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """Alerts newest first: `{"alerts": [...], "time": T}`; `state=open` is firing or acknowledged."""
    states = ["firing", "acknowledged"] if state == "open" else [state] if state else [None]
    found: list[dict[str, Any]] = []
    for one in states:
        records = await _thread(
            engine.store.list_alerts, state=one, machine_id=machine, site=site, severity=severity, limit=limit
        )
        found.extend(r.to_dict() for r in records)
    found.sort(key=lambda a: -a["id"])
    return json_response({"alerts": found[:limit], "time": time.time()})


@router.get("/alerts/channels")
def list_channels(engine: EngineDep, context: ContextDep) -> Response:
    """Each notification channel: type, messages sent, failures, last error (never its secrets); and
    whether notifications.yaml as it is on disk is in force (its problems are in the server's log)."""
    stats = engine.notifier.stats
    watcher = context.notifications_watcher
    config = (
        {
            "file": watcher.path.name,
            "last_reload_successful": watcher.last_reload_successful,
            "last_reload_time": watcher.last_reload_time,
            "reload_failures_total": watcher.reload_failures_total,
        }
        if watcher is not None
        else None
    )
    return json_response(
        {"channels": [stats[name].to_dict() for name in sorted(stats)], "config": config, "time": time.time()}
    )


@router.get("/alerts/audit", dependencies=[Depends(require_admin)])
async def audit(engine: EngineDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> Response:
    """Who acknowledged what and who changed maintenance windows, newest first."""
    return json_response({"audit": await _thread(engine.store.audit, limit=limit)})


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: int, engine: EngineDep) -> Response:
    """One alert and its history: `{"alert": {...}, "history": [{"time", "kind", "actor", "detail"}]}`."""
    try:
        record, history = await _thread(engine.store.get_alert, alert_id)
    except AlertNotFound as e:
        raise HTTPException(status_code=404, detail=str(e)) from None
    return json_response({"alert": record.to_dict(), "history": [h.to_dict() for h in history]})


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(alert_id: int, who: AcknowledgerDep, body: AckBody, engine: EngineDep) -> Response:
    """Acknowledge a firing alert with a reason: no more repeats; audited. 404 unknown, 409 not firing."""
    try:
        record = await engine.acknowledge(alert_id, actor=who, reason=body.reason.strip() or body.reason)
    except AlertNotFound as e:
        raise HTTPException(status_code=404, detail=str(e)) from None
    except AlertNotOpen as e:
        raise HTTPException(status_code=409, detail=str(e)) from None
    return json_response(record.to_dict())


@router.get("/maintenance")
def list_windows(engine: EngineDep) -> Response:
    """Every window not finished yet (weekly ones always), with whether it is active now."""
    now = time.time()
    windows = [w.to_dict(now) for w in engine.windows() if not w.finished(now)]
    return json_response({"windows": windows, "time": now})


@router.post("/maintenance", status_code=201)
async def add_window(who: AdministratorDep, body: WindowBody, engine: EngineDep) -> Response:
    """Add a window (`hours` from now, or `starts_at`/`ends_at`, optionally `weekly`); audited."""
    now = time.time()
    starts, ends = body.span(now)
    if ends <= starts:
        raise HTTPException(status_code=422, detail="ends_at must be after starts_at")
    if ends - starts > MAX_WINDOW_SECONDS:
        raise HTTPException(status_code=422, detail="a window lasts at most 366 days")
    if body.weekly and ends - starts >= WEEK_SECONDS:
        raise HTTPException(status_code=422, detail="a weekly window must last less than a week")
    window = await _thread(
        engine.store.add_window,
        scope=body.scope,
        target=body.target,
        starts_at=starts,
        ends_at=ends,
        weekly=body.weekly,
        reason=body.reason,
        actor=who,
        now=now,
    )
    await engine.reload_windows()
    return json_response(window.to_dict(time.time()), status_code=201)


@router.delete("/maintenance/{window_id}", status_code=204)
async def delete_window(window_id: int, who: AdministratorDep, engine: EngineDep) -> Response:
    """End and delete a window; audited. 404 when there is none."""
    try:
        await _thread(engine.store.delete_window, window_id, actor=who, now=time.time())
    except WindowNotFound as e:
        raise HTTPException(status_code=404, detail=str(e)) from None
    await engine.reload_windows()
    return Response(status_code=204)


async def _thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    # The store is synchronous: a slow database never holds the event loop.
    return await asyncio.to_thread(function, *args, **kwargs)
