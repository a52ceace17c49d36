"""The exporter's HTTP endpoints, served by the bounded server of `exporter.webserver`.

    /metrics   the Prometheus exposition (text 0.0.4 by default, OpenMetrics when `Accept` asks,
               gzip when `Accept-Encoding` allows it)
    /healthz   200 "ok" while the server runs; always open, even when authentication is configured
    /history   buffered readings as JSON, paged with `since` and `limit`
    /          a small status page for a technician at the machine

Handlers only read state that the serial reader and the buffer keep: no serial I/O ever happens
in a request. Only GET and HEAD are served. When credentials are configured (`web:` in
exporter.yaml), every path but /healthz answers 401 with `WWW-Authenticate` and no body unless
the request carries them. `stop()` also closes the connections kept alive by clients, so a
stopped exporter stops answering at once.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from exporter import __version__
from exporter.buffer import ReadingBuffer, rows_as_json
from exporter.errors import ExporterError, ListenError
from exporter.scrapes import ScrapeTracker
from exporter.webauth import Authenticator, Credentials
from exporter.webserver import BoundedServer, Limits, ServerCounters

log = logging.getLogger(__name__)

DEFAULT_HISTORY_LIMIT = 1000
MAX_HISTORY_LIMIT = 10000
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPEN_PATHS = frozenset({"/healthz"})
ALLOWED_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class HttpContext:
    """What the endpoints serve: the app's registry, its buffer and its status page; who may read."""

    registry: CollectorRegistry
    machine_id: str
    buffer: ReadingBuffer
    status_page: Callable[[], str]
    authenticator: Authenticator = field(default_factory=lambda: Authenticator(Credentials(None, {})))
    scrapes: ScrapeTracker = field(default_factory=ScrapeTracker)


class ExporterHttpServer:
    """The exporter's endpoints on a BoundedServer bound at construction (port 0 picks a free port).

    Raises ListenError when the address cannot be bound.
    """

    def __init__(
        self,
        host: str,
        port: int,
        context: HttpContext,
        *,
        limits: Limits | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.context = context
        self._unauthorized = 0
        self._unauthorized_lock = threading.Lock()
        try:
            self._server = BoundedServer(
                host, port, self._handle, limits or Limits(), tls, name="exporter-http"
            )
        except OSError as exc:
            raise ListenError(host, port, exc.strerror or str(exc)) from exc

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def counters(self) -> ServerCounters:
        return self._server.counters

    @property
    def open_connections(self) -> int:
        return self._server.open_connections

    @property
    def unauthorized(self) -> int:
        """Requests answered 401 since the start."""
        return self._unauthorized

    def count_unauthorized(self) -> None:
        with self._unauthorized_lock:
            self._unauthorized += 1

    def start(self) -> None:
        """Serve in a background daemon thread."""
        self._server.start()

    def stop(self) -> None:
        """Stop accepting, close every open connection and the listening socket."""
        self._server.stop()

    def _handle(self, sock: socket.socket, client_address: Any, head: bytes) -> bool:
        # socketserver's request-handler protocol, with our exchange as the "request" and this
        # object as the "server": the handler only uses the attributes set in setup().
        handler = _Handler(_Exchange(sock, head), client_address, self)  # type: ignore[arg-type]
        return not handler.close_connection


class _Exchange:
    """One request head already read by the server, and the socket to answer on."""

    def __init__(self, sock: socket.socket, head: bytes) -> None:
        self.sock = sock
        self.head = head


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHttpServer  # type: ignore[assignment]
    request: _Exchange
    _out: io.BytesIO
    protocol_version = "HTTP/1.1"  # keep-alive: a scraper reuses its connection
    server_version = f"millwatch-exporter/{__version__}"
    # A malformed request gets a real status line (not an HTTP/0.9 bare body) and one plain line.
    default_request_version = "HTTP/1.1"
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def setup(self) -> None:
        self.connection = self.request.sock
        self.rfile = io.BytesIO(self.request.head)
        # The whole answer is collected and leaves in one write: no small-segment delays.
        self._out = io.BytesIO()
        self.wfile = self._out

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        headers = getattr(self, "headers", None)
        if headers is not None and (
            headers.get("Content-Length", "0").strip() not in ("", "0") or "Transfer-Encoding" in headers
        ):
            self.close_connection = True  # a body we do not read would be taken for the next request

    def finish(self) -> None:
        data = self._out.getvalue()
        if data:
            self.request.sock.sendall(data)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.command not in ALLOWED_METHODS:
            self.close_connection = True
            self._send(
                405,
                "text/plain; charset=utf-8",
                b"method not allowed: only GET and HEAD\n",
                True,
                headers=[("Allow", ", ".join(ALLOWED_METHODS)), ("Connection", "close")],
            )
            return False
        return True

    def do_GET(self) -> None:
        self._route(with_body=True)

    def do_HEAD(self) -> None:
        self._route(with_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _route(self, *, with_body: bool) -> None:
        url = urlsplit(self.path)
        context = self.server.context
        if url.path not in OPEN_PATHS and not context.authenticator.check(self.headers.get("Authorization")):
            self._unauthorized(with_body)
            return
        try:
            if url.path == "/metrics":
                self._metrics(with_body)
            elif url.path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok", with_body)
            elif url.path == "/history":
                self._history(url.query, with_body)
            elif url.path in ("/", "/index.html"):
                page = context.status_page().encode("utf-8")
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

    def _unauthorized(self, with_body: bool) -> None:
        # Nothing but the challenge: no hint whether the user, the password or the token was wrong.
        log.debug("%s %s: 401", self.address_string(), self.command)
        self.server.count_unauthorized()
        challenges = self.server.context.authenticator.challenges()
        self._send(
            401,
            "text/plain; charset=utf-8",
            b"",
            with_body,
            headers=[("WWW-Authenticate", c) for c in challenges],
        )

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
        self.server.context.scrapes.record(str(self.client_address[0]))

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
        headers: list[tuple[str, str]] | None = None,
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
        for name, value in headers or ():
            self.send_header(name, value)
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
