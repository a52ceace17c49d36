"""`GET /metrics`: the server's own metrics, in the format the scraper asks for.

Plain text format 0.0.4 by default; OpenMetrics (or text 1.0.0) when the `Accept` header asks for it,
negotiated by prometheus-client as its own HTTP handler does. A viewer may read them (a Prometheus
with a viewer token), or anyone when MILLWATCH_METRICS_ANONYMOUS is on.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client.exposition import choose_encoder
from starlette.responses import Response

from server.deps import ContextDep, PrincipalDep, require_viewer

router = APIRouter(tags=["operations"])


@router.get("/metrics")
def metrics(request: Request, context: ContextDep, principal: PrincipalDep) -> Response:
    if not context.settings.metrics_anonymous:
        require_viewer(principal)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(context.registry), headers={"Content-Type": content_type})
