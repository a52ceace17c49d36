"""Alembic environment for the scraper's tables.

Alembic executes this file itself; `Store.migrate()` hands over an open connection through
`config.attributes["connection"]`, so migrations run in the caller's transaction and no
alembic.ini or URL is needed here.
"""

from __future__ import annotations

from alembic import context

from scraper.schema import VERSION_TABLE, metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the scraper's migrations through scraper.store.Store.migrate()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
