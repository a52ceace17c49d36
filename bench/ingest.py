"""Ingest throughput of the store: samples per second through `Store.write`, SQLite and PostgreSQL.

Batches look like the scraper's: each machine's scrape is one `SampleBatch` of the real exporter's
~60 samples at one time, as the parser hands them over (`--samples list`: `Sample` lists, as push
ingest and the backfill write them), and one write takes several machines' batches (as the store writer does,
up to its MAX_SAMPLES_PER_WRITE). Every machine is scraped `--rounds` times, 15 s apart. The figure
includes everything a write does: series ids, the insert, the minute and hour rollups; the time
spent building rollups is also reported apart. SQLite also reports its size on disk per sample.

    python bench/ingest.py --machines 1000 --rounds 240 [--postgres postgresql+psycopg://...]

`--stamping steady` (default): the store's clock is simulated, so the rollups are built as in a
running scraper: a write builds each minute once, 30 s after it ends, and an hour when it is over
(a rollup row for ~1/4 of the samples at 15 s, an hour row for 1/240). The rounds start at an hour,
so 240 rounds are one hour of scrapes, its hour rollup included. `--stamping old`: the stamping of
before 2026-11-30 14:30 UTC (rounds from a minute before an hour, stamped ahead of the wall clock,
every rollup built by one timed flush at the end): with few rounds the rollups weigh far more than
in a steady state (6 rounds: 0.5 rollup rows a sample instead of ~0.25), and the table stays small.

Talks to a SQLite file in a temporary folder and, when given, a PostgreSQL database whose
`public` schema it DROPS and recreates (use a database of your own). Stops by itself.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from scraper.exposition import ParsedSamples, Sample
from scraper.line_cache import SeriesRef
from scraper.store import SampleBatch, Store
from scraper.store_writer import MAX_SAMPLES_PER_WRITE


def old_start_time() -> float:
    """(`--stamping old`) A minute before an hour that starts at least 2 minutes from now.

    The scraper stamps samples with the time of their scrape, so a write meets samples of minutes
    whose rollups are not built yet; this compresses minutes of scrapes into seconds, so it stamps
    them ahead of the clock (times before the rollups' watermark would each take the slower path
    of a late sample). The rounds straddle an hour: the timed build covers two minutes and an hour.
    """
    now = time.time()
    return (math.floor(now / 3600) + 1 + (now % 3600 > 3480)) * 3600 - 60.0


def machine_samples(rng: random.Random, t0: float) -> list[Sample]:
    """About 60 samples shaped like the exporter's: readings, health, system, labelled disks."""
    samples = [
        Sample("machine_temperature_celsius", {}, round(rng.uniform(40, 90), 2)),
        Sample("machine_pressure_bar", {}, round(rng.uniform(0.9, 1.2), 3)),
        Sample("machine_speed_rpm", {}, round(rng.uniform(1400, 1500), 1)),
        Sample("millwatch_serial_up", {}, 1.0),
        Sample("millwatch_serial_readings_total", {}, float(rng.randrange(10**6))),
        Sample("millwatch_serial_last_reading_timestamp_seconds", {}, t0 + rng.random()),
        Sample("system_cpu_usage_ratio", {}, rng.random()),
        Sample("system_memory_total_bytes", {}, 8e9),
        Sample("system_memory_available_bytes", {}, float(rng.randrange(10**9, 6 * 10**9))),
        Sample("process_cpu_seconds_total", {}, round(rng.uniform(0, 1000), 2)),
        Sample("process_resident_memory_bytes", {}, float(rng.randrange(10**7, 10**8))),
    ]
    for reason in ("timeout", "parse", "too_many_keys", "open"):
        samples.append(Sample("millwatch_serial_errors_total", {"reason": reason}, float(rng.randrange(100))))
    for collector in ("serial", "system", "info"):
        samples.append(Sample("millwatch_collector_success", {"collector": collector}, 1.0))
        samples.append(
            Sample("millwatch_collector_duration_seconds", {"collector": collector}, rng.random() / 100)
        )
    for i in range(6):
        mount = f"/mnt/{i}"
        samples.append(Sample("system_disk_total_bytes", {"mountpoint": mount}, 1e11))
        samples.append(Sample("system_disk_free_bytes", {"mountpoint": mount}, float(rng.randrange(10**10))))
    for i in range(6):
        interface = f"eth{i}"
        for name in ("system_network_receive_bytes_total", "system_network_transmit_bytes_total"):
            samples.append(Sample(name, {"interface": interface}, float(rng.randrange(10**9))))
    for i in range(len(samples), 60):
        samples.append(
            Sample("python_gc_objects_collected_total", {"generation": str(i)}, float(rng.randrange(10**5)))
        )
    return samples


class SimulatedClock:
    """The store's clock in `--stamping steady`: the end of the round being written."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def parsed(samples: list[Sample]) -> ParsedSamples:
    """The samples as the scraper's parser hands them over (series keys ready, no `Sample` a line)."""
    return ParsedSamples([SeriesRef.of(s.name, s.labels) for s in samples], [s.value for s in samples])


def run(
    url: str, machines: int, rounds: int, stamping: str, parallel: bool = True, as_parsed: bool = True
) -> dict[str, float]:
    rng = random.Random(1)
    if stamping == "steady":
        # Any hour will do (the clock is simulated): the next one, so the samples look current.
        t0 = (math.floor(time.time() / 3600) + 1) * 3600.0
        clock: SimulatedClock | None = SimulatedClock(t0)
        store = Store(url, clock=clock, parallel_writes=parallel)
    else:
        t0 = old_start_time()
        clock = None
        store = Store(url, parallel_writes=parallel)
    store.migrate()
    # One sample list a machine, reused every round (generating them is not what is measured).
    scrapes: list[Sequence[Sample]] = [machine_samples(rng, t0) for _ in range(machines)]
    if as_parsed:
        scrapes = [parsed(list(samples)) for samples in scrapes]
    total = 0
    elapsed = 0.0
    first = 0.0
    try:
        for round_number in range(rounds):
            when = t0 + 15 * round_number
            pending: list[SampleBatch] = []
            size = 0
            writes: list[list[SampleBatch]] = []
            for m in range(machines):
                batch = SampleBatch(f"m{m:05d}", when + m * 15 / machines, scrapes[m])
                if pending and size + len(batch.samples) > MAX_SAMPLES_PER_WRITE:
                    writes.append(pending)
                    pending, size = [], 0
                pending.append(batch)
                size += len(batch.samples)
            writes.append(pending)
            if clock is not None:
                clock.now = when + 15  # written as the round ends, as the store writer would
            started = time.perf_counter()
            written = sum(store.write(batches) for batches in writes)
            if round_number == 0:
                first = time.perf_counter() - started  # creates every series: reported apart
                store.rollup_build_seconds = 0.0
            else:
                total += written
                elapsed += time.perf_counter() - started
        # The rollups are part of the cost: building those of every sample written is timed too
        # (steady: the last minute, and the hour when the rounds close it; old: all of them).
        if clock is not None:
            clock.now = t0 + 15 * rounds + 31
        started = time.perf_counter()
        store.flush_rollups()
        elapsed += time.perf_counter() - started
        builds = store.rollup_build_seconds
        with store.reading("bench") as connection:
            stored = connection.execute(sa.text("SELECT count(*) FROM samples")).scalar_one()
            rollup_rows = connection.execute(
                sa.text("SELECT (SELECT count(*) FROM rollup_minute) + (SELECT count(*) FROM rollup_hour)")
            ).scalar_one()
    finally:
        store.close()
    return {
        "samples": total,
        "seconds": elapsed,
        "per_second": total / elapsed,
        "first_round": first,
        "builds": builds,
        "without_builds": total / (elapsed - builds),
        "rollup_rows_per_sample": rollup_rows / stored,
    }


def sqlite_sizes(path: Path) -> tuple[float, float]:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = connection.execute("SELECT count(*) FROM samples").fetchone()[0]
        table = connection.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'samples'").fetchone()[0]
    finally:
        connection.close()
    return os.path.getsize(path) / rows, table / rows


def reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--machines", type=int, default=1000, help="machines per round (default 1000)")
    parser.add_argument(
        "--rounds", type=int, default=240, help="scrapes of each machine (default 240: an hour)"
    )
    parser.add_argument(
        "--stamping", choices=("steady", "old"), default="steady", help="how rounds are stamped (see above)"
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL of your own (its public schema is dropped)")
    parser.add_argument(
        "--samples",
        choices=("parsed", "list"),
        default="parsed",
        help="batches as the scraper's parser hands them over (default) or `Sample` lists (push, backfill)",
    )
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--one-connection", action="store_true", help="PostgreSQL: no parallel write over two connections"
    )
    args = parser.parse_args()
    print(
        f"# {args.machines} machines x {args.rounds} rounds, ~60 samples a scrape, stamping "
        f"{args.stamping}, samples {args.samples}{', one connection' if args.one_connection else ''}, "
        f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "| database | samples (after the first round) | seconds | samples/s | rollup builds s "
        "| samples/s without builds | rollup rows/sample | first round s | B/sample (file) "
        "| B/sample (samples table) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    def line(name: str, row: dict[str, float], sizes: str) -> str:
        return (
            f"| {name} | {row['samples']:.0f} | {row['seconds']:.2f} | {row['per_second']:,.0f} "
            f"| {row['builds']:.2f} | {row['without_builds']:,.0f} | {row['rollup_rows_per_sample']:.3f} "
            f"| {row['first_round']:.2f} | {sizes} |"
        )

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="millwatch-ingest-") as tmp:
            path = Path(tmp) / "ingest.db"
            row = run(
                f"sqlite:///{path}",
                args.machines,
                args.rounds,
                args.stamping,
                as_parsed=args.samples == "parsed",
            )
            whole, table = sqlite_sizes(path)
            print(line("SQLite", row, f"{whole:.1f} | {table:.1f}"), flush=True)
    if args.postgres:
        reset_postgres(args.postgres)
        row = run(
            args.postgres,
            args.machines,
            args.rounds,
            args.stamping,
            not args.one_connection,
            args.samples == "parsed",
        )
        print(line("PostgreSQL", row, " | "), flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
