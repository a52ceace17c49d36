"""The schedule: each machine at a stable phase of its interval, pinned to the wall clock."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
from collections import Counter

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scraper.inventory import Inventory, Machine
from scraper.job_planner import JobPlanner, next_run, phase_fraction, phase_offset


def test_the_phase_is_the_same_in_another_process() -> None:
    # Not Python's hash(): that one is salted per process, and a restart would move every machine.
    ids = ["press_01", "kiln_02", "m09999"]
    code = (
        "import sys\nfrom scraper.job_planner import phase_fraction as f\nprint([f(a) for a in sys.argv[1:]])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *ids],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "random"},
    ).stdout
    assert out.strip() == str([phase_fraction(i) for i in ids])


def test_10000_machines_spread_evenly_over_the_interval() -> None:
    interval = 15.0
    seconds = Counter(int(phase_offset(f"m{i:05d}", interval)) for i in range(10_000))
    assert sorted(seconds) == list(range(15))
    mean = 10_000 / 15
    assert all(abs(count - mean) < 0.15 * mean for count in seconds.values()), seconds
    tenths = Counter(int(phase_offset(f"m{i:05d}", interval) * 10) for i in range(10_000))
    assert max(tenths.values()) < 3 * (10_000 / 150), "no burst: at most a few times the mean per 100 ms"


@pytest.mark.parametrize("interval", [0.5, 15.0, 3600.0])
def test_runs_are_pinned_to_the_wall_clock(interval: float) -> None:
    phase = phase_offset("press_01", interval)
    now = 1_764_136_800.123
    due = next_run("press_01", interval, now)
    assert now <= due < now + interval
    assert (due - phase) / interval == pytest.approx(round((due - phase) / interval))
    # A restart at any later moment finds the same grid.
    later = next_run("press_01", interval, now + 7.77 * interval)
    assert (later - due) / interval == pytest.approx(round((later - due) / interval))


def test_phase_fraction_is_in_the_unit_interval() -> None:
    assert all(0 <= phase_fraction(f"x{i}") < 1 for i in range(1000))


def test_scheduled_runs_leave_no_reference_cycles() -> None:
    """Each run is started by a timer of the event loop. A timer whose callback refers back to it
    is a reference cycle that only the cyclic garbage collector frees: at 10,000 machines that was
    ~670 cycles a second, and most of the scraper's collections. Runs must be freed as they end."""
    machines = [Machine(id=f"m{i}", name=f"m{i}", url="http://127.0.0.1:9/metrics") for i in range(20)]
    machines = [m.model_copy(update={"scrape_interval_seconds": 0.5}) for m in machines]
    runs: Counter[str] = Counter()

    async def run(machine_id: str) -> None:
        runs[machine_id] += 1

    async def main() -> list[object]:
        scheduler = AsyncIOScheduler()
        scheduler.start()
        planner = JobPlanner(scheduler, run)
        planner.commit([], JobPlanner.plan(Inventory(machines=machines), machines, "machines.yaml"))
        gc.collect()
        gc.disable()
        try:
            deadline = time.monotonic() + 20
            while min((runs[m.id] for m in machines), default=0) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            planner.close()
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            return list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()

    garbage = asyncio.run(main())
    assert min(runs[m.id] for m in machines) >= 3, "every machine ran at its phase, three times"
    timers = [o for o in garbage if isinstance(o, asyncio.TimerHandle)]
    assert not timers, f"{len(timers)} timers of started runs were left in reference cycles"
