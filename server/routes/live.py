"""`WS /api/live`: a snapshot on connect, then batched updates and pings (see server/live.py).

Pages of other sites are refused (see server/origins.py): browsers apply no CORS to WebSockets.
Like every read route it needs a viewer: a session cookie (the page), a bearer token (scripts), or
anonymous read switched on; otherwise the handshake is closed with 4401 before anything is sent.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket

from server.auth.authenticate import SESSION_COOKIE, BadToken, authenticate, bearer_from_headers
from server.deps import ContextDep
from server.live import refuse, refuse_unauthenticated
from server.origins import origin_allowed

router = APIRouter(prefix="/api", tags=["live"])


@router.websocket("/live")
async def live(websocket: WebSocket, context: ContextDep) -> None:
    settings = context.settings
    refusals = context.http_metrics.websocket_refused
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    if origin is not None and not origin_allowed(origin, host, settings.allowed_origins):
        refusals.labels("origin").inc()
        await refuse(websocket, origin)
        return
    try:
        principal = await asyncio.to_thread(
            authenticate,
            context.auth,
            bearer=bearer_from_headers(websocket.headers),
            cookie=websocket.cookies.get(SESSION_COOKIE),
            anonymous_read=settings.anonymous_read,
        )
    except BadToken:
        principal = None
    if principal is None:
        refusals.labels("unauthenticated").inc()
        await refuse_unauthenticated(websocket, "authentication required")
        return
    await context.hub.serve(websocket, ping_interval=settings.live_ping_interval)
