"""The exporter's HTTP endpoints on the standard library's ThreadingHTTPServer.

    /metrics   the Prometheus exposition (text 0.0.4 by default, OpenMetrics when `Accept` asks,
               gzip when `Accept-Encoding` allows it)
    /healthz   200 "ok" while the server runs
    /history   buffered readings as JSON, paged with `since` and `limit`
    /          a small status page for a technician at the machine

Handlers only read state that the serial reader and the buffer keep: no serial I/O ever happens
in a request. Each connection runs in its own daemon thread; `stop()` also closes the
connections kept alive by clients, so a stopped exporter stops answering at once.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from exporter import __version__
from exporter.buffer import ReadingBuffer, rows_as_json
from exporter.errors import ExporterError, ListenError

log = logging.getLogger(__name__)

DEFAULT_HISTORY_LIMIT = 1000
MAX_HISTORY_LIMIT = 10000
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class HttpContext:
    """What the endpoints serve: the app's registry, its buffer and its status page."""

    registry: CollectorRegistry
    machine_id: str
    buffer: ReadingBuffer
    status_page: Callable[[], str]


class ExporterHttpServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer bound at construction (port 0 picks a free port; see `port`)."""

    daemon_threads = True
    # SO_REUSEADDR lets a restarted exporter bind while old connections linger in TIME_WAIT; on
    # Windows it would instead let two exporters share one port, so it stays off there.
    allow_reuse_address = sys.platform != "win32"

    def __init__(self, host: str, port: int, context: HttpContext) -> None:
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise ListenError(host, port, exc.strerror or str(exc)) from exc

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a background daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"exporter-http :{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every open connection and the listening socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(1.0)
            self._thread = None
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client already went away
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback to stderr; a dropped client is not worth one.
        log.debug("connection from %s failed", client_address, exc_info=True)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHttpServer
    protocol_version = "HTTP/1.1"  # keep-alive: a scraper reuses its connection
    server_version = f"millwatch-exporter/{__version__}"
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        self._route(with_body=True)

    def do_HEAD(self) -> None:
        self._route(with_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _route(self, *, with_body: bool) -> None:
        url = urlsplit(self.path)
        try:
            if url.path == "/metrics":
                self._metrics(with_body)
            elif url.path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok", with_body)
            elif url.path == "/history":
                self._history(url.query, with_body)
            elif url.path in ("/", "/index.html"):
                page = self.server.context.status_page().encode("utf-8")
                self._send(200, "text/html; charset=utf-8", page, with_body, cache=False)
            else:
                self._send(
                    404,
                    "text/plain; charset=utf-8",
                    b"not found: try /metrics, /history, /healthz or /",
                    with_body,
                )
        except (ConnectionError, socket.timeout):
            self.close_connection = True  # the client went away mid-answer; nothing more to say
        except ExporterError as exc:
            log.warning("%s %s failed: %s", self.command, url.path, exc)
            self._json(500, {"error": str(exc)}, with_body)
        except Exception:
            log.exception("%s %s failed", self.command, url.path)
            self._send(500, "text/plain; charset=utf-8", b"internal error: see the exporter log", with_body)

    def _metrics(self, with_body: bool) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        if content_type.startswith("text/plain") and "escaping" not in content_type:
            content_type = TEXT_CONTENT_TYPE  # one exact spelling whatever the library version
        body = encoder(self.server.context.registry)
        encoding = None
        if _accepts_gzip(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            encoding = "gzip"
        self._send(200, content_type, body, with_body, encoding=encoding, vary="Accept, Accept-Encoding")

    def _history(self, query: str, with_body: bool) -> None:
        params = parse_qs(query, keep_blank_values=True)
        try:
            since = _since(params.get("since", ["0"])[-1])
            limit = _limit(params.get("limit", [str(DEFAULT_HISTORY_LIMIT)])[-1])
        except ValueError as exc:
            self._json(400, {"error": str(exc)}, with_body)
            return
        context = self.server.context
        rows = context.buffer.since(since, limit)
        next_since: float | None = None
        if rows and context.buffer.has_after(rows[-1][0]):
            next_since = rows[-1][0]
        self._json(
            200,
            {"machine_id": context.machine_id, "readings": rows_as_json(rows), "next_since": next_since},
            with_body,
        )

    def _json(self, status: int, payload: dict[str, Any], with_body: bool) -> None:
        body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode("utf-8")
        self._send(status, "application/json", body, with_body, cache=False)

    def _send(
        self,
        status: int,
        content_type: str,
        body: bytes,
        with_body: bool,
        *,
        encoding: str | None = None,
        vary: str | None = None,
        cache: bool = True,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if vary:
            self.send_header("Vary", vary)
        if not cache:
            self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(body)


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0].lower() != "gzip":
            continue
        for parameter in fields[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def _since(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"since: expected a Unix time in seconds, got {raw[:40]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"since: expected a Unix time in seconds, got {raw[:40]!r}")
    return value


def _limit(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"limit: expected an integer 1-{MAX_HISTORY_LIMIT}, got {raw[:40]!r}") from None
    if not 1 <= value <= MAX_HISTORY_LIMIT:
        raise ValueError(f"limit: expected an integer 1-{MAX_HISTORY_LIMIT}, got {value}")
    return value
