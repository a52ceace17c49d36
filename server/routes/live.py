"""`WS /api/live`: a snapshot on connect, then batched updates and pings (see server/live.py).

Pages of other sites are refused (see server/origins.py): browsers apply no CORS to WebSockets.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from server.deps import HubDep, SettingsDep
from server.live import refuse
from server.origins import origin_allowed

router = APIRouter(prefix="/api", tags=["live"])


@router.websocket("/live")
async def live(websocket: WebSocket, hub: HubDep, settings: SettingsDep) -> None:
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    if origin is not None and not origin_allowed(origin, host, settings.allowed_origins):
        await refuse(websocket, origin)
        return
    await hub.serve(websocket, ping_interval=settings.live_ping_interval)
