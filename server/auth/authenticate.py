"""From a request's credentials to a `Principal`: API token, session cookie, or anonymous read.

Order: an `Authorization: Bearer` token wins; it must be valid (a wrong or revoked token is refused
even where anonymous read is on, so that a script learns its token is bad). Then the session
cookie; an unknown or expired cookie counts as no cookie (a wall screen with an old cookie keeps
reading anonymously when that is allowed). Then anonymous read, when switched on.
"""

from __future__ import annotations

from starlette.datastructures import Headers

from server.auth.principal import Principal, Role
from server.auth.store import AuthStore
from server.auth.tokens import same_secret

SESSION_COOKIE = "millwatch_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A credential longer than this is not one of ours: refused without touching the database.
MAX_CREDENTIAL_LENGTH = 256

ANONYMOUS = Principal("anonymous", None, Role.VIEWER)


class BadToken(Exception):
    """A bearer token was sent and is not (or no longer) valid."""


def authenticate(
    auth: AuthStore | None, *, bearer: str | None, cookie: str | None, anonymous_read: bool
) -> Principal | None:
    """Who sent these credentials; None when nobody (and anonymous read is off). Raises BadToken.

    Blocking (database reads): call it from a worker thread.
    """
    if bearer is not None:
        principal = None
        if auth is not None and 0 < len(bearer) <= MAX_CREDENTIAL_LENGTH:
            principal = auth.token_principal(bearer)
        if principal is None:
            raise BadToken()
        return principal
    if cookie and auth is not None and len(cookie) <= MAX_CREDENTIAL_LENGTH:
        principal = auth.session_principal(cookie)
        if principal is not None:
            return principal
    return ANONYMOUS if anonymous_read else None


def csrf_ok(principal: Principal, header: str | None) -> bool:
    """Whether an unsafe request of `principal` carries its CSRF token (only sessions need one)."""
    if principal.kind != "session":
        return True
    if principal.csrf_hash is None or not header or len(header) > MAX_CREDENTIAL_LENGTH:
        return False
    return same_secret(header, principal.csrf_hash)


def bearer_from_headers(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer …` header (WebSocket handshakes have no FastAPI
    security dependencies); None without one, "" for a malformed one (refused as a bad token)."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()
