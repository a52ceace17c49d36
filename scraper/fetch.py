"""One scrape of one machine over HTTP: the body text of its `/metrics`, or a `ScrapeError`.

The HTTP client sits behind one small interface, `Transport` (one GET with a byte limit, and
`aclose`); `AiohttpTransport` is the one in use (measured against httpx in bench/http_clients.py:
see docs/architecture.md). Every low-level failure (aiohttp, OS, TLS, decoding) is mapped here,
once, into the error tree of `scraper.errors`, so that the reason shown on the map is short and
says what really happened.

Bounded whatever a target sends: the body is counted after decompression while it streams in and
cut at the limit (a gzip bomb inflates at most `limit` bytes), the whole request is bounded by the
machine's timeout, redirects are refused unless the machine allows same-host ones, and headers are
bounded by aiohttp's parser (8 KiB a line).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
import zlib
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp
from yarl import URL

from scraper.credentials import auth_headers
from scraper.errors import (
    BadExposition,
    BodyTooLarge,
    ConnectFailed,
    HTTPStatusError,
    ScrapeError,
    ScrapeTimeout,
    TransferFailed,
)
from scraper.inventory import Machine

ACCEPT = "text/plain;version=0.0.4"
DEFAULT_MAX_BODY_BYTES = 10 * 2**20
MAX_REDIRECTS = 3
KEEPALIVE_SECONDS = 60.0
"""How long an idle connection to an exporter is kept for the next scrape (our side)."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.ECONNRESET: "connection reset",
    errno.EADDRNOTAVAIL: "address not available",
}


class Transport(Protocol):
    """What a scrape needs of an HTTP client."""

    async def get(self, url: str, headers: Mapping[str, str], limit: int, same_host_redirects: bool) -> bytes:
        """GET `url`: the body of a 200 answer, decompressed, at most `limit` bytes.

        Raises `ScrapeError` subclasses only (never a timeout: the caller bounds the time).
        """
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


_URL_CACHE_SIZE = 100_000


class AiohttpTransport:
    """`Transport` over one aiohttp session: connections kept alive between scrapes.

    An exporter may close an idle connection at any time (its own idle timeout); a request that
    fails that way before any answer came is sent once more, on a new connection. Proxy settings
    of the environment are ignored (they are meant for people's browsers, not the plant network).
    """

    def __init__(self, keepalive_seconds: float = KEEPALIVE_SECONDS) -> None:
        self._keepalive = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None
        # Each machine's URL parsed once, not at every request (yarl's parse and encode were a
        # tenth of aiohttp's work per request); emptied when full (redirect targets are many).
        self._urls: dict[str, URL] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=0,  # the scraper's own semaphore bounds the scrapes in flight
                keepalive_timeout=self._keepalive,
                ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # decompressed here, counted against the limit as it streams
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "millwatch-scraper"},
            )
        return self._session

    async def get(self, url: str, headers: Mapping[str, str], limit: int, same_host_redirects: bool) -> bytes:
        target = url
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = await self._get_once(target, headers, limit)
            if status == 200:
                return body
            if status not in _REDIRECTS or not location:
                raise HTTPStatusError(status)
            if not same_host_redirects:
                raise ScrapeError(f"HTTP {status} redirect refused (follow_redirects is off)")
            following = urljoin(target, location)
            if _origin(following) != _origin(url):
                raise ScrapeError(f"HTTP {status} redirect to another host refused")
            target = following
        raise ScrapeError("too many redirects")

    async def _get_once(self, url: str, headers: Mapping[str, str], limit: int) -> tuple[int, str, bytes]:
        session = self._open()
        for attempt in (1, 2):
            try:
                async with session.get(self._url(url), headers=headers, allow_redirects=False) as response:
                    if response.status != 200:
                        return response.status, response.headers.get("Location", ""), b""
                    return 200, "", await _read_body(response, limit)
            except ScrapeError:
                raise
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError) as e:
                # An idle kept-alive connection the exporter had closed: once more, on a fresh one.
                if attempt == 1:
                    continue
                raise TransferFailed("the exporter closed the connection") from e
            except Exception as e:
                raise _mapped(e) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _url(self, url: str) -> URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            try:
                parsed = URL(url)
            except ValueError as e:
                raise aiohttp.InvalidUrlClientError(url) from e  # as aiohttp reports it for a text
            self._urls[url] = parsed
        return parsed

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise TransferFailed(f"unsupported content encoding {encoding[:40]!r}")
    declared = response.content_length
    if encoding in ("", "identity") and declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    inflate = None
    if encoding in ("gzip", "x-gzip"):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflate = zlib.decompressobj()
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.content.iter_any():
            data = chunk
            while data:
                if inflate is None:
                    piece, data = data, b""
                else:
                    # Never inflate more than one byte past the limit, however much a chunk packs.
                    piece = inflate.decompress(data, limit - size + 1)
                    data = inflate.unconsumed_tail
                size += len(piece)
                if size > limit:
                    raise BodyTooLarge(limit)
                chunks.append(piece)
        if inflate is not None:
            rest = inflate.flush(limit - size + 1)
            size += len(rest)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(rest)
    except zlib.error as e:
        raise TransferFailed("cannot decode the compressed body") from e
    return b"".join(chunks)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port


def _mapped(error: BaseException) -> ScrapeError:
    """The ScrapeError for a failure of aiohttp or the OS under it."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return ConnectFailed(connect_cause(error.certificate_error))
    if isinstance(error, aiohttp.ClientConnectorError):
        return ConnectFailed(connect_cause(error.os_error))
    if isinstance(error, aiohttp.ClientPayloadError):
        return TransferFailed("peer closed connection without sending complete message body")
    if isinstance(error, aiohttp.ClientResponseError):
        return TransferFailed(f"the exporter broke the HTTP protocol: {_sentence(error.message)}")
    if isinstance(error, aiohttp.InvalidURL):
        return ScrapeError(f"unusable URL: {_sentence(str(error))}")
    if isinstance(error, aiohttp.ClientOSError):
        cause = connect_cause(error)
        return TransferFailed(
            "transfer failed" if cause == "connection failed" else f"{cause} during transfer"
        )
    if isinstance(error, aiohttp.ClientError):
        return ScrapeError(_sentence(str(error)) or type(error).__name__)
    if isinstance(error, OSError):
        return ConnectFailed(connect_cause(error))
    if isinstance(error, ValueError):  # yarl/aiohttp refuse some URLs this way
        return ScrapeError(f"unusable URL: {_sentence(str(error))}")
    raise error


async def fetch_metrics(
    transport: Transport,
    machine: Machine,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    same_host_redirects: bool = False,
) -> tuple[str, float]:
    """GET the machine's URL and return (body text, duration in seconds).

    The whole request, body included, must finish within the machine's scrape_timeout. The body
    (after gzip decoding) may not exceed `max_body_bytes`. Credentials are read now, from the
    machine's auth. Raises only `ScrapeError` subclasses: `ScrapeTimeout`, `ConnectFailed`,
    `TransferFailed`, `HTTPStatusError` (anything but 200), `BodyTooLarge`,
    `CredentialsUnavailable`, `BadExposition` (body not UTF-8), or `ScrapeError` itself
    (a refused redirect, an unusable URL).
    """
    timeout = machine.scrape_timeout_seconds
    headers = {
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip",
        "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}",
        **auth_headers(machine.auth),
    }
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            body = await transport.get(machine.url, headers, max_body_bytes, same_host_redirects)
    except TimeoutError as e:
        raise ScrapeTimeout(timeout) from e
    text = decode_body(body)
    return text, time.perf_counter() - started


def decode_body(body: bytes) -> str:
    """The body as text; the exposition format is UTF-8 by definition."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadExposition(body[: e.start].count(b"\n") + 1, "not valid UTF-8") from e


def connect_cause(error: BaseException) -> str:
    """The real reason behind a connection failure, from the chain of exceptions under `error`."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return "name not resolved"
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {current.verify_message or current.reason}"
        if isinstance(current, ssl.SSLError):
            return f"TLS error: {current.reason or current.strerror or 'handshake failed'}"
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, ConnectionResetError):
            return "connection reset"
        if isinstance(current, OSError) and current.errno is not None:
            return _ERRNO_TEXT.get(current.errno, (current.strerror or "connection failed").lower())
        current = current.__cause__ or current.__context__
    return "connection failed"


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:200]
