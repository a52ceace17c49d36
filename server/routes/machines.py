"""The fleet as the map shows it: `GET /api/machines` (filters, counts), `GET /api/machines/{id}`
(with its scrape health) and a machine's history, `GET /api/machines/{id}/history[.csv]`.

The answers are sent as pre-serialised JSON (server/jsonout.py): FastAPI then neither validates nor
re-encodes them, which a 10,000-machine list could not afford. `response_model` documents each
answer's model (server/api_models.py) in the OpenAPI description, the contract that the page's
types are generated from and that tests/server/test_api_contract.py holds the answers to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import Response

from scraper.errors import StoreError
from scraper.state import MachineView, Status
from scraper.store import HistoryPoint
from server.api_models import History, MachineDetail, MachineList, count_statuses
from server.deps import ContextDep, StateDep, StoreDep
from server.history import (
    HistoryQuery,
    csv_filename,
    history_answer,
    history_csv,
    history_metrics,
    invalid,
    plan,
)
from server.jsonout import dumps, json_response

router = APIRouter(prefix="/api", tags=["machines"])

MAX_FILTER_CHARS = 200
MAX_LABEL_FILTERS = 20
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no machine with this id", "content": {"application/json": {}}}
}


def _matcher(
    status: list[Status] | None, site: str | None, label: list[str] | None, q: str | None
) -> Callable[[MachineView], bool]:
    statuses = set(status or ())
    wanted_site = None if site is None else site.casefold()
    labels: dict[str, set[str]] = {}
    for item in label or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise invalid("label", "expected key=value", item)
        labels.setdefault(key, set()).add(value)
    text = None if q is None or not q.strip() else q.strip().casefold()

    def matches(view: MachineView) -> bool:
        if statuses and view.status not in statuses:
            return False
        if wanted_site is not None and (view.site or "").casefold() != wanted_site:
            return False
        if any(view.labels.get(k) not in values for k, values in labels.items()):
            return False
        if text is not None:
            haystack = (view.name, view.id, view.site or "", *view.labels.values())
            return any(text in s.casefold() for s in haystack)
        return True

    return matches


# Plain `def`: serialising a large fleet runs in the thread pool, not on the event loop.
@router.get("/machines", response_model=MachineList)
def list_machines(
    request: Request,
    state: StateDep,
    context: ContextDep,
    status: Annotated[
        list[Status] | None, Query(max_length=len(Status), description="any of these statuses (repeatable)")
    ] = None,
    site: Annotated[
        str | None, Query(max_length=MAX_FILTER_CHARS, description="this site (case-insensitive)")
    ] = None,
    label: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_LABEL_FILTERS,
            description="`key=value` (repeatable): every key given must have one of its values",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_FILTER_CHARS,
            description="text found in the name, id, site or a label value (case-insensitive)",
        ),
    ] = None,
) -> Response:
    """The machines matching every filter given (all without filters), sorted by id, with counts per
    status of the whole fleet (`counts.fleet`) and of the machines answered (`counts.matched`)."""
    for item in label or ():
        if len(item) > MAX_FILTER_CHARS:
            raise invalid("label", f"at most {MAX_FILTER_CHARS} characters", item[:MAX_FILTER_CHARS])
    matches = _matcher(status, site, label, q)
    version, views = state.versioned_snapshot()

    def prefix() -> bytes:
        matched = [v for v in views if matches(v)]
        counts = {
            "fleet": count_statuses([v.status for v in views]),
            "matched": count_statuses([v.status for v in matched]),
            "total": len(views),
            "matched_total": len(matched),
        }
        texts = context.view_json
        data = b'{"machines":' + texts.array_data(matched) + f',"counts":{dumps(counts)}'.encode()
        texts.keep_only(views)
        return data

    filters = (tuple(sorted(status or ())), site, tuple(sorted(label or ())), q)
    gzip = _accepts_gzip(request.headers.get("accept-encoding", ""))
    body = context.list_cache.body((version, filters), prefix, f',"time":{dumps(time.time())}}}', gzip=gzip)
    headers = {"Vary": "Accept-Encoding", **({"Content-Encoding": "gzip"} if gzip else {})}
    return Response(body, media_type="application/json", headers=headers)


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` allows gzip (`gzip;q=0` refuses it)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _view(state: StateDep, machine_id: str) -> MachineView:
    view = state.get(machine_id)
    if view is None:
        raise HTTPException(status_code=404, detail=f"no machine '{machine_id}'")
    return view


@router.get("/machines/{machine_id}", response_model=MachineDetail, responses=_NOT_FOUND)
def get_machine(machine_id: str, state: StateDep) -> Response:
    """One machine with its scrape health and the metrics it has history for; 404
    `{"detail": "no machine 'x'"}` when the inventory has no such id."""
    view = _view(state, machine_id)
    last = view.last_scrape
    return json_response(
        {
            **view.to_dict(),
            "health": {
                "last_scrape_time": None if last is None else last.time,
                "last_duration_seconds": None if last is None else last.duration_seconds,
                "samples_scraped": None if last is None else last.samples,
                "last_error": None if last is None else last.error,
                "last_success_time": view.last_success_time,
                "consecutive_failures": view.consecutive_failures,
                "interval_seconds": view.scrape_interval_seconds,
            },
            "history_metrics": history_metrics(view.readings),
        }
    )


Metric = Annotated[
    str,
    Query(
        max_length=200,
        description="a metric name, or a channel's short name resolved among the machine's readings "
        "(`temperature` → `machine_temperature_celsius`)",
    ),
]
Start = Annotated[
    str | None,
    Query(max_length=40, description="Unix seconds or ISO 8601 (UTC if no zone); default end − 1 h"),
]
End = Annotated[str | None, Query(max_length=40, description="Unix seconds or ISO 8601; default now")]
Step = Annotated[
    str | None,
    Query(
        max_length=40,
        description="seconds per point (`300` or `5m`); default: at most 1000 points; "
        "more than 10000 points are refused",
    ),
]


async def _history(
    machine_id: str,
    state: StateDep,
    store: StoreDep,
    metric: str,
    start: str | None,
    end: str | None,
    step: str | None,
) -> tuple[HistoryQuery, list[HistoryPoint]]:
    view = _view(state, machine_id)
    if store is None:
        raise HTTPException(status_code=503, detail="no database: history is unavailable")
    query = plan(machine_id, view.readings, metric=metric, start=start, end=end, step=step, now=time.time())
    try:
        points = await asyncio.to_thread(
            store.history, machine_id, query.metric, query.start, query.end, query.step
        )
    except StoreError as e:
        raise HTTPException(status_code=503, detail=f"the database cannot be read: {e}") from e
    return query, points


@router.get("/machines/{machine_id}/history", response_model=History, responses=_NOT_FOUND)
async def machine_history(
    machine_id: str,
    state: StateDep,
    store: StoreDep,
    metric: Metric,
    start: Start = None,
    end: End = None,
    step: Step = None,
) -> Response:
    """Min, average, max and count per step of one metric (unlabelled series) of the machine, oldest
    first, read from the raw samples or a rollup as the step allows (`source`)."""
    query, points = await _history(machine_id, state, store, metric, start, end, step)
    return json_response(history_answer(query, points))


@router.get(
    "/machines/{machine_id}/history.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "header `time,min,avg,max,count`"},
        **_NOT_FOUND,
    },
)
async def machine_history_csv(
    machine_id: str,
    state: StateDep,
    store: StoreDep,
    metric: Metric,
    start: Start = None,
    end: End = None,
    step: Step = None,
) -> Response:
    """The same points as `…/history`, as a CSV file (UTF-8, ISO 8601 UTC times, header row)."""
    query, points = await _history(machine_id, state, store, metric, start, end, step)
    return Response(
        history_csv(points),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{csv_filename(query)}"'},
    )
