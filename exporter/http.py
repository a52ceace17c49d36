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
import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from exporter import __version__
from exporter.buffer import ReadingBuffer, rows_as_json
from exporter.errors import ExporterError, ListenError
from exporter.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Collector,
    Registry,
    render,
    wants_openmetrics,
)
from exporter.scrapes import ScrapeTracker
from exporter.webauth import Authenticator, Credentials
from exporter.webserver import BoundedServer, Limits, ServerCounters

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

DEFAULT_HISTORY_LIMIT = 1000
MAX_HISTORY_LIMIT = 10000
MAX_HEADERS = 100  # as http.client: a request with more header lines is answered 431
SERVER = f"millwatch-exporter/{__version__} Python/{sys.version.split()[0]}"
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    505: "HTTP Version Not Supported",
}
OPEN_PATHS = frozenset({"/healthz"})
ALLOWED_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class HttpContext:
    """What the endpoints serve: the app's registry, its buffer and its status page; who may read."""

    registry: Registry | Collector
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
        exchange = _Exchange(self, sock, client_address)
        try:
            exchange.serve(head)
        finally:
            exchange.flush()
        return not exchange.close_connection


class _Request:
    """A parsed request head: method, target, version and headers (names lower-cased, first wins)."""

    __slots__ = ("method", "target", "version", "headers")

    def __init__(self, method: str, target: str, version: tuple[int, int], headers: dict[str, str]) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_head(head: bytes) -> _Request | None:
    """The request in `head` (the bytes up to the blank line), None for an empty one.

    The rules are http.server's, which this replaces (its import, with http.client and email, costs
    2.7 MB of RSS): HTTP/1.x only (505 for 2.0 and later), a version of digits, at most
    MAX_HEADERS header lines (431), a two-word line only as an HTTP/0.9 GET (answered as 1.1).
    Raises _BadRequest with the status to answer.
    """
    lines = head.decode("iso-8859-1").split("\n")
    request_line = lines[0].rstrip("\r")
    words = request_line.split()
    if not words:
        return None
    version = (0, 9)
    if len(words) >= 3:
        version = _version(words[-1])
    if not 2 <= len(words) <= 3:
        raise _BadRequest(400, f"Bad request syntax ({request_line[:80]!r})")
    method, target = words[0], words[1]
    if len(words) == 2 and method != "GET":
        raise _BadRequest(400, "Bad HTTP/0.9 request type")
    if target.startswith("//"):
        target = "/" + target.lstrip("/")  # as http.server: never taken for a host name
    headers: dict[str, str] = {}
    count = 0
    name = ""
    for raw in lines[1:]:
        line = raw.rstrip("\r")
        if not line:
            break
        count += 1
        if count > MAX_HEADERS:
            raise _BadRequest(431, "Too many headers")
        if line[0] in " \t":  # an obsolete folded line continues the previous header
            if name and name in headers:
                headers[name] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if colon and name and name not in headers:
            headers[name] = value.strip()
    return _Request(method, target, version, headers)


def _version(word: str) -> tuple[int, int]:
    if not word.startswith("HTTP/"):
        raise _BadRequest(400, f"Bad request version ({word[:40]!r})")
    numbers = word[5:].split(".")
    if len(numbers) != 2 or not all(n.isdigit() and len(n) <= 10 for n in numbers):
        raise _BadRequest(400, f"Bad request version ({word[:40]!r})")
    version = (int(numbers[0]), int(numbers[1]))
    if version >= (2, 0):
        raise _BadRequest(505, f"Invalid HTTP version ({word[5:40]})")
    return version


class _Exchange:
    """One request and its answer; the answer is collected and leaves in one write (no small segments)."""

    def __init__(self, server: ExporterHttpServer, sock: socket.socket, client_address: Any) -> None:
        self.server = server
        self.sock = sock
        self.client_address = client_address
        self.close_connection = True
        self.method = "GET"
        self._out: list[bytes] = []

    def serve(self, head: bytes) -> None:
        try:
            request = _parse_head(head)
        except _BadRequest as exc:
            self._error(exc.status, str(exc))
            return
        if request is None:
            return  # an empty request line: nothing to answer, the connection closes
        self.method = request.method
        headers = request.headers
        connection = headers.get("connection", "").lower()
        self.close_connection = request.version < (1, 1) or connection == "close"
        if headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers:
            self.close_connection = True  # a body we do not read would be taken for the next request
        if request.method not in ALLOWED_METHODS:
            self.close_connection = True
            self._send(
                405,
                "text/plain; charset=utf-8",
                b"method not allowed: only GET and HEAD\n",
                True,
                headers=[("Allow", ", ".join(ALLOWED_METHODS)), ("Connection", "close")],
            )
            return
        self._route(request, with_body=request.method == "GET")

    def flush(self) -> None:
        if self._out:
            self.sock.sendall(b"".join(self._out))
            self._out = []

    def _route(self, request: _Request, *, with_body: bool) -> None:
        url = urlsplit(request.target)
        context = self.server.context
        authorization = request.headers.get("authorization")
        if url.path not in OPEN_PATHS and not context.authenticator.check(authorization):
            self._unauthorized(with_body)
            return
        try:
            if url.path == "/metrics":
                self._metrics(request, with_body)
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
            log.warning("%s %s failed: %s", request.method, url.path, exc)
            self._json(500, {"error": str(exc)}, with_body)
        except Exception:
            log.exception("%s %s failed", request.method, url.path)
            self._send(500, "text/plain; charset=utf-8", b"internal error: see the exporter log", with_body)

    def _unauthorized(self, with_body: bool) -> None:
        # Nothing but the challenge: no hint whether the user, the password or the token was wrong.
        log.debug("%s %s: 401", self.client_address[0], self.method)
        self.server.count_unauthorized()
        challenges = self.server.context.authenticator.challenges()
        self._send(
            401,
            "text/plain; charset=utf-8",
            b"",
            with_body,
            headers=[("WWW-Authenticate", c) for c in challenges],
        )

    def _metrics(self, request: _Request, with_body: bool) -> None:
        openmetrics = wants_openmetrics(request.headers.get("accept", ""))
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        body = render(self.server.context.registry.collect(), openmetrics=openmetrics)
        encoding = None
        if _accepts_gzip(request.headers.get("accept-encoding", "")):
            body = gzip.compress(body, compresslevel=6)
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

    def _error(self, status: int, message: str) -> None:
        """A malformed request: one plain line, and the connection closes."""
        self.close_connection = True
        body = f"{status} {message}\n".encode("utf-8", "replace")
        self._send(status, "text/plain; charset=utf-8", body, True, headers=[("Connection", "close")])

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
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
            f"Server: {SERVER}",
            f"Date: {_http_date(time.time())}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        if encoding:
            lines.append(f"Content-Encoding: {encoding}")
        if vary:
            lines.append(f"Vary: {vary}")
        if not cache:
            lines.append("Cache-Control: no-store")
        for name, value in headers or ():
            lines.append(f"{name}: {value}")
        lines.append("\r\n")
        self._out.append("\r\n".join(lines).encode("latin-1", "replace"))
        if with_body and body:
            self._out.append(body)
        log.debug('%s "%s" %d %d', self.client_address[0], self.method, status, len(body))


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _http_date(now: float) -> str:
    """An RFC 9110 date (as email.utils.formatdate(usegmt=True) writes it, without its import)."""
    t = time.gmtime(now)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


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
