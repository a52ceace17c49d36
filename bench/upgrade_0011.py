"""How long the upgrade to revision 0011 (samples and rollups keyed time first) takes on SQLite.

Makes a SQLite database at revision 0010 in a temporary folder, fills it as a plant's scraper
would have (`--machines` machines of 60 series, `--rounds` scrapes 15 s apart, and the minute
rollups of those samples), then times `Store.migrate()`, which runs 0011: every sample and rollup
row copied into the new keys. Prints samples per second of the upgrade.

    python bench/upgrade_0011.py --machines 1000 --rounds 240

Talks to nothing but the file; stops by itself.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from scraper.store import MIGRATIONS, Store

SERIES_PER_MACHINE = 60
T0_MS = 1_780_000_000_000  # an hour's start, 2026-05-28


def fill(url: str, machines: int, rounds: int) -> int:
    """Migrate to 0010 and store the samples and minute rollups of the old layout; their count."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0010")
        series = machines * SERIES_PER_MACHINE
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO series (id, machine_id, metric, labels_json) WITH RECURSIVE "
                    "n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :series) "
                    "SELECT i, 'm' || (i / :per), 'metric_' || (i % :per), '{}' FROM n"
                ),
                {"series": series, "per": SERIES_PER_MACHINE},
            )
            # Each series at its own phase within the 15 s, values with a fraction (8-byte doubles).
            connection.execute(
                sa.text(
                    "INSERT INTO samples WITH RECURSIVE r(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM r "
                    "WHERE k < :last) SELECT s.id, :t0 + r.k * 15000 + s.id % 15000, (s.id % 97) * 1.5 "
                    "FROM series s CROSS JOIN r ORDER BY 1, 2"
                ),
                {"last": rounds - 1, "t0": T0_MS},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO rollup_minute SELECT series_id, time_ms - time_ms % 60000, min(value), "
                    "max(value), sum(value), count(*) FROM samples GROUP BY 1, 2"
                )
            )
            return int(connection.execute(sa.text("SELECT count(*) FROM samples")).scalar_one())
    finally:
        engine.dispose()


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--machines", type=int, default=1000, help="machines of 60 series (default 1000)")
    parser.add_argument("--rounds", type=int, default=240, help="scrapes of each, 15 s apart (default 240)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'upgrade.db'}"
        samples = fill(url, args.machines, args.rounds)
        store = Store(url)
        try:
            started = time.perf_counter()
            store.migrate()
            took = time.perf_counter() - started
        finally:
            store.close()
    rate = samples / took
    print(f"{samples:,} samples: the upgrade 0010 -> 0011 took {took:.1f} s ({rate:,.0f} samples/s)")


if __name__ == "__main__":
    main()
