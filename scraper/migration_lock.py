"""One migration at a time, whatever the number of processes that start together.

PostgreSQL: a transaction-level advisory lock taken before Alembic reads its version table; the
next process waits for it, then sees the schema at head and does nothing. (Without it two
processes on an empty database both create the version table's row and one exits with
"duplicate key value violates unique constraint".) SQLite: `BEGIN EXCLUSIVE` on the migrating
connection, retried while another process holds the file, for at most `SQLITE_WAIT_SECONDS`.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

# An arbitrary constant shared by every millwatch process: "millwatch migrate" as a 63-bit number.
ADVISORY_LOCK_KEY = 0x6D696C6C_6D696772
SQLITE_WAIT_SECONDS = 120.0


def migration_lock(connection: Connection) -> None:
    """Take the migration lock in `connection`'s transaction (released at its commit or rollback).

    Raises sqlalchemy's OperationalError when a SQLite file stays locked past the wait.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        return
    if connection.dialect.name != "sqlite":
        return
    deadline = time.monotonic() + SQLITE_WAIT_SECONDS
    while True:
        try:
            # pysqlite has not begun a transaction yet (it does so before DML only): this is the
            # transaction's BEGIN, and the COMMIT of `engine.begin()` ends it.
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
            return
        except OperationalError as e:
            # Each try already waited the busy timeout; another process is migrating.
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
