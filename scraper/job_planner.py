"""The scrape jobs on APScheduler 3.x: one interval job per machine, each at its own phase.

A machine's phase (its offset within its interval) comes from a stable hash of its id (SHA-256,
not Python's per-process salted `hash`), and its runs are pinned to the wall clock: a run is due
at every Unix time `t` with `t ≡ phase (mod interval)`. So a restarted scraper scrapes each
machine at the same second of the interval as before, and 10,000 machines spread evenly over
the interval instead of bursting at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scraper.errors import InventoryError, Problem
from scraper.inventory import Inventory, Machine

_HASH_SPACE = float(2**64)


def phase_fraction(machine_id: str) -> float:
    """Where in its interval `machine_id` is scraped, in [0, 1): the same in every process and run."""
    digest = hashlib.sha256(machine_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPACE


def phase_offset(machine_id: str, interval_seconds: float) -> float:
    """The machine's offset within its interval, in seconds: `phase_fraction * interval`."""
    return phase_fraction(machine_id) * interval_seconds


def next_run(machine_id: str, interval_seconds: float, now: float) -> float:
    """The first Unix time >= `now` at which the machine is due: `phase + k * interval`."""
    phase = phase_offset(machine_id, interval_seconds)
    k = math.ceil((now - phase) / interval_seconds)
    return phase + k * interval_seconds


@dataclass(frozen=True)
class PlannedJob:
    machine: Machine
    trigger: IntervalTrigger


class JobPlanner:
    """Adds, replaces and removes the scrape jobs of machines on one AsyncIOScheduler.

    `run(machine_id)` is the coroutine each job runs. `plan` checks a set of machines without
    touching any job (so an inventory is refused before anything changed); `commit` applies it.
    """

    def __init__(self, scheduler: AsyncIOScheduler, run: Callable[[str], Awaitable[None]]) -> None:
        self._scheduler = scheduler
        self._run = run

    @staticmethod
    def plan(inventory: Inventory, machines: Iterable[Machine], source: str) -> list[PlannedJob]:
        """The jobs of `machines` (of `inventory`), each pinned to its phase.

        Raises InventoryError naming every machine that cannot be scheduled (`source` is the
        inventory's file name, for the message).
        """
        planned: list[PlannedJob] = []
        problems: list[Problem] = []
        for machine in machines:
            interval = machine.scrape_interval_seconds
            try:
                anchor = datetime.fromtimestamp(phase_offset(machine.id, interval), timezone.utc)
                trigger = IntervalTrigger(seconds=interval, start_date=anchor, timezone=timezone.utc)
                now = datetime.now(timezone.utc)
                first = trigger.get_next_fire_time(None, now)
                if first is None:
                    raise ValueError("no next run time")
                trigger.get_next_fire_time(first, first)  # the run after the first must be computable too
            except (ValueError, OverflowError, TypeError) as e:
                position = next(i for i, m in enumerate(inventory.machines) if m.id == machine.id)
                problems.append(Problem(source, None, f"machines[{position}]", f"cannot be scheduled: {e}"))
                continue
            planned.append(PlannedJob(machine, trigger))
        if problems:
            raise InventoryError(problems)
        return planned

    def commit(self, remove: Iterable[str], planned: Iterable[PlannedJob]) -> None:
        """Remove the jobs of the machines `remove`, add (or replace) the `planned` ones."""
        for machine_id in remove:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id(machine_id))
        for job in planned:
            interval = job.machine.scrape_interval_seconds
            self._scheduler.add_job(
                self._run,
                job.trigger,
                args=[job.machine.id],
                id=job_id(job.machine.id),
                name=f"scrape {job.machine.id}",
                # A run late by up to an interval still runs (the loop was busy); later it is skipped.
                misfire_grace_time=max(1, int(interval)),
                replace_existing=True,
            )

    def scheduled(self) -> set[str]:
        """The ids of the machines that have a job."""
        prefix = "scrape:"
        return {j.id[len(prefix) :] for j in self._scheduler.get_jobs() if j.id.startswith(prefix)}


def job_id(machine_id: str) -> str:
    return f"scrape:{machine_id}"
