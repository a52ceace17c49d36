"""`POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`: the page's login session.

The session lives in the database (server/auth/store.py): logout, a password change or removing
the user ends it at once, which a signed cookie could not do. The cookie is HttpOnly (no script
reads it), SameSite=Strict (no other site's page sends it), and Secure when the server speaks TLS
or the request came over https. Unsafe requests with the cookie also need the `X-CSRF-Token`
header, whose value the login answer and `/api/auth/me` give to the page.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from server.auth.authenticate import SESSION_COOKIE
from server.auth.passwords import MAX_PASSWORD_LENGTH
from server.auth.principal import Principal
from server.auth.tokens import csrf_token_for
from server.deps import AuthStoreDep, ContextDep, ViewerDep
from server.jsonout import json_response

router = APIRouter(prefix="/api/auth", tags=["auth"])
log = logging.getLogger(__name__)


class LoginBody(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


def _who(principal: Principal, session_id: str | None) -> dict[str, object]:
    body: dict[str, object] = {"name": principal.name, "role": principal.role.value, "kind": principal.kind}
    if principal.kind == "session" and session_id is not None:
        body["csrf_token"] = csrf_token_for(session_id)
    return body


@router.post("/login")
def login(body: LoginBody, request: Request, context: ContextDep, auth: AuthStoreDep) -> Response:
    """Check a name and password; on success set the session cookie and answer who is logged in
    (with the CSRF token). 401 for a wrong name or password (the same answer for both), 429 with
    Retry-After after too many failures from this address or for this name."""
    address = request.client.host if request.client is not None else "unknown"
    metrics = context.http_metrics.logins_refused
    limiter = context.login_limiter
    refusal = limiter.begin(address, body.name)
    if refusal is not None:
        metrics.labels(f"rate_limited_{refusal.reason}").inc()
        log.warning("login from %s refused: too many failed logins (per %s)", address, refusal.reason)
        raise HTTPException(
            status_code=429,
            detail="too many failed logins: try again later",
            headers={"Retry-After": str(refusal.retry_after)},
        )
    user_id = None
    try:
        user_id = auth.check_login(body.name, body.password)
    finally:
        limiter.end(address, body.name, failed=user_id is None)
    if user_id is None:
        metrics.labels("bad_credentials").inc()
        # Without the name typed: people type their password into the name field.
        log.warning("login from %s refused: wrong name or password", address)
        raise HTTPException(status_code=401, detail="wrong name or password")
    session = auth.create_session(user_id, context.settings.session_lifetime)
    principal = auth.session_principal(session.session_id)
    if principal is None:  # removed in the meantime
        raise HTTPException(status_code=401, detail="wrong name or password")
    log.info("user %s logged in from %s", principal.name, address)
    response = json_response({**_who(principal, session.session_id), "expires_at": session.expires_at})
    response.set_cookie(
        SESSION_COOKIE,
        session.session_id,
        max_age=int(context.settings.session_lifetime),
        path="/",
        httponly=True,
        samesite="strict",
        secure=context.settings.tls or request.url.scheme == "https",
    )
    return response


@router.post("/logout", status_code=204)
def logout(request: Request, principal: ViewerDep, context: ContextDep) -> Response:
    """End this page's session (cookie and server side); 204. A token or anonymous reader has none."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if principal.kind == "session" and session_id and context.auth is not None:
        context.auth.end_session(session_id)
        log.info("user %s logged out", principal.name)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=context.settings.tls or request.url.scheme == "https",
    )
    return response


@router.get("/me")
def me(request: Request, principal: ViewerDep) -> Response:
    """`{"name", "role", "kind"}` of the caller (`kind`: session, token or anonymous; name null when
    anonymous), with `csrf_token` for a session. 401 when nobody is logged in and reading needs it."""
    return json_response(_who(principal, request.cookies.get(SESSION_COOKIE)))
