"""The scrape jobs on APScheduler 3.x: each machine at its own phase of its interval.

A machine's phase (its offset within its interval) comes from a stable hash of its id (SHA-256,
not Python's per-process salted `hash`), and its runs are pinned to the wall clock: a run is due
at every Unix time `t` with `t ≡ phase (mod interval)`. So a restarted scraper scrapes each
machine at the same moment of the interval as before, and 10,000 machines spread evenly over
the interval instead of bursting at once.

APScheduler costs about 0.2 ms of CPU per run, an eighth of a core for 10,000 machines every
15 s. So it does not run one job per machine: the interval is cut into slots of `SLOT_SECONDS`,
and one APScheduler job per (interval, slot) starts, at the slot's beginning, each of its
machines at its exact phase with the event loop's `call_at`. Ten runs a second instead of 667,
and each scrape still starts on its own phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scraper.errors import InventoryError, Problem
from scraper.inventory import Inventory, Machine

SLOT_SECONDS = 0.1
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


def slot_of(machine_id: str, interval_seconds: float) -> int:
    """The slot of the interval the machine's phase falls in."""
    return int(phase_offset(machine_id, interval_seconds) // SLOT_SECONDS)


@dataclass(frozen=True)
class PlannedJob:
    machine: Machine
    slot: int
    trigger: IntervalTrigger  # the slot's trigger


class JobPlanner:
    """Adds, replaces and removes the scrape jobs of machines on one AsyncIOScheduler.

    `run(machine_id)` is the coroutine started for each scrape. `plan` checks a set of machines
    without touching any job (so an inventory is refused before anything changed); `commit`
    applies it. `close` cancels the starts already arranged for the current slot.
    """

    def __init__(self, scheduler: AsyncIOScheduler, run: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._scheduler = scheduler
        self._run = run
        # APScheduler job id -> (interval, slot start within the interval, {machine id: offset in the slot})
        self._slots: dict[str, tuple[float, float, dict[str, float]]] = {}
        self._job_of: dict[str, str] = {}  # machine id -> its slot's job id
        self._handles: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()

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
                slot = slot_of(machine.id, interval)
                anchor = datetime.fromtimestamp(slot * SLOT_SECONDS, timezone.utc)
                trigger = IntervalTrigger(seconds=interval, start_date=anchor, timezone=timezone.utc)
                first = trigger.get_next_fire_time(None, datetime.now(timezone.utc))
                if first is None:
                    raise ValueError("no next run time")
                trigger.get_next_fire_time(first, first)  # the run after the first must be computable too
            except (ValueError, OverflowError, TypeError) as e:
                position = next(i for i, m in enumerate(inventory.machines) if m.id == machine.id)
                problems.append(Problem(source, None, f"machines[{position}]", f"cannot be scheduled: {e}"))
                continue
            planned.append(PlannedJob(machine, slot, trigger))
        if problems:
            raise InventoryError(problems)
        return planned

    def commit(self, remove: Iterable[str], planned: Iterable[PlannedJob]) -> None:
        """Remove the machines `remove`, add (or move) the `planned` ones.

        Every slot job a planned machine joins is (re)added to the scheduler, so a scheduler
        that refuses jobs raises here; the caller restores the previous plan.
        """
        for machine_id in remove:
            self._leave(machine_id)
        touched: dict[str, PlannedJob] = {}
        for job in planned:
            interval = job.machine.scrape_interval_seconds
            job_id = slot_job_id(interval, job.slot)
            if self._job_of.get(job.machine.id) != job_id:
                self._leave(job.machine.id)
            start = job.slot * SLOT_SECONDS
            members = self._slots.setdefault(job_id, (interval, start, {}))[2]
            members[job.machine.id] = phase_offset(job.machine.id, interval) - start
            self._job_of[job.machine.id] = job_id
            touched[job_id] = job
        for job_id, job in touched.items():
            interval = job.machine.scrape_interval_seconds
            self._scheduler.add_job(
                self._run_slot,
                job.trigger,
                args=[job_id],
                id=job_id,
                name=f"scrape slot {job_id}",
                # A run late by up to an interval still runs (the loop was busy); later it is skipped.
                misfire_grace_time=max(1, int(interval)),
                replace_existing=True,
            )

    def scheduled(self) -> set[str]:
        """The ids of the machines that have a scheduled scrape."""
        return set(self._job_of)

    def close(self) -> None:
        """Cancel the scrapes arranged but not started yet."""
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()

    def _leave(self, machine_id: str) -> None:
        job_id = self._job_of.pop(machine_id, None)
        if job_id is None:
            return
        slot = self._slots.get(job_id)
        if slot is None:
            return
        slot[2].pop(machine_id, None)
        if not slot[2]:
            del self._slots[job_id]
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id)

    async def _run_slot(self, job_id: str) -> None:
        slot = self._slots.get(job_id)
        if slot is None:
            return
        interval, start, members = slot
        loop = asyncio.get_running_loop()
        now = time.time()
        # The slot's due time: the last `start + k * interval` not after now (the job may run late,
        # never early; the small margin absorbs the scheduler's microsecond rounding).
        due = start + math.floor((now - start) / interval + 1e-6) * interval
        for machine_id, offset in list(members.items()):
            self._arrange(loop, loop.time() + max(0.0, due + offset - now), machine_id)

    def _arrange(self, loop: asyncio.AbstractEventLoop, when: float, machine_id: str) -> None:
        # The callback finds its handle in `box` and takes it out. A closure over the handle itself
        # would make a reference cycle (handle -> callback -> cell -> handle) at every scrape, left
        # for the cyclic garbage collector: at 10,000 machines most of the garbage it collected.
        box: list[asyncio.TimerHandle] = []

        def start() -> None:
            self._handles.discard(box.pop())
            task: asyncio.Task[None] = loop.create_task(self._run(machine_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        handle = loop.call_at(when, start)
        box.append(handle)
        self._handles.add(handle)


def slot_job_id(interval_seconds: float, slot: int) -> str:
    return f"scrape:{interval_seconds!r}:{slot}"
