"""A request's body read with a size bound, for the routes that take a document (inventory entries
and imports, floor plans): the same bounded read as push mode's `POST /api/ingest`."""

from __future__ import annotations

from fastapi import HTTPException, Request

from server.ingest import IngestRefused, read_bounded


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body; HTTPException 413 as soon as it is known to exceed `limit` bytes (400 for a
    bad Content-Length)."""
    try:
        return await read_bounded(request.stream(), request.headers.get("content-length"), limit)
    except IngestRefused as e:
        raise HTTPException(status_code=e.status, detail=e.detail) from None
