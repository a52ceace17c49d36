"""Sites and their floor plans. Included with `require_viewer` (server/app.py); changes need an admin.

- `GET /api/sites` (viewer): `{"sites": [{"name", "machines", "counts": {status: n},
  "plan": {"width", "height", "etag"} or null}]}`
- `GET /api/sites/{site}/plan` (viewer): the image (PNG, JPEG or WebP) with its `ETag` and
  `X-Content-Type-Options: nosniff`; 304 on `If-None-Match`
- `PUT /api/sites/{site}/plan` (admin): an image body (`image/png`, `image/jpeg`, `image/webp`, at
  most 5 MiB) → `{"width", "height", "etag"}`; audited
- `DELETE /api/sites/{site}/plan` (admin): 204; audited

A site is a machine's `site:` in the fleet (or, for an upload, in machines.yaml); others are 404.
Site names are free text, URL-encoded in the path (a `/` in a name is fine).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import Response

from scraper.errors import StoreError
from scraper.state import Status
from server.audit import AuditLog, AuditRow
from server.deps import AdminDep, ContextDep, StateDep, actor_name
from server.floor_plans import CONTENT_TYPES, MAX_PLAN_BYTES, PlanRefused, PlanStore
from server.inventory_edit import InventoryUnusable
from server.inventory_models import PlanModel, SiteList, SiteModel
from server.jsonout import json_response
from server.request_body import read_limited

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/sites", tags=["sites"])

MAX_SITE_CHARS = 200


def _plans(context: ContextDep) -> PlanStore:
    if context.plans is None:
        raise HTTPException(status_code=503, detail="floor plans are not available in this server")
    return context.plans


PlansDep = Annotated[PlanStore, Depends(_plans)]


@router.get("", response_model=SiteList)
async def list_sites(state: StateDep, plans: PlansDep) -> Response:
    machines: Counter[str] = Counter()
    counts: dict[str, Counter[str]] = {}
    for view in state.snapshot():
        if view.site is None:
            continue
        machines[view.site] += 1
        counts.setdefault(view.site, Counter())[Status(view.status).value] += 1

    def describe() -> SiteList:
        sites = []
        for name in sorted(machines, key=str.casefold):
            plan = plans.get(name)
            sites.append(
                SiteModel(
                    name=name,
                    machines=machines[name],
                    counts={s.value: counts[name][s.value] for s in Status},
                    plan=None if plan is None else plan.to_public(),
                )
            )
        return SiteList(sites=sites)

    return json_response((await asyncio.to_thread(describe)).model_dump())


@router.get("/{site:path}/plan", responses={404: {"description": "no such site, or it has no plan"}})
async def get_plan(site: str, request: Request, state: StateDep, plans: PlansDep) -> Response:
    _check_name(site)
    found = await asyncio.to_thread(plans.read, site)
    if found is None:
        raise HTTPException(status_code=404, detail="no floor plan for this site")
    info, data = found
    headers = {
        "ETag": f'"{info.etag}"',
        "X-Content-Type-Options": "nosniff",
        # A viewer's image: kept by the browser, asked again each time (304 while unchanged).
        "Cache-Control": "private, no-cache",
        "Content-Security-Policy": "default-src 'none'",
    }
    match = request.headers.get("if-none-match", "")
    if any(tag.strip().removeprefix("W/").strip('"') == info.etag for tag in match.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=info.content_type, headers=headers)


@router.put(
    "/{site:path}/plan",
    response_model=PlanModel,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in CONTENT_TYPES.values()
            },
        }
    },
    responses={
        404: {"description": "no such site"},
        413: {"description": "larger than 5 MiB"},
        415: {"description": "not PNG, JPEG or WebP (SVG never)"},
        422: {"description": "the image cannot be read, or is too large in pixels"},
    },
)
async def put_plan(
    site: str, request: Request, principal: AdminDep, context: ContextDep, plans: PlansDep
) -> Response:
    _check_name(site)
    audit = _audit(context)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in CONTENT_TYPES.values():
        raise HTTPException(status_code=415, detail="send image/png, image/jpeg or image/webp (not SVG)")
    if not await asyncio.to_thread(_known_site, context, site):
        raise HTTPException(status_code=404, detail="no machine has this site")
    data = await read_limited(request, MAX_PLAN_BYTES)
    try:
        info = await asyncio.to_thread(plans.prepare, site, data)
    except PlanRefused as e:
        raise HTTPException(status_code=e.status, detail=e.message) from None
    detail = f"{info.content_type} {info.width}x{info.height}, {info.size} bytes, etag {info.etag}"
    row = AuditRow("plan.upload", f"site:{site}", detail)

    def store() -> None:
        with audit.recording(actor_name(principal), [row]):
            plans.write(info, data)

    await _audited(store)
    return json_response(info.to_public().model_dump(), headers={"ETag": f'"{info.etag}"'})


@router.delete(
    "/{site:path}/plan", status_code=204, responses={404: {"description": "no plan for this site"}}
)
async def delete_plan(site: str, principal: AdminDep, context: ContextDep, plans: PlansDep) -> Response:
    _check_name(site)
    audit = _audit(context)
    deleted: list[bool] = []

    def remove() -> None:
        info = plans.get(site)
        if info is None:
            return
        row = AuditRow("plan.delete", f"site:{site}", f"{info.content_type} {info.width}x{info.height}")
        with audit.recording(actor_name(principal), [row]):
            deleted.append(plans.delete(site) is not None)

    await _audited(remove)
    if not any(deleted):
        raise HTTPException(status_code=404, detail="no floor plan for this site")
    return Response(status_code=204)


def _check_name(site: str) -> None:
    if not site or len(site) > MAX_SITE_CHARS:
        raise HTTPException(status_code=404, detail="no such site")


def _audit(context: ContextDep) -> AuditLog:
    if context.audit is None:
        raise HTTPException(status_code=503, detail="no database: plan changes are audited and need one")
    return context.audit


def _known_site(context: ContextDep, site: str) -> bool:
    """A site of the live fleet, or of machines.yaml (a machine just added, not yet reloaded)."""
    if any(view.site == site for view in context.state.snapshot()):
        return True
    if context.inventory_editor is not None:
        try:
            snapshot = context.inventory_editor.snapshot()
        except InventoryUnusable:
            return False
        return any(entry.get("site") == site for entry in snapshot.entries)
    return False


async def _audited(work: Callable[[], None]) -> None:
    try:
        await asyncio.to_thread(work)
    except StoreError as e:
        log.error("floor plan change not made: the audit cannot be written: %s", e)
        raise HTTPException(
            status_code=503, detail="the audit database cannot be written now: the change was not made"
        ) from None
