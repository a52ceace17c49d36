"""Any number of processes may migrate one empty database at the same moment.

Six processes call `Store.migrate()` together (what six `serve`/`scrape` processes started at once
do); each must exit 0 and the schema must end at the newest revision, once. SQLite and PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

MIGRATE = textwrap.dedent(
    """
    import sys
    from scraper.store import Store
    store = Store(sys.argv[1])
    sys.stdin.readline()  # start together: every process is ready before the first migrates
    store.migrate()
    store.close()
    """
)


def test_six_processes_migrate_an_empty_database_together(store_url: str, tmp_path: Path) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, store_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    try:
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, err) in zip(processes, results):
        assert process.returncode == 0, err
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            versions = (
                connection.execute(sa.text("SELECT version_num FROM scraper_alembic_version")).scalars().all()
            )
            tables = set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert len(versions) == 1
    assert {"series", "samples", "machine_state", "scraper_leases"} <= tables
