"""Dependencies shared by the routes, as `Annotated` aliases (HTTP and WebSocket routes alike).

Access control is declared per router with `require_viewer` / `require_admin` (or the `ViewerDep`
/ `AdminDep` parameters), never by a blanket middleware: routes with their own credentials (a
machine's API key on ingest) or none (`/healthz`) simply do not declare them. 401 means "who are
you?" (no or bad credentials), 403 "you may not" (a viewer on an admin route, a missing CSRF token).
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from scraper.state import FleetState
from scraper.store import Store
from server.auth.authenticate import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    BadToken,
    authenticate,
    csrf_ok,
)
from server.auth.principal import Principal
from server.auth.store import AuthStore
from server.context import ServerContext
from server.live import LiveHub
from server.settings import Settings


def get_context(connection: HTTPConnection) -> ServerContext:
    return cast(ServerContext, connection.app.state.millwatch)


ContextDep = Annotated[ServerContext, Depends(get_context)]


def get_state(context: ContextDep) -> FleetState:
    return context.state


def get_store(context: ContextDep) -> Store | None:
    return context.store


def get_hub(context: ContextDep) -> LiveHub:
    return context.hub


def get_settings(context: ContextDep) -> Settings:
    return context.settings


def get_auth(context: ContextDep) -> AuthStore:
    if context.auth is None:
        raise HTTPException(status_code=503, detail="no database: users and tokens are unavailable")
    return context.auth


StateDep = Annotated[FleetState, Depends(get_state)]
StoreDep = Annotated[Store | None, Depends(get_store)]
HubDep = Annotated[LiveHub, Depends(get_hub)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AuthStoreDep = Annotated[AuthStore, Depends(get_auth)]

# Declared as FastAPI security schemes so that the OpenAPI description lists both ways in.
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="API token: `millwatch token create NAME`"
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description=f"page login (POST /api/auth/login); unsafe methods also need the {CSRF_HEADER} header",
)


def _unauthenticated(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


# Plain `def`: the lookups read the database, so FastAPI runs them in the thread pool.
def get_principal(
    request: Request,
    context: ContextDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    cookie: Annotated[str | None, Depends(cookie_scheme)],
) -> Principal | None:
    """Who is asking (None: nobody); a session's unsafe request without its CSRF token is refused."""
    try:
        principal = authenticate(
            context.auth,
            bearer=None if bearer is None else bearer.credentials,
            cookie=cookie,
            anonymous_read=context.settings.anonymous_read,
        )
    except BadToken:
        raise _unauthenticated("invalid or revoked token") from None
    if (
        principal is not None
        and request.method not in SAFE_METHODS
        and not csrf_ok(principal, request.headers.get(CSRF_HEADER))
    ):
        raise HTTPException(status_code=403, detail=f"missing or wrong {CSRF_HEADER} header")
    return principal


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]


def require_viewer(principal: PrincipalDep) -> Principal:
    """Anyone allowed to read: a user, a token, or anonymous when MILLWATCH_ANONYMOUS_READ is on."""
    if principal is None:
        raise _unauthenticated("authentication required")
    return principal


def require_admin(principal: PrincipalDep) -> Principal:
    """An admin user or admin token; 401 for nobody (or anonymous: log in), 403 for a viewer."""
    if principal is None or principal.kind == "anonymous":
        raise _unauthenticated("authentication required")
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail="admin role required")
    return principal


def require_named(principal: PrincipalDep) -> Principal:
    """A user or token of either role, never anonymous read: for actions whose author is recorded
    (an alert's acknowledgement). 401 for nobody and for anonymous (log in)."""
    if principal is None or principal.kind == "anonymous" or principal.name is None:
        raise _unauthenticated("authentication required")
    return principal


def actor_name(principal: Principal) -> str:
    """The name an audit records for `principal`: the user's login, or `token:NAME` for an API token
    (a token and a user may share a name; the record must still say which one acted)."""
    if principal.name is None:
        raise ValueError("an anonymous principal has no name to record")
    return f"token:{principal.name}" if principal.kind == "token" else principal.name


ViewerDep = Annotated[Principal, Depends(require_viewer)]
AdminDep = Annotated[Principal, Depends(require_admin)]
NamedDep = Annotated[Principal, Depends(require_named)]
