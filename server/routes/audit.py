"""`GET /api/audit?limit=&before=` (admin): inventory edits, floor plans and alert actions, newest
first. `before` (Unix seconds) pages back: pass the answer's `next_before`."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from starlette.responses import Response

from server.deps import ContextDep
from server.inventory_models import AuditList
from server.jsonout import json_response

router = APIRouter(prefix="/api", tags=["audit"])


@router.get("/audit", response_model=AuditList)
async def audit(
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[float | None, Query(ge=0, le=1e11)] = None,
) -> Response:
    if context.audit is None:
        raise HTTPException(status_code=503, detail="no database: there is no audit")
    entries = await asyncio.to_thread(context.audit.entries, limit=limit, before=before)
    next_before = entries[-1]["time"] if len(entries) == limit else None
    body = AuditList.model_validate({"audit": entries, "next_before": next_before})
    return json_response(body.model_dump())
