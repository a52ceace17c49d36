"""The Host header allow-list (MILLWATCH_ALLOWED_HOSTS), for HTTP requests and WebSocket handshakes.

DNS rebinding: a page of a hostile site whose name is made to resolve to this server's address
would read the API as a same-origin page (and open the WebSocket with a matching Origin). Its
requests still carry the hostile site's name in `Host`; answering only the names this server is
known by closes that door.

Starlette's TrustedHostMiddleware is not used: it cuts the `Host` header at the first colon, so an
IPv6 address (`[::1]:8000`) can never match.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.origins import parse_host

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARD_BINDS = ("", "0.0.0.0", "::")


def normalize_host_pattern(text: str) -> str:
    """An allowed host as compared: lowercased, an IPv6 address without brackets; `*` (anything) and
    `*.example.com` (any subdomain) kept. ValueError for a port, a path or an empty name."""
    candidate = text.strip().lower()
    if candidate == "*":
        return candidate
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    bad_colon = ":" in candidate and not _is_ipv6(candidate)
    if not candidate or any(c in candidate for c in "/?#@ ") or bad_colon:
        raise ValueError(f"{text!r} is not a host name (no scheme, port or path: plant.example, 10.0.0.5)")
    if "*" in candidate and not (candidate.startswith("*.") and "*" not in candidate[2:]):
        raise ValueError(f"{text!r}: a wildcard is only allowed as `*` or `*.domain`")
    return candidate


def default_allowed_hosts(bind_host: str) -> list[str]:
    """Loopback names, and the listening address when it is one address (not every interface)."""
    hosts = list(LOOPBACK_NAMES)
    if bind_host not in _WILDCARD_BINDS:
        name = normalize_host_pattern(bind_host)
        if name not in hosts:
            hosts.append(name)
    return hosts


def host_allowed(header: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request with this `Host` header is answered (a missing or malformed one never is)."""
    if "*" in allowed:
        return True
    if header is None:
        return False
    try:
        name, _port = parse_host(header)
    except ValueError:
        return False
    for pattern in allowed:
        if pattern == name or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


class AllowedHostsMiddleware:
    """Answers 400 to an HTTP request, and refuses a WebSocket handshake (HTTP 403), whose `Host` is
    not allowed; everything else goes through untouched."""

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = list(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = None
        for key, value in scope["headers"]:
            if key == b"host":
                header = value.decode("latin-1")
                break
        if host_allowed(header, self.allowed):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        log.warning(
            "refused a request from %s for host %r: not in MILLWATCH_ALLOWED_HOSTS",
            client[0] if client else "unknown",
            (header or "")[:100],
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
            return
        await PlainTextResponse("host not allowed (see MILLWATCH_ALLOWED_HOSTS)", status_code=400)(
            scope, receive, send
        )


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
