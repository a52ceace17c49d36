"""Per-machine API keys for push mode: created once, stored as SHA-256, looked up by that hash.

A key is `mwk_` followed by 32 random bytes (URL-safe base64): far too much entropy to guess, so a
fast hash is enough (a slow password hash protects low-entropy passwords, not random keys) and
the hash can be the lookup index. The key itself is shown once by `millwatch key create` and
never stored, logged or answered again. Revoking keeps the row (`key list` shows when).

The table `machine_keys` is created by the scraper's migration 0004 (the scraper owns the schema);
this module has its own small engine, so it needs nothing from the store's internals.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from millwatch_common.push_wire import KEY_PREFIX
from scraper.errors import StoreError
from server.errors import KeyNotFound

KEY_RANDOM_BYTES = 32
KEY_ID_PREFIX = "key_"
_CONNECT_TIMEOUT_S = 5

metadata = sa.MetaData()
machine_keys = sa.Table(
    "machine_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("machine_id", sa.String(200), nullable=False),
    sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked_at", sa.Double, nullable=True),
)


@dataclass(frozen=True)
class MachineKey:
    """What is known of a key without the key itself."""

    id: str
    machine_id: str
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_key() -> str:
    """A fresh random machine key: `mwk_` and 43 URL-safe characters (32 bytes)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def key_digest(key: str) -> str:
    """The SHA-256 of a key, hex: what the database holds."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(text: str) -> bool:
    """Whether `text` has the shape of a machine key (prefix, length, alphabet) before any lookup."""
    body = text[len(KEY_PREFIX) :]
    return (
        text.startswith(KEY_PREFIX)
        and 32 <= len(body) <= 128
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in body)
    )


class KeyStore:
    """Machine keys in the database at `url` (the same database as the store; migrated by it).

    Every method raises StoreError naming its operation when the database fails.
    """

    def __init__(self, url: str) -> None:
        try:
            parsed = sa.make_url(url)
        except ArgumentError as e:
            raise StoreError("open", f"not a database URL: {e}") from e
        connect_args: dict[str, Any] = (
            {"connect_timeout": _CONNECT_TIMEOUT_S}
            if parsed.get_backend_name() == "postgresql"
            else {"timeout": 5.0}  # SQLite: wait up to 5 s for a writer's lock
        )
        try:
            self._engine: Engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        except (SQLAlchemyError, ImportError) as e:
            raise StoreError("open", str(e).splitlines()[0]) from e

    def create(self, machine_id: str, *, now: float | None = None) -> tuple[MachineKey, str]:
        """A new active key for `machine_id`: (its record, the key). The key is never stored."""
        key = new_key()
        record = MachineKey(
            id=KEY_ID_PREFIX + secrets.token_hex(6),
            machine_id=machine_id,
            created_at=time.time() if now is None else now,
        )
        with self._operation("create key"), self._engine.begin() as connection:
            connection.execute(
                machine_keys.insert().values(
                    id=record.id,
                    machine_id=machine_id,
                    key_sha256=key_digest(key),
                    created_at=record.created_at,
                    revoked_at=None,
                )
            )
        return record, key

    def revoke(self, *, machine_id: str | None = None, key_id: str | None = None) -> list[MachineKey]:
        """Revoke every active key of `machine_id`, or the key `key_id`; returns the keys revoked.

        Raises KeyNotFound when nothing active matches, ValueError unless exactly one is given.
        """
        if (machine_id is None) == (key_id is None):
            raise ValueError("give exactly one of machine_id, key_id")
        column = machine_keys.c.machine_id if machine_id is not None else machine_keys.c.id
        wanted = machine_id if machine_id is not None else key_id
        now = time.time()
        with self._operation("revoke key"), self._engine.begin() as connection:
            rows = connection.execute(
                sa.select(machine_keys.c.id, machine_keys.c.machine_id, machine_keys.c.created_at).where(
                    column == wanted, machine_keys.c.revoked_at.is_(None)
                )
            ).all()
            if rows:
                connection.execute(
                    machine_keys.update()
                    .where(machine_keys.c.id.in_([r.id for r in rows]))
                    .values(revoked_at=now)
                )
        if not rows:
            raise KeyNotFound(f"machine {wanted!r}" if machine_id is not None else f"key id {wanted!r}")
        return [MachineKey(r.id, r.machine_id, float(r.created_at), now) for r in rows]

    def all_keys(self) -> list[MachineKey]:
        """Every key (active and revoked), by machine then creation time."""
        table = machine_keys
        with self._operation("list keys"), self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(table.c.id, table.c.machine_id, table.c.created_at, table.c.revoked_at).order_by(
                    table.c.machine_id, table.c.created_at
                )
            ).all()
        return [
            MachineKey(
                r.id, r.machine_id, float(r.created_at), None if r.revoked_at is None else float(r.revoked_at)
            )
            for r in rows
        ]

    def authenticate(self, key: str) -> MachineKey | None:
        """The active key record for `key`, or None (unknown, revoked or malformed)."""
        if not looks_like_key(key):
            return None
        digest = key_digest(key)
        table = machine_keys
        with self._operation("check key"), self._engine.connect() as connection:
            row = connection.execute(
                sa.select(table.c.id, table.c.machine_id, table.c.created_at, table.c.key_sha256).where(
                    table.c.key_sha256 == digest, table.c.revoked_at.is_(None)
                )
            ).first()
        # The lookup is by the digest of a random key, so its timing reveals nothing useful; the
        # comparison still runs in constant time, as is customary.
        if row is None or not hmac.compare_digest(row.key_sha256, digest):
            return None
        return MachineKey(row.id, row.machine_id, float(row.created_at))

    def close(self) -> None:
        self._engine.dispose()

    def _operation(self, name: str) -> _Operation:
        return _Operation(name)


class _Operation:
    """Turns a database failure into StoreError(name, one line without SQL or parameters)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: object) -> None:
        if value is not None and isinstance(value, (SQLAlchemyError, OSError)):
            cause = getattr(value, "orig", None) or value
            lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
            raise StoreError(self._name, "; ".join(lines[:2])[:300] or type(cause).__name__) from value
