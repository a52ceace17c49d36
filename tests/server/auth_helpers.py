"""Helpers of the access-control tests: a server with real users and tokens in a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from scraper.store import Store
from server.auth.principal import Role
from server.auth.store import AuthStore

ADMIN = ("ada", "ada-password-1")
VIEWER = ("vic", "vic-password-1")


@dataclass
class Accounts:
    """Two users and three tokens (one revoked) in `store`'s database."""

    store: Store
    auth: AuthStore
    viewer_token: str
    admin_token: str
    revoked_token: str


def make_accounts(tmp_path: Path) -> Iterator[Accounts]:
    """Admin ada, viewer vic, tokens grafana (viewer) and automation (admin), old-script revoked."""
    store = Store(f"sqlite:///{tmp_path / 'auth.db'}")
    store.migrate()
    auth = AuthStore(store)
    auth.add_user(ADMIN[0], Role.ADMIN, ADMIN[1])
    auth.add_user(VIEWER[0], Role.VIEWER, VIEWER[1])
    viewer_token = auth.create_token("grafana", Role.VIEWER)
    admin_token = auth.create_token("automation", Role.ADMIN)
    revoked_token = auth.create_token("old-script", Role.VIEWER)
    auth.revoke_token("old-script")
    try:
        yield Accounts(store, auth, viewer_token, admin_token, revoked_token)
    finally:
        store.close()


def login(base: str, name: str, password: str) -> httpx.Client:
    """An httpx client logged in as `name` (session cookie kept), with the CSRF header set."""
    answer = httpx.post(f"{base}/api/auth/login", json={"name": name, "password": password}, timeout=30)
    assert answer.status_code == 200, answer.text
    return httpx.Client(
        base_url=base,
        cookies=answer.cookies,
        headers={"X-CSRF-Token": answer.json()["csrf_token"]},
        timeout=30,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
