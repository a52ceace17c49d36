"""`POST /api/ingest`: a push machine's batch, authenticated by its own key (see server/ingest.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from server.deps import ContextDep
from server.ingest import IngestRefused
from server.ingest_model import IngestAnswer
from server.jsonout import json_response

router = APIRouter(prefix="/api", tags=["push"])
# Declared for the OpenAPI description; the key itself is checked by the ingest service.
machine_key = HTTPBearer(
    scheme_name="machineKey",
    description="A machine key (mwk_...) from `millwatch key create`",
    auto_error=False,
)


@router.post(
    "/ingest",
    response_model=IngestAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            # The body is read by hand (bounded, server/ingest.py); its schema is added to the
            # description's components by server/openapi.py.
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestBatch"}}},
        }
    },
    responses={
        401: {"description": "no key, or an unknown or revoked one"},
        403: {"description": "the key's machine is not `mode: push`, is disabled, or the body names another"},
        413: {"description": "the body is larger than the limit"},
        422: {"description": "the body is not a valid batch"},
        503: {"description": "the database cannot be reached; send again later"},
    },
)
async def ingest(
    request: Request,
    context: ContextDep,
    _key: Annotated[HTTPAuthorizationCredentials | None, Depends(machine_key)],
) -> Response:
    """Store one batch of the key's machine; answers what was stored, `sequence` acknowledging it."""
    service = context.ingest
    if service is None:
        return json_response({"detail": "push mode needs a database"}, status_code=503)
    try:
        answer = await service.ingest(
            request.headers.get("authorization"), request.headers.get("content-length"), request.stream()
        )
    except IngestRefused as e:
        headers = {"WWW-Authenticate": 'Bearer realm="millwatch ingest"'} if e.status == 401 else None
        return json_response({"detail": e.detail, "reason": e.reason}, status_code=e.status, headers=headers)
    return json_response(answer.model_dump())
