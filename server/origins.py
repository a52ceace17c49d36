"""Which web pages may open the live WebSocket: the server's own page and the origins an admin lists.

Browsers apply no CORS to WebSockets: a page on any site may open `ws://central:8000/api/live` and
read the fleet from it. They do send that page's `Origin` with the handshake, so the server compares
it with the `Host` the browser connected to. A client that sends no `Origin` is not a browser page
(curl, a script, a monitoring tool) and is not what this check protects against.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Origin(NamedTuple):
    scheme: str
    host: str  # lowercased, an IPv6 address without brackets
    port: int  # the scheme's default when the origin names none


def normalize_origin(text: str) -> str:
    """`text` as a browser writes an `Origin`: `scheme://host[:port]`, lowercased, without the
    scheme's default port and without a trailing slash (`HTTPS://Plant.Example:443/` becomes
    `https://plant.example`).

    Raises ValueError when `text` is not an http or https origin (no host, a path, a query, user
    information, another scheme, or the opaque origin `null`).
    """
    return _format(_parse_origin(text))


def origin_allowed(origin: str | None, host: str | None, allowed: Collection[str]) -> bool:
    """Whether a WebSocket handshake with these `Origin` and `Host` headers may go on.

    Yes without an `Origin` (not a browser page); yes when the origin's host and port are those of
    `Host` (a `Host` without port means the default port of the origin's scheme, as browsers write
    it); yes when the origin, normalized, is in `allowed` (entries already normalized, see
    `normalize_origin`). No otherwise, and no when either header is malformed.
    """
    if origin is None:
        return True
    try:
        parsed = _parse_origin(origin)
    except ValueError:
        return False
    if _format(parsed) in allowed:
        return True
    if host is None:
        return False
    try:
        host_name, host_port = parse_host(host)
    except ValueError:
        return False
    expected_port = _DEFAULT_PORTS[parsed.scheme] if host_port is None else host_port
    return parsed.host == host_name and parsed.port == expected_port


def _parse_origin(text: str) -> _Origin:
    candidate = text.strip()
    if candidate.endswith("/"):
        candidate = candidate[:-1]
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{text!r} is not an origin like https://host[:port]: {e}") from None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ValueError(f"{text!r} is not an origin like https://host[:port]")
    return _Origin(scheme, parts.hostname.lower(), _DEFAULT_PORTS[scheme] if port is None else port)


def parse_host(text: str) -> tuple[str, int | None]:
    """The host name and explicit port (None when absent) of a `Host` header."""
    parts = urlsplit("//" + text.strip())
    port = parts.port  # raises ValueError for a port that is not a number in 0..65535
    if not parts.hostname or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"bad Host header {text!r}")
    return parts.hostname.lower(), port


def _format(origin: _Origin) -> str:
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    if origin.port == _DEFAULT_PORTS[origin.scheme]:
        return f"{origin.scheme}://{host}"
    return f"{origin.scheme}://{host}:{origin.port}"
