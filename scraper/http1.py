"""`Http1Transport`: the scrape's HTTP/1.1 client, on asyncio's protocols and llhttp.

Why not a general client: a scrape is one small GET answered by one small body, thousands of
times a minute. aiohttp's general machinery (request and response objects, streams, tracing
hooks, cookie and proxy handling) was 41 % of the scraper's event-loop thread at 10,000 targets;
here a request costs one cached `bytes` write and llhttp's C parser (`httptools`, the one uvicorn
uses) calling back a handful of Python methods (figures in bench/README.md).

What it does, and nothing more:

- keep-alive: idle connections per (scheme, host, port), the most recently used first, closed
  after `KEEPALIVE_SECONDS` idle; a request on a kept-alive connection that the exporter had
  closed (its own idle timeout) before any answer byte is sent once more on a new connection;
- the request's bytes built once per (URL, headers) and cached (bounded);
- TLS through one `ssl.SSLContext` (by default Python's verifying one: the host's CA certificates,
  `SSL_CERT_FILE`/`SSL_CERT_DIR` honoured), IPv6 literal hosts, host names resolved per new
  connection, each address tried in turn;
- Content-Length, chunked and read-until-close bodies, gzip/deflate inflated as they arrive and
  cut at the limit; `Connection: close` and HTTP/1.0 answers end the connection;
- bounded: a head line (status line, header) at most 8190 bytes, 128 headers, 64 KiB of head;
  bytes nobody asked for, a body not read to its end, an error or a cancellation (the caller's
  timeout) close the connection instead of pooling it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote, urlsplit

import httptools

from scraper.errors import BodyTooLarge, ConnectFailed, ScrapeError, TransferFailed
from scraper.fetch import KEEPALIVE_SECONDS, connect_cause, get_following_redirects, sentence

USER_AGENT = "millwatch-scraper"
MAX_LINE_BYTES = 8190
"""The longest status line or header (name or value) accepted, as aiohttp's parser had it."""
MAX_HEADERS = 128
MAX_HEAD_BYTES = 64 * 1024
"""The whole response head; an exporter's is a few hundred bytes."""

_REQUEST_CACHE_SIZE = 100_000
_ENCODINGS = frozenset({b"", b"identity", b"gzip", b"x-gzip", b"deflate"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_PROTOCOL_ERROR = "the exporter broke the HTTP protocol: "
_CLOSED = "the exporter closed the connection"
_CUT = "peer closed connection without sending complete message body"

Key = tuple[str, str, int]
Address = tuple[int, int, int, tuple[Any, ...]]  # family, type, proto, sockaddr


class _Request:
    """One (URL, headers) as sent: where to connect and the request's bytes."""

    __slots__ = ("key", "host", "port", "tls", "addresses", "data")

    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise ScrapeError(f"unusable URL: {sentence(str(e))}") from e
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ScrapeError(f"unusable URL: scheme {scheme[:20]!r} is not http or https")
        host = parts.hostname or ""
        try:
            host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError as e:
            raise ScrapeError(f"unusable URL: bad host name ({sentence(str(e))})") from e
        if not host:
            raise ScrapeError("unusable URL: no host")
        self.port = port if port is not None else _DEFAULT_PORTS[scheme]
        self.host = host
        self.tls = scheme == "https"
        self.key: Key = (scheme, host, self.port)
        # An IP literal needs no resolver (AI_NUMERICHOST answers at once, scope ids included).
        try:
            infos = socket.getaddrinfo(host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
            self.addresses: list[Address] | None = [(f, t, p, a) for f, t, p, _, a in infos]
        except socket.gaierror:
            self.addresses = None
        authority = f"[{host}]" if ":" in host else host
        if port is not None and port != _DEFAULT_PORTS[scheme]:
            authority = f"{authority}:{port}"
        target = quote(parts.path or "/", safe=_PATH_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_QUERY_SAFE)
        lines = [f"GET {target} HTTP/1.1", f"Host: {authority}"]
        given = {name.lower() for name in headers}
        if "user-agent" not in given:
            lines.append(f"User-Agent: {USER_AGENT}")
        for name, value in headers.items():
            if name.lower() == "host":
                continue
            if any(c in name or c in value for c in "\r\n\0") or not name or ":" in name:
                raise ScrapeError(f"unusable request header {name[:40]!r}")
            lines.append(f"{name}: {value}")
        self.data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class _ClosedBeforeAnswer(Exception):
    """The connection ended before the first byte of an answer (a kept-alive one may be resent)."""


class _Stop(Exception):
    """Raised in a parser callback to stop llhttp; the reason is in `_Connection._error`."""


class _Connection(asyncio.Protocol):
    """One connection to an exporter and the answer being read on it."""

    def __init__(self, owner: Http1Transport, key: Key) -> None:
        self._owner = owner
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reusable = False
        self._parser = httptools.HttpResponseParser(self)
        # As aiohttp read answers: a bare LF ends a line, spaces may follow a chunk size. Header
        # values stay strict (no obsolete line folding, no control characters).
        self._parser.set_dangerous_leniencies(
            lenient_optional_cr_before_lf=True, lenient_spaces_after_chunk_size=True
        )
        self._waiter: asyncio.Future[tuple[int, str, bytes]] | None = None
        self._limit = 0
        self._reset()

    def _reset(self) -> None:
        self._answered = False
        self._head_bytes = 0
        self._headers = 0
        self._header_bytes = 0
        self._status_bytes = 0
        self._headers_done = False
        self._complete = False
        self._keep_alive = False
        self._status = 0
        self._encoding = b""
        self._length: int | None = None
        self._chunked = False
        self._location = b""
        self._inflate: zlib._Decompress | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._error: ScrapeError | None = None

    # --- driven by Http1Transport ---

    def send(self, data: bytes, limit: int, waiter: asyncio.Future[tuple[int, str, bytes]]) -> None:
        self._reset()
        self._limit = limit
        self._waiter = waiter
        self.reusable = False
        assert self.transport is not None
        self.transport.write(data)

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports (under `millwatch serve`) are not
        # subclasses of asyncio.Transport, though they have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for (after a whole answer, or while idle): the framing of this
            # connection can no longer be trusted.
            self._waiter = None
            self.abort()
            return
        self._answered = True
        if not self._headers_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._keep_alive = False  # a 101: the status is the answer, the connection is done
            self._complete = self._headers_done
        except httptools.HttpParserError as e:
            self._keep_alive = False
            if self._error is None and not self._complete:
                self._error = TransferFailed(_PROTOCOL_ERROR + sentence(str(e)))
        if self._error is not None:
            self._settle(error=self._error)
        elif self._complete:
            self._settle()
        elif not self._headers_done:
            if self._head_bytes > MAX_HEAD_BYTES:
                self._settle(error=_head_too_large())
        elif self._status != 200:
            self._settle()  # the status is the answer; the rest of its body is not read

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._owner._lost(self)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not self._answered:
            self._settle(error=_ClosedBeforeAnswer())
        elif not self._headers_done:
            self._settle(error=TransferFailed(_CLOSED))
        elif exc is None and self._length is None and not self._chunked:
            # A body without a length ends with the connection (HTTP/1.0, `Connection: close`).
            try:
                self.on_message_complete()
            except _Stop:
                pass
            self._settle(error=self._error)
        else:
            self._settle(error=TransferFailed(_CUT))

    # --- llhttp's callbacks (httptools calls only those defined) ---

    def on_message_begin(self) -> None:
        if self._complete:
            self._keep_alive = False  # a second answer to one request
            raise _Stop

    def on_status(self, status: bytes) -> None:
        self._status_bytes += len(status)
        if self._status_bytes > MAX_LINE_BYTES:
            self._fail(TransferFailed(_PROTOCOL_ERROR + _too_long(status)))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        if self._headers > MAX_HEADERS:
            self._fail(TransferFailed(_PROTOCOL_ERROR + "too many headers received"))
        for part in (name, value):
            if len(part) > MAX_LINE_BYTES:
                self._fail(TransferFailed(_PROTOCOL_ERROR + _too_long(part)))
        # A head that arrives in one read is only seen here, header by header.
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEAD_BYTES:
            self._fail(_head_too_large())
        lower = name.lower()
        if lower == b"content-length":
            try:
                self._length = int(value)  # llhttp checks it too (digits only, one value)
            except ValueError:
                self._fail(TransferFailed(_PROTOCOL_ERROR + "invalid character in Content-Length"))
        elif lower == b"content-encoding":
            if not self._encoding:
                self._encoding = value.strip().lower()
        elif lower == b"transfer-encoding":
            self._chunked = value.rstrip().lower().endswith(b"chunked")
        elif lower == b"location":
            self._location = value

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = status = self._parser.get_status_code()
        if status != 200:
            return
        encoding = self._encoding
        if encoding not in _ENCODINGS:
            text = encoding.decode("latin-1")
            self._fail(TransferFailed(f"unsupported content encoding {text[:40]!r}"))
        if encoding in (b"gzip", b"x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == b"deflate":
            self._inflate = zlib.decompressobj()
        elif self._length is not None and self._length > self._limit:
            self._fail(BodyTooLarge(self._limit))

    def on_body(self, body: bytes) -> None:
        if self._status != 200:
            return
        limit = self._limit
        inflate = self._inflate
        if inflate is None:
            self._size += len(body)
            if self._size > limit:
                self._fail(BodyTooLarge(limit))
            self._chunks.append(body)
            return
        data = body
        try:
            while data:
                # Never inflate more than one byte past the limit, however much a chunk packs.
                piece = inflate.decompress(data, limit - self._size + 1)
                data = inflate.unconsumed_tail
                self._size += len(piece)
                if self._size > limit:
                    self._fail(BodyTooLarge(limit))
                self._chunks.append(piece)
        except zlib.error:
            self._fail(TransferFailed("cannot decode the compressed body"))

    def on_message_complete(self) -> None:
        status = self._status
        if 100 <= status < 200 and status != 101:
            self._reset()  # an interim answer (100 Continue): the real one follows
            self._answered = True
            return
        if status == 200 and self._inflate is not None:
            try:
                rest = self._inflate.flush(self._limit - self._size + 1)
            except zlib.error:
                self._fail(TransferFailed("cannot decode the compressed body"))
            self._size += len(rest)
            if self._size > self._limit:
                self._fail(BodyTooLarge(self._limit))
            self._chunks.append(rest)
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()

    # --- helpers ---

    def _fail(self, error: ScrapeError) -> None:
        if self._error is None:
            self._error = error
        raise _Stop

    def _settle(self, error: BaseException | None = None) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if error is not None:
            waiter.set_exception(error)
            return
        self.reusable = self._complete and self._keep_alive and not self.closed
        if self._status != 200:
            waiter.set_result((self._status, self._location.decode("latin-1"), b""))
        else:
            chunks = self._chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            waiter.set_result((200, "", body))
        self._chunks = []


def _head_too_large() -> TransferFailed:
    return TransferFailed(f"{_PROTOCOL_ERROR}response head larger than {MAX_HEAD_BYTES} bytes")


def _too_long(part: bytes) -> str:
    # aiohttp's wording, which the map showed until now.
    return sentence(f"Got more than {MAX_LINE_BYTES} bytes when reading: {part[:100] + b'...'!r}.")


class Http1Transport:
    """`Transport` over plain asyncio connections kept alive between scrapes.

    An exporter may close an idle connection at any time (its own idle timeout); a request that
    fails that way before any answer byte came is sent once more, on a new connection. No proxy
    (the environment's proxy settings are meant for people's browsers, not the plant network), no
    cookies. `ssl_context` verifies `https://` exporters; by default Python's default context.
    """

    def __init__(
        self, keepalive_seconds: float = KEEPALIVE_SECONDS, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._keepalive = keepalive_seconds
        self._ssl = ssl_context
        self._requests: dict[tuple[object, ...], _Request] = {}
        self._idle: dict[Key, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.connections_opened = 0
        """New connections so far (the benches and tests read it)."""

    async def get(self, url: str, headers: Mapping[str, str], limit: int, same_host_redirects: bool) -> bytes:
        return await get_following_redirects(self._get_once, url, headers, limit, same_host_redirects)

    async def _get_once(self, url: str, headers: Mapping[str, str], limit: int) -> tuple[int, str, bytes]:
        request = self._request(url, headers)
        loop = asyncio.get_running_loop()
        connection = self._take_idle(request.key, loop.time())
        if connection is not None:
            try:
                return await self._exchange(loop, connection, request, limit)
            except _ClosedBeforeAnswer:
                pass  # closed by the exporter while idle: once more, on a new connection
        connection = await self._connect(loop, request)
        try:
            return await self._exchange(loop, connection, request, limit)
        except _ClosedBeforeAnswer:
            raise TransferFailed(_CLOSED) from None

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, connection: _Connection, request: _Request, limit: int
    ) -> tuple[int, str, bytes]:
        waiter: asyncio.Future[tuple[int, str, bytes]] = loop.create_future()
        connection.send(request.data, limit, waiter)
        try:
            answer = await waiter
        except BaseException:
            connection.abort()  # an error, or cancelled (the caller's timeout): never pooled
            raise
        if connection.reusable:
            connection.idle_since = loop.time()
            idle = self._idle.get(connection.key)
            if idle is None:
                self._idle[connection.key] = [connection]
            else:
                idle.append(connection)
            if self._sweeper is None:
                self._sweeper = loop.call_later(self._keepalive / 2, self._sweep)
        else:
            connection.abort()
        return answer

    def _request(self, url: str, headers: Mapping[str, str]) -> _Request:
        key = (url, *headers.items())
        request = self._requests.get(key)
        if request is None:
            request = _Request(url, headers)
            if len(self._requests) >= _REQUEST_CACHE_SIZE:
                self._requests.clear()  # a rotated secret or many redirect targets: start over
            self._requests[key] = request
        return request

    def _take_idle(self, key: Key, now: float) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive:
                return connection
            connection.abort()
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, request: _Request) -> _Connection:
        addresses = request.addresses
        try:
            if addresses is None:
                infos = await loop.getaddrinfo(request.host, request.port, type=socket.SOCK_STREAM)
                addresses = [(f, t, p, a) for f, t, p, _, a in infos]
            context = None
            if request.tls:
                if self._ssl is None:
                    self._ssl = ssl.create_default_context()
                context = self._ssl
            failure: BaseException | None = None
            for family, kind, proto, address in addresses:
                sock = socket.socket(family, kind, proto)
                try:
                    sock.setblocking(False)
                    await loop.sock_connect(sock, address)
                    _, connection = await loop.create_connection(
                        lambda: _Connection(self, request.key),
                        sock=sock,
                        ssl=context,
                        server_hostname=request.host if context is not None else None,
                    )
                except OSError as e:  # the next address, if any (ssl.SSLError is an OSError)
                    sock.close()
                    failure = e
                    continue
                except BaseException:
                    sock.close()
                    raise
                self.connections_opened += 1
                self._open.add(connection)
                return connection
            raise failure if failure is not None else OSError("no address")
        except OSError as e:
            raise ConnectFailed(connect_cause(e)) from e

    def _lost(self, connection: _Connection) -> None:
        self._open.discard(connection)

    def _sweep(self) -> None:
        """Close the connections idle for `keepalive_seconds` (and forget the closed ones)."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for key in list(self._idle):
            kept = []
            for connection in self._idle[key]:
                if connection.closed or now - connection.idle_since >= self._keepalive:
                    connection.abort()
                else:
                    kept.append(connection)
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]
        if self._idle:
            self._sweeper = asyncio.get_running_loop().call_later(self._keepalive / 2, self._sweep)

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._idle.clear()
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
