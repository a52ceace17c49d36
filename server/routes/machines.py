"""`GET /api/machines` and `GET /api/machines/{id}`: the fleet as the map shows it."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException
from starlette.responses import Response

from server.deps import StateDep
from server.jsonout import json_response

router = APIRouter(prefix="/api", tags=["machines"])


# Plain `def`: serialising a large fleet runs in the thread pool, not on the event loop.
@router.get("/machines")
def list_machines(state: StateDep) -> Response:
    """Every machine (sorted by id) and the server's time: `{"machines": [...], "time": T}`."""
    return json_response({"machines": [v.to_dict() for v in state.snapshot()], "time": time.time()})


@router.get("/machines/{machine_id}")
def get_machine(machine_id: str, state: StateDep) -> Response:
    """One machine; 404 `{"detail": "no machine 'x'"}` when the inventory has no such id."""
    view = state.get(machine_id)
    if view is None:
        raise HTTPException(status_code=404, detail=f"no machine '{machine_id}'")
    return json_response(view.to_dict())
