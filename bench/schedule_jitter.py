"""Schedule jitter of the scrape jobs at fleet scale: how late each scrape starts, and how evenly.

10,000 machines (by default) at a 15 s interval are scheduled by the real `JobPlanner` on
APScheduler's AsyncIOScheduler, each at its stable phase (SHA-256 of its id) pinned to the wall
clock. Each job is a no-op fetch by default (`--work-ms 0`: no network, nothing parsed), so the
figures are the scheduler's and the event loop's own; `--work-ms N` burns N ms of CPU on the loop
per scrape, to see the jitter when the loop is busy with real scrape work. For every run this
prints how late it started after its due time (its phase + k × interval) and how many runs
started in the busiest 100 ms window compared with the mean.

    python bench/schedule_jitter.py --machines 10000 --interval 15 --seconds 60 --work-ms 0 0.4

Talks to nobody; every loop ends after --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import timezone
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scraper.inventory import Inventory, load_inventory
from scraper.job_planner import JobPlanner, phase_offset


def fleet(count: int, interval: float, folder: Path) -> Inventory:
    lines = [f"defaults: {{scrape_interval: {interval}s, scrape_timeout: 1s}}", "machines:"]
    lines += [f"  - {{id: m{i:05d}, url: 'http://127.0.0.1:9/metrics'}}" for i in range(count)]
    path = folder / "machines.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load_inventory(path)


async def measure(inventory: Inventory, interval: float, seconds: float, work_ms: float) -> dict[str, float]:
    starts: list[tuple[str, float]] = []
    work_s = work_ms / 1000

    async def scrape(machine_id: str) -> None:
        now = time.time()
        starts.append((machine_id, now))
        if work_s:
            until = time.perf_counter() + work_s
            while time.perf_counter() < until:
                pass

    scheduler = AsyncIOScheduler(
        event_loop=asyncio.get_running_loop(),
        timezone=timezone.utc,
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    planner = JobPlanner(scheduler, scrape)
    planner.commit([], planner.plan(inventory, inventory.enabled_machines, "bench"))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    scheduler.start()
    await asyncio.sleep(seconds)
    scheduler.shutdown(wait=False)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)

    lateness: list[float] = []
    for machine_id, at in starts:
        phase = phase_offset(machine_id, interval)
        due = phase + math.floor((at - phase) / interval) * interval
        lateness.append(at - due)
    lateness.sort()
    # Evenness over whole intervals only (the first partial one is skewed by the start).
    settled = [at for _, at in starts if at >= started + interval]
    buckets = Counter(int(at * 10) for at in settled)
    expected_per_bucket = len(inventory.enabled_machines) / interval / 10
    return {
        "runs": len(starts),
        "p50_ms": 1000 * lateness[len(lateness) // 2],
        "p99_ms": 1000 * lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))],
        "max_ms": 1000 * lateness[-1],
        "mean_per_100ms": expected_per_bucket,
        "busiest_100ms": max(buckets.values()) if buckets else 0,
        "stdev_per_100ms": statistics.pstdev(buckets.values()) if len(buckets) > 1 else 0.0,
        "cpu_share": cpu / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--work-ms", type=float, nargs="+", default=[0.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        inventory = fleet(args.machines, args.interval, Path(folder))
    machines, interval = args.machines, args.interval
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {machines} machines every {interval:g}s")
    columns = ["work per scrape", "runs", "late p50 ms", "late p99 ms", "late max ms"]
    columns += ["runs per 100 ms: mean", "busiest", "stdev", "CPU share"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for work in args.work_ms:
        r = asyncio.run(measure(inventory, interval, args.seconds, work))
        cells = [
            "no-op" if not work else f"{work:g} ms CPU",
            f"{r['runs']:.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            f"{r['mean_per_100ms']:.1f}",
            f"{r['busiest_100ms']:.0f}",
            f"{r['stdev_per_100ms']:.1f}",
            f"{r['cpu_share']:.2f}",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
