"""`/api/admin/users` and `/api/admin/tokens`: user and API token management, for admins only.

The same operations as `millwatch user …` and `millwatch token …`. A token is in the answer of its
creation only; every list shows names, roles and times, never a password hash or a token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from starlette.responses import Response

from server.auth.passwords import MAX_PASSWORD_LENGTH
from server.auth.principal import Role
from server.deps import AuthStoreDep
from server.errors import AuthError, NameTaken, UnknownName
from server.jsonout import json_response

router = APIRouter(prefix="/api/admin", tags=["admin"])

NameField = Annotated[str, Field(min_length=1, max_length=64)]
PasswordField = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class NewUser(BaseModel):
    name: NameField
    role: Role
    password: PasswordField


class NewPassword(BaseModel):
    password: PasswordField


class NewToken(BaseModel):
    name: NameField
    role: Role


def _http_error(error: AuthError) -> HTTPException:
    if isinstance(error, NameTaken):
        return HTTPException(status_code=409, detail=str(error))
    if isinstance(error, UnknownName):
        return HTTPException(status_code=404, detail=str(error))
    return HTTPException(status_code=422, detail=str(error))


@router.get("/users")
def list_users(auth: AuthStoreDep) -> Response:
    """`{"users": [{"name", "role", "created_at", "password_changed_at"}]}`, sorted by name."""
    return json_response({"users": [u.to_dict() for u in auth.list_users()]})


@router.post("/users", status_code=201)
def add_user(body: NewUser, auth: AuthStoreDep) -> Response:
    """Create a user; 409 when the name is taken, 422 for a bad name or too short a password."""
    try:
        auth.add_user(body.name, body.role, body.password)
    except AuthError as e:
        raise _http_error(e) from None
    return json_response({"name": body.name, "role": body.role.value}, status_code=201)


@router.put("/users/{name}/password", status_code=204)
def set_password(name: str, body: NewPassword, auth: AuthStoreDep) -> Response:
    """Set a user's password; their sessions end. 404 for an unknown user."""
    try:
        auth.set_password(name, body.password)
    except AuthError as e:
        raise _http_error(e) from None
    return Response(status_code=204)


@router.delete("/users/{name}", status_code=204)
def remove_user(name: str, auth: AuthStoreDep) -> Response:
    """Remove a user and their sessions; 404 unknown, 422 for the last admin."""
    try:
        auth.remove_user(name)
    except AuthError as e:
        raise _http_error(e) from None
    return Response(status_code=204)


@router.get("/tokens")
def list_tokens(auth: AuthStoreDep) -> Response:
    """`{"tokens": [{"name", "role", "created_at", "last_used_at"}]}`, never the tokens themselves."""
    return json_response({"tokens": [t.to_dict() for t in auth.list_tokens()]})


@router.post("/tokens", status_code=201)
def create_token(body: NewToken, auth: AuthStoreDep) -> Response:
    """Create an API token: `{"name", "role", "token"}`, the only answer that ever holds it."""
    try:
        token = auth.create_token(body.name, body.role)
    except AuthError as e:
        raise _http_error(e) from None
    return json_response({"name": body.name, "role": body.role.value, "token": token}, status_code=201)


@router.delete("/tokens/{name}", status_code=204)
def revoke_token(name: str, auth: AuthStoreDep) -> Response:
    """Revoke an API token at once; 404 when there is none of that name."""
    try:
        auth.revoke_token(name)
    except AuthError as e:
        raise _http_error(e) from None
    return Response(status_code=204)
