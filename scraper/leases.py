"""Several `millwatch scrape` processes on one PostgreSQL share the fleet through leases.

Each process is a node (`scraper_nodes`, a heartbeat row that expires) and scrapes the machines
it holds a lease on (`scraper_leases`, one row per machine, with the node and an expiry). Every
`renew_every` seconds a node, in one transaction and on the database's clock:

1. renews its heartbeat and drops the nodes whose heartbeat expired;
2. renews its own leases (and gives up those of machines no longer in its inventory);
3. computes its fair share, ceil(enabled machines / live nodes), and gives up leases above it
   (another node takes them at its next round), or claims free and expired leases up to it.

A claim is `INSERT … ON CONFLICT DO UPDATE … WHERE expires_at < now`: of two nodes claiming the
same expired lease, the row lock lets one win. A node that dies (SIGKILL, host lost) stops
renewing: after `ttl` seconds its heartbeat and leases expire, the fair share of the others
grows, and they claim its machines at their next round: within `ttl + renew_every` seconds.
A node that stops cleanly deletes its leases and heartbeat first, so the others take over at
their next round. Why leases rather than advisory locks: see docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import secrets
import socket
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from scraper import schema
from scraper.store import Store
from scraper.store_writer import in_daemon_thread

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 15.0
_NOW = sa.text("EXTRACT(EPOCH FROM clock_timestamp())::float8")


def new_node_id() -> str:
    """This process's node id: host, pid and a random part (a restarted pid is a new node)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


def claim_order(node_id: str, machine_id: str) -> bytes:
    """Rendezvous order: each node prefers a different, stable part of the fleet."""
    return hashlib.sha256(f"{node_id}\0{machine_id}".encode()).digest()


class LeaseKeeper:
    """Keeps this node's leases; `on_change(owned)` is called with the machines it holds.

    `wanted()` is the set of machines to share (the enabled machines of the current inventory).
    PostgreSQL only: the caller uses no leases on SQLite (one scraper per file).
    """

    def __init__(
        self,
        store: Store,
        wanted: Callable[[], set[str]],
        on_change: Callable[[set[str]], None],
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        renew_every: float | None = None,
        node_id: str | None = None,
    ) -> None:
        if store.dialect != "postgresql":
            raise ValueError("leases need PostgreSQL")
        if not ttl > 0:
            raise ValueError("the lease ttl must be greater than 0")
        self.node_id = node_id or new_node_id()
        self.ttl = ttl
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        self.owned: set[str] = set()
        self.renew_failures_total = 0
        self._engine = store.engine
        self._wanted = wanted
        self._on_change = on_change
        self._last_error: str | None = None

    async def run(self) -> None:
        """Renew every `renew_every` seconds until cancelled (then release, see `release`)."""
        while True:
            await self.renew_once()
            await asyncio.sleep(self.renew_every)

    async def renew_once(self) -> set[str]:
        """One round (see the module's docstring); returns the machines held after it.

        A failed round (database unreachable) is logged once and counted; the node keeps
        scraping what it holds until its leases would have expired, then stops scraping them,
        since another node may have taken them by then.
        """
        wanted = self._wanted()
        try:
            owned, live = await in_daemon_thread(lambda: self._round(wanted))
        except SQLAlchemyError as e:
            self.renew_failures_total += 1
            text = str(e).splitlines()[0][:300]
            if text != self._last_error:
                log.error("leases not renewed (keeping the machines until they expire): %s", text)
            self._last_error = text
            if self.renew_failures_total * self.renew_every >= self.ttl:
                owned = set()
            else:
                return self.owned
        else:
            if self._last_error is not None:
                log.info("leases renewed again")
            self._last_error = None
            if owned != self.owned:
                log.info(
                    "node %s: %d machines of %d, %d scrapers live",
                    self.node_id,
                    len(owned),
                    len(wanted),
                    live,
                )
        if owned != self.owned:
            self.owned = owned
            self._on_change(set(owned))
        return owned

    async def release(self) -> None:
        """Give up every lease and the heartbeat now (a clean stop): the others take over at once."""
        try:
            await in_daemon_thread(self._release)
        except SQLAlchemyError as e:
            log.warning("leases not released (they expire in %gs): %s", self.ttl, str(e).splitlines()[0])
        self.owned = set()

    def _release(self) -> None:
        with self._engine.begin() as connection:
            leases, nodes = schema.scraper_leases, schema.scraper_nodes
            connection.execute(leases.delete().where(leases.c.node_id == self.node_id))
            connection.execute(nodes.delete().where(nodes.c.node_id == self.node_id))

    def _round(self, wanted: set[str]) -> tuple[set[str], int]:
        leases, nodes = schema.scraper_leases, schema.scraper_nodes
        with self._engine.begin() as connection:
            now = float(connection.execute(sa.select(_NOW)).scalar_one())
            expires = now + self.ttl
            heartbeat = postgresql.insert(nodes).values(
                node_id=self.node_id, started_at=now, expires_at=expires
            )
            connection.execute(
                heartbeat.on_conflict_do_update(
                    index_elements=[nodes.c.node_id], set_={"expires_at": heartbeat.excluded.expires_at}
                )
            )
            connection.execute(nodes.delete().where(nodes.c.expires_at < now))
            live = int(connection.execute(sa.select(sa.func.count()).select_from(nodes)).scalar_one())

            mine = set(
                connection.execute(
                    leases.update()
                    .where(leases.c.node_id == self.node_id, leases.c.expires_at >= now)
                    .values(expires_at=expires)
                    .returning(leases.c.machine_id)
                ).scalars()
            )
            # Leases of this node that expired meanwhile (a long pause) are claimed again below.
            gone = mine - wanted
            fair = math.ceil(len(wanted) / max(1, live))
            ordered = sorted(mine & wanted, key=lambda m: claim_order(self.node_id, m))
            extra = set(ordered[fair:]) | gone
            if extra:
                self._delete(connection, extra)
                mine -= extra
            if len(mine) < fair:
                held = set(
                    connection.execute(
                        sa.select(leases.c.machine_id).where(
                            leases.c.expires_at >= now, leases.c.node_id != self.node_id
                        )
                    ).scalars()
                )
                free = sorted(wanted - held - mine, key=lambda m: claim_order(self.node_id, m))
                mine |= self._claim(connection, free[: fair - len(mine)], now, expires)
        return mine, live

    def _delete(self, connection: Connection, machine_ids: Iterable[str]) -> None:
        leases = schema.scraper_leases
        connection.execute(
            leases.delete().where(
                leases.c.node_id == self.node_id, leases.c.machine_id.in_(sorted(machine_ids))
            )
        )

    def _claim(self, connection: Connection, machine_ids: list[str], now: float, expires: float) -> set[str]:
        if not machine_ids:
            return set()
        leases = schema.scraper_leases
        insert = postgresql.insert(leases).values(
            [{"machine_id": m, "node_id": self.node_id, "expires_at": expires} for m in sorted(machine_ids)]
        )
        statement = insert.on_conflict_do_update(
            index_elements=[leases.c.machine_id],
            set_={"node_id": insert.excluded.node_id, "expires_at": insert.excluded.expires_at},
            where=leases.c.expires_at < now,
        ).returning(leases.c.machine_id)
        return set(connection.execute(statement).scalars())
