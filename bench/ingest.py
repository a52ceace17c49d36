"""Ingest throughput of the store: samples per second through `Store.write`, SQLite and PostgreSQL.

Batches look like the scraper's: each machine's scrape is one `SampleBatch` of the real exporter's
~60 samples at one time, and one write takes several machines' batches (as the store writer does,
up to its MAX_SAMPLES_PER_WRITE). Every machine is scraped `--rounds` times, 15 s apart. The figure
includes everything a write does: series ids, staging, the insert, the minute and hour rollups.
SQLite also reports its size on disk per sample (file size over rows, and the samples table alone).

    python bench/ingest.py --machines 1000 --rounds 20 [--postgres postgresql+psycopg://...]

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
from pathlib import Path

import sqlalchemy as sa

from scraper.exposition import Sample
from scraper.store import SampleBatch, Store
from scraper.store_writer import MAX_SAMPLES_PER_WRITE


def start_time() -> float:
    """A minute before an hour that starts at least 2 minutes from now.

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


def run(url: str, machines: int, rounds: int) -> dict[str, float]:
    rng = random.Random(1)
    store = Store(url)
    store.migrate()
    t0 = start_time()
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
                batch = SampleBatch(f"m{m:05d}", when + m * 15 / machines, machine_samples(rng, t0))
                if pending and size + len(batch.samples) > MAX_SAMPLES_PER_WRITE:
                    writes.append(pending)
                    pending, size = [], 0
                pending.append(batch)
                size += len(batch.samples)
            writes.append(pending)
            started = time.perf_counter()
            written = sum(store.write(batches) for batches in writes)
            if round_number == 0:
                first = time.perf_counter() - started  # creates every series: reported apart
            else:
                total += written
                elapsed += time.perf_counter() - started
        # The rollups are part of the cost: building them for every sample written is timed too.
        started = time.perf_counter()
        store.flush_rollups()
        elapsed += time.perf_counter() - started
    finally:
        store.close()
    return {"samples": total, "seconds": elapsed, "per_second": total / elapsed, "first_round": first}


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
    parser.add_argument("--rounds", type=int, default=20, help="scrapes of each machine (default 20)")
    parser.add_argument("--postgres", help="a PostgreSQL URL of your own (its public schema is dropped)")
    args = parser.parse_args()
    print(
        f"# {args.machines} machines x {args.rounds} rounds, ~60 samples a scrape, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        "| database | samples (after the first round) | seconds | samples/s | first round s "
        "| B/sample (file) | B/sample (samples table) |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="millwatch-ingest-") as tmp:
        path = Path(tmp) / "ingest.db"
        row = run(f"sqlite:///{path}", args.machines, args.rounds)
        whole, table = sqlite_sizes(path)
        print(
            f"| SQLite | {row['samples']:.0f} | {row['seconds']:.2f} | {row['per_second']:,.0f} "
            f"| {row['first_round']:.2f} | {whole:.1f} | {table:.1f} |",
            flush=True,
        )
    if args.postgres:
        reset_postgres(args.postgres)
        row = run(args.postgres, args.machines, args.rounds)
        print(
            f"| PostgreSQL | {row['samples']:.0f} | {row['seconds']:.2f} | {row['per_second']:,.0f} "
            f"| {row['first_round']:.2f} | | |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
