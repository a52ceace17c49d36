"""`GET /api/config`: what the web page needs to know about this server."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from server.deps import ContextDep
from server.jsonout import json_response

router = APIRouter(prefix="/api", tags=["config"])


@router.get("/config")
def config(context: ContextDep) -> Response:
    """`{"tile_url": str | null, "tile_attribution": str | null, "version": str}`."""
    settings = context.settings
    return json_response(
        {
            "tile_url": settings.tile_url,
            "tile_attribution": settings.tile_attribution,
            "version": context.version,
        }
    )
