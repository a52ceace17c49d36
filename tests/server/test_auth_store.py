"""Users, tokens and sessions in both databases (SQLite file, real PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import database_url

from scraper.store import Store
from server.auth.principal import Role
from server.auth.schema import sessions, tokens, users
from server.auth.store import AuthStore
from server.auth.tokens import secret_hash
from server.errors import AuthError, NameTaken, UnknownName


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = Store(database_url(request.param, tmp_path))
    store.migrate()
    yield store
    store.close()


def test_users_tokens_and_sessions_round_trip_with_only_hashes_stored(store: Store) -> None:
    clock = Clock()
    auth = AuthStore(store, clock=clock)
    auth.add_user("ada", Role.ADMIN, "ada-password-1")
    with pytest.raises(NameTaken):
        auth.add_user("ada", Role.VIEWER, "other-password")
    user_id = auth.check_login("ada", "ada-password-1")
    assert user_id is not None
    assert auth.check_login("ada", "wrong-password") is None
    assert auth.check_login("nobody", "ada-password-1") is None

    session = auth.create_session(user_id, lifetime_seconds=60)
    who = auth.session_principal(session.session_id)
    assert who is not None and (who.kind, who.name, who.role) == ("session", "ada", Role.ADMIN)
    assert who.csrf_hash == secret_hash(session.csrf_token)
    clock.now += 61
    assert auth.session_principal(session.session_id) is None  # expired

    token = auth.create_token("grafana", Role.VIEWER)
    with pytest.raises(NameTaken):
        auth.create_token("grafana", Role.VIEWER)
    assert auth.token_principal(token) == auth.token_principal(token)
    assert [(t.name, t.last_used_at) for t in auth.list_tokens()] == [("grafana", clock.now)]
    assert auth.token_principal(token + "x") is None

    with store.reading("test") as connection:
        stored = [
            *connection.execute(sa.select(users.c.password_hash)).scalars(),
            *connection.execute(sa.select(tokens.c.token_hash)).scalars(),
            *connection.execute(sa.select(sessions.c.id_hash, sessions.c.csrf_hash)).all(),
        ]
    text = repr(stored)
    assert "ada-password-1" not in text and token not in text and session.session_id not in text
    assert stored[0].startswith("$argon2id$")

    auth.revoke_token("grafana")
    assert auth.token_principal(token) is None
    with pytest.raises(UnknownName):
        auth.revoke_token("grafana")
    with pytest.raises(AuthError, match="last admin"):
        auth.remove_user("ada")


def test_removing_a_user_ends_their_sessions(store: Store) -> None:
    auth = AuthStore(store)
    auth.add_user("ada", Role.ADMIN, "ada-password-1")
    auth.add_user("vic", Role.VIEWER, "vic-password-1")
    vic = auth.check_login("vic", "vic-password-1")
    assert vic is not None
    session = auth.create_session(vic, 3600)
    auth.remove_user("vic")
    assert auth.session_principal(session.session_id) is None
    assert [u.name for u in auth.list_users()] == ["ada"]
