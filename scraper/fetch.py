"""One scrape of one machine over HTTP: the body text of its `/metrics`, or a `ScrapeError`.

Every low-level failure (httpx, OS, TLS, decoding) is mapped here, once, into the error tree of
`scraper.errors`, so that the reason shown on the map is short and says what really happened.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time

import httpx

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

_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.ECONNRESET: "connection reset",
    errno.EADDRNOTAVAIL: "address not available",
}


async def fetch_metrics(
    client: httpx.AsyncClient, machine: Machine, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> tuple[str, float]:
    """GET the machine's URL and return (body text, duration in seconds).

    The whole request, body included, must finish within the machine's scrape_timeout. The body
    (after gzip decoding) may not exceed `max_body_bytes`. Credentials are read now, from the
    machine's auth. Raises only `ScrapeError` subclasses: `ScrapeTimeout`, `ConnectFailed`,
    `TransferFailed`, `HTTPStatusError` (anything but 200), `BodyTooLarge`,
    `CredentialsUnavailable`, `BadExposition` (body not UTF-8), or `ScrapeError` itself.
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
        # httpx's timeouts bound each operation; this bounds the whole scrape (a slow trickle too).
        async with asyncio.timeout(timeout):
            body = await _get(client, machine.url, headers, timeout, max_body_bytes)
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


async def _get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout: float, limit: int
) -> bytes:
    try:
        async with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout)) as response:
            if response.status_code != 200:
                raise HTTPStatusError(response.status_code)
            declared = response.headers.get("content-length")
            if not response.headers.get("content-encoding") and declared and declared.isdigit():
                if int(declared) > limit:
                    raise BodyTooLarge(limit)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
                chunks.append(chunk)
            return b"".join(chunks)
    except ScrapeError:
        raise
    except httpx.TimeoutException as e:
        raise ScrapeTimeout(timeout) from e
    except httpx.ConnectError as e:
        raise ConnectFailed(connect_cause(e)) from e
    except (httpx.ReadError, httpx.WriteError, httpx.CloseError) as e:
        cause = connect_cause(e)
        text = "transfer failed" if cause == "connection failed" else f"{cause} during transfer"
        raise TransferFailed(text) from e
    except httpx.RemoteProtocolError as e:
        raise TransferFailed(_sentence(str(e)) or "the exporter broke the HTTP protocol") from e
    except httpx.DecodingError as e:
        raise TransferFailed("cannot decode the compressed body") from e
    except httpx.TooManyRedirects as e:
        raise ScrapeError("too many redirects") from e
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
        raise ScrapeError(f"unusable URL: {_sentence(str(e))}") from e
    except httpx.HTTPError as e:
        raise ScrapeError(_sentence(str(e)) or type(e).__name__) from e
    except OSError as e:
        raise ConnectFailed(connect_cause(e)) from e


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
