"""`WS /api/live`: a snapshot on connect, then batched updates (see server/live.py)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from server.deps import HubDep

router = APIRouter(prefix="/api", tags=["live"])


@router.websocket("/live")
async def live(websocket: WebSocket, hub: HubDep) -> None:
    await hub.serve(websocket)
