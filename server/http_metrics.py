"""The server's request metrics: every HTTP request by route template, method and status, with its
latency; and the logins and API requests refused, by reason.

Route templates (`/api/machines/{machine_id}`), never raw paths, so that the series stay few
whatever clients ask for; a path no route matches is counted as `unmatched`.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Reasons a login is refused (labels of millwatch_logins_refused_total), all present from the start.
LOGIN_REFUSAL_REASONS = ("bad_credentials", "rate_limited_address", "rate_limited_user")


class HttpMetrics:
    """The request histogram and the refusal counters, registered in the server's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Histogram(
            "millwatch_http_request_duration_seconds",
            "HTTP requests answered by the server, by route template, method and status code.",
            ["route", "method", "code"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.logins_refused = Counter(
            "millwatch_logins_refused",
            "Page logins refused, by reason (bad name or password, too many failures).",
            ["reason"],
            registry=registry,
        )
        for reason in LOGIN_REFUSAL_REASONS:
            self.logins_refused.labels(reason)
        self.websocket_refused = Counter(
            "millwatch_websocket_refused",
            "Live WebSocket connections refused, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in ("unauthenticated", "origin", "too_many_clients", "too_many_from_address"):
            self.websocket_refused.labels(reason)


class RequestMetricsMiddleware:
    """Times every HTTP request and counts it under its route template and status code."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets when the application fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope.get("method", "")
            self.metrics.requests.labels(
                _route_template(scope), method if method in _METHODS else "other", str(status)
            ).observe(time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        return "unmatched"
    if isinstance(route, Mount):
        return "web page"  # the static files of the map page, mounted at /
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"
