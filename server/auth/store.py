"""Users, API tokens and sessions in the server's database (tables in server/auth/schema.py).

Synchronous like `scraper.store.Store`, whose connections and locking it borrows: the routes call
it from the thread pool. Database failures are raised as `scraper.errors.StoreError`; refused
operations as `server.errors.AuthError` with a message for the operator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from scraper.errors import StoreError
from scraper.store import Store
from server.auth import passwords
from server.auth.principal import Principal, Role, name_problem
from server.auth.schema import sessions, tokens, users
from server.auth.tokens import csrf_token_for, new_api_token, new_secret, secret_hash
from server.errors import AuthError, NameTaken, UnknownName

log = logging.getLogger(__name__)

# A token's "last used" time is written at most this often: a script polling every second would
# otherwise turn every read into a database write.
LAST_USED_RESOLUTION_SECONDS = 60.0


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: Role
    created_at: float
    password_changed_at: float

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at,
            "password_changed_at": self.password_changed_at,
        }


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: Role
    created_at: float
    last_used_at: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
        }


@dataclass(frozen=True)
class NewSession:
    """A session just created: the two secrets go to the browser once and are kept only hashed."""

    session_id: str
    csrf_token: str
    expires_at: float


class AuthStore:
    """The auth tables of `store`'s database (migrated by `store.migrate()`)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    # --- users -----------------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password: str) -> None:
        """Create a user. Raises AuthError (bad name or password), NameTaken."""
        _check_name(name)
        _check_password(password)
        password_hash = passwords.hash_password(password)
        now = self._clock()
        try:
            with self._store.transaction("add_user") as connection:
                connection.execute(
                    users.insert().values(
                        name=name,
                        role=role.value,
                        password_hash=password_hash,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
        except StoreError as e:
            if isinstance(e.__cause__, IntegrityError):
                raise NameTaken("user", name) from None
            raise
        log.info("user %s added with role %s", name, role.value)

    def list_users(self) -> list[UserInfo]:
        with self._store.reading("list_users") as connection:
            columns = (users.c.name, users.c.role, users.c.created_at, users.c.password_changed_at)
            rows = connection.execute(sa.select(*columns).order_by(users.c.name)).all()
        return [UserInfo(r.name, Role(r.role), r.created_at, r.password_changed_at) for r in rows]

    def remove_user(self, name: str) -> None:
        """Remove a user and end their sessions. Raises UnknownName, or AuthError for the last admin."""
        with self._store.transaction("remove_user") as connection:
            row = connection.execute(sa.select(users.c.id, users.c.role).where(users.c.name == name)).first()
            if row is None:
                raise UnknownName("user", name)
            if row.role == Role.ADMIN.value and self._admins(connection) <= 1:
                raise AuthError(f"{name!r} is the last admin: add another admin first")
            connection.execute(sessions.delete().where(sessions.c.user_id == row.id))
            connection.execute(users.delete().where(users.c.id == row.id))
        log.info("user %s removed", name)

    def set_password(self, name: str, password: str) -> None:
        """Change a user's password and end their sessions. Raises AuthError, UnknownName."""
        _check_password(password)
        password_hash = passwords.hash_password(password)
        with self._store.transaction("set_password") as connection:
            row = connection.execute(sa.select(users.c.id).where(users.c.name == name)).first()
            if row is None:
                raise UnknownName("user", name)
            connection.execute(
                users.update()
                .where(users.c.id == row.id)
                .values(password_hash=password_hash, password_changed_at=self._clock())
            )
            connection.execute(sessions.delete().where(sessions.c.user_id == row.id))
        log.info("password of user %s changed; their sessions ended", name)

    def check_login(self, name: str, password: str) -> int | None:
        """The user id when `password` is `name`'s, else None (unknown name and wrong password alike,
        in the same time). An old-parameter hash is replaced by a fresh one on success."""
        with self._store.reading("check_login") as connection:
            row = connection.execute(
                sa.select(users.c.id, users.c.password_hash).where(users.c.name == name)
            ).first()
        if not passwords.verify_password(None if row is None else row.password_hash, password):
            return None
        assert row is not None
        if passwords.needs_rehash(row.password_hash):
            with self._store.transaction("rehash_password") as connection:
                connection.execute(
                    users.update()
                    .where(users.c.id == row.id)
                    .values(password_hash=passwords.hash_password(password))
                )
        return int(row.id)

    @staticmethod
    def _admins(connection: sa.Connection) -> int:
        count = connection.execute(
            sa.select(sa.func.count()).select_from(users).where(users.c.role == Role.ADMIN.value)
        ).scalar_one()
        return int(count)

    # --- sessions --------------------------------------------------------------------------------

    def create_session(self, user_id: int, lifetime_seconds: float) -> NewSession:
        """A new session for `user_id`, valid for `lifetime_seconds`; expired sessions are purged."""
        session_id = new_secret()
        csrf_token = csrf_token_for(session_id)
        now = self._clock()
        expires_at = now + lifetime_seconds
        with self._store.transaction("create_session") as connection:
            connection.execute(sessions.delete().where(sessions.c.expires_at <= now))
            connection.execute(
                sessions.insert().values(
                    id_hash=secret_hash(session_id),
                    user_id=user_id,
                    csrf_hash=secret_hash(csrf_token),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return NewSession(session_id, csrf_token, expires_at)

    def session_principal(self, session_id: str) -> Principal | None:
        """The user behind a session cookie, with their current role; None if unknown or expired."""
        with self._store.reading("read_session") as connection:
            row = connection.execute(
                sa.select(users.c.name, users.c.role, sessions.c.csrf_hash, sessions.c.expires_at)
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(sessions.c.id_hash == secret_hash(session_id))
            ).first()
        if row is None or row.expires_at <= self._clock():
            return None
        return Principal("session", row.name, Role(row.role), csrf_hash=row.csrf_hash)

    def end_session(self, session_id: str) -> None:
        with self._store.transaction("end_session") as connection:
            connection.execute(sessions.delete().where(sessions.c.id_hash == secret_hash(session_id)))

    # --- API tokens ------------------------------------------------------------------------------

    def create_token(self, name: str, role: Role) -> str:
        """Create an API token and return it: the only time it is ever seen. Raises AuthError, NameTaken."""
        _check_name(name)
        token = new_api_token()
        try:
            with self._store.transaction("create_token") as connection:
                connection.execute(
                    tokens.insert().values(
                        name=name, role=role.value, token_hash=secret_hash(token), created_at=self._clock()
                    )
                )
        except StoreError as e:
            if isinstance(e.__cause__, IntegrityError):
                raise NameTaken("token", name) from None
            raise
        log.info("API token %s created with role %s", name, role.value)
        return token

    def list_tokens(self) -> list[TokenInfo]:
        with self._store.reading("list_tokens") as connection:
            rows = connection.execute(
                sa.select(tokens.c.name, tokens.c.role, tokens.c.created_at, tokens.c.last_used_at).order_by(
                    tokens.c.name
                )
            ).all()
        return [TokenInfo(r.name, Role(r.role), r.created_at, r.last_used_at) for r in rows]

    def revoke_token(self, name: str) -> None:
        """Delete an API token: requests with it are refused from now on. Raises UnknownName."""
        with self._store.transaction("revoke_token") as connection:
            deleted = connection.execute(tokens.delete().where(tokens.c.name == name)).rowcount
        if not deleted:
            raise UnknownName("token", name)
        log.info("API token %s revoked", name)

    def token_principal(self, token: str) -> Principal | None:
        """The API token's name and role, or None for a token that does not exist (or was revoked)."""
        digest = secret_hash(token)
        with self._store.reading("read_token") as connection:
            row = connection.execute(
                sa.select(tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.last_used_at).where(
                    tokens.c.token_hash == digest
                )
            ).first()
        if row is None:
            return None
        now = self._clock()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION_SECONDS:
            with self._store.transaction("touch_token") as connection:
                connection.execute(tokens.update().where(tokens.c.id == row.id).values(last_used_at=now))
        return Principal("token", row.name, Role(row.role))


def _check_name(name: str) -> None:
    problem = name_problem(name)
    if problem is not None:
        raise AuthError(f"bad name {name!r}: {problem}")


def _check_password(password: str) -> None:
    problem = passwords.check_new_password(password)
    if problem is not None:
        raise AuthError(problem)
