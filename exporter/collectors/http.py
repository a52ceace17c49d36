"""The HTTP server's own health: connections, and what its bounds and authentication turned away.

A client that misbehaves (silent, trickling, oversized, wrong credentials) is contained by the
server and counted here, so an SRE can see it on a graph instead of guessing from the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from exporter.exposition import CounterMetricFamily, GaugeMetricFamily, Metric
from exporter.webserver import ServerCounters


class HttpServerView(Protocol):
    @property
    def counters(self) -> ServerCounters: ...

    @property
    def open_connections(self) -> int: ...

    @property
    def unauthorized(self) -> int: ...


REASONS = ("busy", "evicted", "head_timeout", "head_too_large", "tls_handshake", "unauthorized")


class HttpCollector:
    """Reads the running server's counters at scrape time (nothing while the server is not running)."""

    def __init__(self, server: Callable[[], HttpServerView | None]) -> None:
        self._server = server

    def collect(self) -> Iterable[Metric]:
        server = self._server()
        if server is None:
            return
        counters = server.counters
        accepted = CounterMetricFamily(
            "millwatch_http_connections", "TCP connections the exporter's HTTP server accepted."
        )
        accepted.add_metric([], counters.accepted)
        yield accepted
        open_now = GaugeMetricFamily(
            "millwatch_http_open_connections", "Connections open now (at most web.max_connections)."
        )
        open_now.add_metric([], server.open_connections)
        yield open_now
        rejected = CounterMetricFamily(
            "millwatch_http_rejected",
            "Connections or requests turned away: busy (503, every connection busy), evicted (a waiting "
            "connection closed to make room), head_timeout (request head not complete in "
            "web.header_read_timeout), head_too_large (431), tls_handshake (failed), unauthorized (401).",
            labels=["reason"],
        )
        values = {
            "busy": counters.rejected_busy,
            "evicted": counters.evicted_waiting,
            "head_timeout": counters.head_timeouts,
            "head_too_large": counters.heads_too_large,
            "tls_handshake": counters.handshake_failures,
            "unauthorized": server.unauthorized,
        }
        for reason in REASONS:
            rejected.add_metric([reason], values[reason])
        yield rejected
