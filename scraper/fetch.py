"""One scrape of one machine over HTTP: the body text of its `/metrics`, or a `ScrapeError`.

The HTTP client sits behind one small interface, `Transport` (one GET with a byte limit, and
`aclose`); `scraper.http1.Http1Transport` is the one in use (measured against aiohttp and httpx in
bench/http_clients.py: see docs/architecture.md). What any transport shares lives here: the
redirect rules (`get_following_redirects`), the names of connection failures (`connect_cause`),
the body's decoding and the overall timeout, so that the reason shown on the map is short and says
what really happened.

Bounded whatever a target sends: the body is counted after decompression while it streams in and
cut at the limit (a gzip bomb inflates at most `limit` bytes), the whole request is bounded by the
machine's timeout, redirects are refused unless the machine allows same-host ones, and the
response head is bounded by the transport (8 KiB a line, 128 headers, 64 KiB in all).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from scraper.credentials import auth_headers
from scraper.errors import (
    BadExposition,
    HTTPStatusError,
    ScrapeError,
    ScrapeTimeout,
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


GetOnce = Callable[[str, Mapping[str, str], int], Awaitable[tuple[int, str, bytes]]]
"""One GET without following redirects: (status, Location header or "", body of a 200 answer)."""


async def get_following_redirects(
    get_once: GetOnce, url: str, headers: Mapping[str, str], limit: int, same_host_redirects: bool
) -> bytes:
    """The body of `url`'s 200 answer through `get_once` (one request, no redirect followed).

    A redirect is refused unless `same_host_redirects`, and then followed only to the same scheme,
    host and port, at most MAX_REDIRECTS times; any other status is an `HTTPStatusError`.
    """
    target = url
    for _ in range(MAX_REDIRECTS + 1):
        status, location, body = await get_once(target, headers, limit)
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


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port


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


def sentence(text: str) -> str:
    """`text` as the tail of a short reason: no final period, lower-case first letter, at most 200."""
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:200]
