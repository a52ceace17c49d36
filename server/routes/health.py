"""`GET /healthz`: is this server able to do its job (answering, database reachable)?"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from scraper.store import Store
from server.deps import ContextDep
from server.jsonout import json_response

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)

PING_TIMEOUT_SECONDS = 5.0


async def _database_reachable(store: Store) -> bool:
    try:
        return await asyncio.wait_for(asyncio.to_thread(store.ping), timeout=PING_TIMEOUT_SECONDS)
    except Exception as e:  # a ping that raises or hangs means the same as one that says no
        log.warning("database ping failed: %s", e)
        return False


@router.get("/healthz")
async def healthz(context: ContextDep) -> Response:
    """200 with the state of each part; 503 when the database is unreachable (reason given)."""
    database = "off"
    if context.store is not None:
        database = "ok" if await _database_reachable(context.store) else "unreachable"
    scraper = context.scraper
    body: dict[str, Any] = {
        "status": "ok",
        "version": context.version,
        "scraper": "running" if context.scraper_running else "off",
        "database": database,
        "inventory_error": scraper.inventory_error if scraper is not None else None,
        "store_read_error": context.follower.last_error if context.follower is not None else None,
        "machines": len(context.state.snapshot()),
        "websocket_clients": context.hub.clients,
    }
    if database == "unreachable":
        body["status"] = "error"
        body["reason"] = "database unreachable"
        return json_response(body, status_code=503)
    return json_response(body)
