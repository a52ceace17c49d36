"""The scraper service: one interval job per enabled machine, results into the state and the store.

Each job: fetch (bounded by a semaphore shared by all jobs) -> parse -> status rules ->
`FleetState.put` -> queue for the store. One background writer (`store_writer.StoreWriter`)
takes the queue to the store: a scrape job never waits for the database, so a slow, locked or
unreachable database never holds up the map. Samples older than the retention are deleted by a
job every few minutes. The inventory file is watched and reloaded; a broken file keeps the last
good inventory in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scraper.errors import InventoryError, Problem, ScrapeError, StoreError, UnknownMachineError
from scraper.exposition import Sample, parse_exposition
from scraper.fetch import DEFAULT_MAX_BODY_BYTES, AiohttpTransport, Transport, fetch_metrics
from scraper.inventory import Inventory, Machine, load_inventory
from scraper.state import FleetState, MachineView, Status
from scraper.status import apply_staleness, evaluate, failed, format_age
from scraper.store import SampleBatch, Store
from scraper.store_writer import StoreWriter, in_daemon_thread

log = logging.getLogger(__name__)

STALENESS_SWEEP_SECONDS = 5.0
START_SPREAD_SECONDS = 2.0
STOP_FLUSH_SECONDS = 3.0
DEFAULT_RETENTION_SECONDS = 30 * 86400.0
PRUNE_INTERVAL_SECONDS = 600.0
PRUNE_FIRST_RUN_SECONDS = 30.0  # after start: late enough not to compete with the first scrapes
_PARSE_IN_THREAD_CHARS = 2**20  # bigger bodies are parsed off the event loop
_RELOAD_JOB = "millwatch:reload"
_STALENESS_JOB = "millwatch:staleness"
_PRUNE_JOB = "millwatch:prune"


@dataclass(frozen=True)
class _FileSignature:
    mtime_ns: int
    size: int
    inode: int


@dataclass(frozen=True)
class _PlannedJob:
    machine: Machine
    trigger: IntervalTrigger
    first_run: datetime


class ScraperService:
    """Scrapes every enabled machine of the inventory on its interval.

    Counters (read them as attributes; the server exports them as its own metrics):
    `scrapes_total`, `scrape_failures_total`, `store_failures_total`, `samples_dropped_total`
    (given up: the queue for the store was full, or the store did not take them before `stop`
    gave up), `samples_pruned_total` (deleted by the retention); `pending_samples` is how many
    samples wait for the store. `inventory_error` is the text of the problems of the inventory
    file when its last change could not be applied (else None).

    `retention_seconds`: samples older than this are deleted every `prune_interval` seconds
    (first shortly after start); None keeps them forever. `stop_flush_timeout`: how long `stop`
    waits for the store to take what is still queued.
    """

    def __init__(
        self,
        inventory_path: Path,
        store: Store,
        state: FleetState,
        *,
        max_concurrency: int = 16,
        reload_interval: float = 2.0,
        staleness_interval: float = STALENESS_SWEEP_SECONDS,
        sample_limit: int | None = 50_000,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_pending_samples: int = 1_000_000,
        store_retry_min: float = 1.0,
        store_retry_max: float = 30.0,
        retention_seconds: float | None = DEFAULT_RETENTION_SECONDS,
        prune_interval: float = PRUNE_INTERVAL_SECONDS,
        stop_flush_timeout: float = STOP_FLUSH_SECONDS,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if retention_seconds is not None and not retention_seconds > 0:
            raise ValueError("retention_seconds must be greater than 0 (or None: keep every sample)")
        if not prune_interval > 0 or not stop_flush_timeout >= 0:
            raise ValueError("prune_interval must be greater than 0 and stop_flush_timeout not negative")
        self.inventory_path = Path(inventory_path)
        self.inventory: Inventory | None = None
        self.inventory_error: str | None = None
        self.scrapes_total = 0
        self.scrape_failures_total = 0
        self.store_failures_total = 0
        self.samples_dropped_total = 0
        self.samples_pruned_total = 0

        self._store = store
        self._state = state
        self._max_concurrency = max_concurrency
        self._reload_interval = reload_interval
        self._staleness_interval = staleness_interval
        self._sample_limit = sample_limit
        self._max_body_bytes = max_body_bytes
        self._retention = retention_seconds
        self._prune_interval = prune_interval
        self._stop_flush_timeout = stop_flush_timeout

        self._scheduler: AsyncIOScheduler | None = None
        self._stopping = False
        self._client: Transport | None = None
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._signature: _FileSignature | None = None
        self._tasks: set[asyncio.Task[object]] = set()  # scrape and prune jobs in flight
        self._writer = StoreWriter(
            store,
            self,
            is_known=self._is_known,
            max_pending_samples=max_pending_samples,
            retry_min=store_retry_min,
            retry_max=store_retry_max,
        )

    @property
    def pending_samples(self) -> int:
        """Samples not in the store yet: queued, or in a write under way."""
        return self._writer.pending_samples

    def _is_known(self, machine_id: str) -> bool:
        return self.inventory is not None and self.inventory.get(machine_id) is not None

    # --- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the inventory, publish the initial views and start scraping.

        Raises `InventoryError` (nothing started) when the inventory cannot be loaded or one of
        its machines cannot be scheduled. Views saved by a previous run are kept for machines
        still in the inventory, then checked for staleness. The database schema must already be
        migrated (`Store.migrate()`).
        """
        if self._scheduler is not None:
            raise RuntimeError("the scraper service is already started")
        self._stopping = False
        self._signature = _signature(self.inventory_path)
        inventory = await asyncio.to_thread(load_inventory, self.inventory_path)
        plan = self._plan(inventory, inventory.scraped_machines)  # raises before anything is started
        try:
            saved = {v.id: v for v in await asyncio.to_thread(self._store.load_views)}
        except StoreError as e:
            self.store_failures_total += 1
            log.warning("starting without the saved machine views: %s", e)
            saved = {}
        self.inventory = inventory
        now = time.time()
        self._state.replace_all(self._view_for(m, saved.get(m.id), now) for m in inventory.machines)

        self._writer.start()
        # Keep-alive: one idle connection per exporter (whose server bounds its connections and
        # closes idle ones; the transport sends again once on a connection closed that way).
        self._client = AiohttpTransport()
        scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        scheduler.start()
        self._scheduler = scheduler
        try:
            self._commit_jobs([], plan)
            scheduler.add_job(
                self._reload_job, IntervalTrigger(seconds=self._reload_interval), id=_RELOAD_JOB
            )
            scheduler.add_job(
                self._staleness_job, IntervalTrigger(seconds=self._staleness_interval), id=_STALENESS_JOB
            )
            if self._retention is not None:
                first = min(PRUNE_FIRST_RUN_SECONDS, self._prune_interval)
                scheduler.add_job(
                    self._prune_job,
                    IntervalTrigger(seconds=self._prune_interval),
                    id=_PRUNE_JOB,
                    next_run_time=datetime.now(timezone.utc) + timedelta(seconds=first),
                )
        except BaseException:
            await self.stop()
            self.inventory = None
            raise
        log.info(
            "scraping %d of %d machines from %s",
            len(inventory.scraped_machines),
            len(inventory.machines),
            self.inventory_path,
        )

    async def stop(self) -> None:
        """Stop scheduling, cancel scrapes in flight, give the store what waits, close the client.

        The store gets at most `stop_flush_timeout` seconds to take what is still queued; what it
        has not taken by then is counted in `samples_dropped_total` and logged. Safe to call
        twice, or without `start`.
        """
        self._stopping = True
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.pause()  # no new runs while those under way are wound down
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if scheduler is not None:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # the scheduler shuts down on its next loop turn
        await self._writer.close(self._stop_flush_timeout)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- scraping --------------------------------------------------------------------------------

    async def scrape_now(self, machine_id: str) -> MachineView:
        """Scrape one machine now (outside its schedule), publish the result and return its view.

        The view is in the fleet state when this returns; the samples and the view are queued for
        the store, which the background writer takes them to (`pending_samples` counts them until
        then). Raises `UnknownMachineError` for an id not in the inventory and RuntimeError before
        `start`. A disabled or push machine is not scraped: its current view is returned.
        """
        client, inventory = self._client, self.inventory
        if client is None or inventory is None:
            raise RuntimeError("the scraper service is not started")
        machine = inventory.get(machine_id)
        if machine is None:
            raise UnknownMachineError(machine_id)
        if not machine.scraped:
            return self._state.get(machine_id) or machine.initial_view()

        samples: list[Sample] = []
        async with self._semaphore:
            scraped_at = time.time()
            started = time.perf_counter()
            try:
                limits = machine.limits
                text, _ = await fetch_metrics(
                    client,
                    machine,
                    max_body_bytes=min(self._max_body_bytes, limits.body_size_limit),
                    same_host_redirects=limits.follow_redirects == "same_host",
                )
                samples = await self._parse(text, machine)
                view = evaluate(machine, samples, scraped_at, time.perf_counter() - started)
            except ScrapeError as e:
                self.scrape_failures_total += 1
                previous = self._view_for(machine, self._state.get(machine_id), scraped_at)
                view = failed(previous, e, scraped_at, time.perf_counter() - started)
            self.scrapes_total += 1

        # A reload during the scrape may have removed or changed the machine: then this result is
        # not the machine's view any more (the next scrape makes the new one), and publishing or
        # saving it would bring a removed machine back. Its samples were measured all the same.
        current = self.inventory.get(machine_id) if self.inventory is not None else None
        if current is None:
            return view
        publish = current == machine
        if publish:
            self._state.put([view])
        self._writer.queue(
            SampleBatch(machine_id, scraped_at, samples) if samples else None, view if publish else None
        )
        return view

    async def _parse(self, text: str, machine: Machine) -> list[Sample]:
        limits = machine.limits
        sample_limit = limits.sample_limit
        if self._sample_limit is not None:
            sample_limit = min(sample_limit, self._sample_limit)
        if len(text) > _PARSE_IN_THREAD_CHARS:
            return await asyncio.to_thread(parse_exposition, text, sample_limit, limits)
        return parse_exposition(text, sample_limit, limits)

    async def _scrape_job(self, machine_id: str) -> None:
        if self._stopping:
            return
        async with self._tracked(f"scrape job of {machine_id}"):
            try:
                await self.scrape_now(machine_id)
            except UnknownMachineError:
                pass  # removed by a reload after this run was due

    @contextlib.asynccontextmanager
    async def _tracked(self, what: str) -> AsyncIterator[None]:
        """Lets `stop` cancel the job; an unexpected error is logged, not left to the scheduler."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cancelled by `stop`: an orderly end of this run, not an error of the job.
        except Exception:
            log.exception("%s failed", what)
        finally:
            if task is not None:
                self._tasks.discard(task)

    def _plan(self, inventory: Inventory, machines: list[Machine]) -> list[_PlannedJob]:
        """The jobs of `machines` (of `inventory`), first runs spread over a short window.

        Changes nothing: raises InventoryError naming every machine that cannot be scheduled,
        so that an inventory is refused before any job was touched.
        """
        now = datetime.now(timezone.utc)
        count = len(machines)
        planned: list[_PlannedJob] = []
        problems: list[Problem] = []
        for index, machine in enumerate(machines):
            interval = machine.scrape_interval_seconds
            try:
                trigger = IntervalTrigger(seconds=interval)
                first = now + timedelta(seconds=min(interval, START_SPREAD_SECONDS) * index / count)
                trigger.get_next_fire_time(first, first)  # the run after the first one must be computable too
            except (ValueError, OverflowError, TypeError) as e:
                position = next(i for i, m in enumerate(inventory.machines) if m.id == machine.id)
                problems.append(
                    Problem(
                        str(self.inventory_path), None, f"machines[{position}]", f"cannot be scheduled: {e}"
                    )
                )
                continue
            planned.append(_PlannedJob(machine, trigger, first))
        if problems:
            raise InventoryError(problems)
        return planned

    def _commit_jobs(self, remove: list[str], planned: list[_PlannedJob]) -> None:
        """Remove the jobs of the machines `remove`, add (or replace) the `planned` ones."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        for machine_id in remove:
            with contextlib.suppress(JobLookupError):
                scheduler.remove_job(_job_id(machine_id))
        for job in planned:
            interval = job.machine.scrape_interval_seconds
            scheduler.add_job(
                self._scrape_job,
                job.trigger,
                args=[job.machine.id],
                id=_job_id(job.machine.id),
                name=f"scrape {job.machine.id}",
                next_run_time=job.first_run,
                misfire_grace_time=max(1, int(interval)),
                replace_existing=True,
            )

    # --- retention -------------------------------------------------------------------------------

    async def prune(self) -> int:
        """Delete the samples older than the retention now; returns how many were deleted.

        0 when the retention is off. A failure of the store is logged and counted in
        `store_failures_total` (the next run tries again), not raised. `stop` ends a long prune
        after its current batch.
        """
        retention = self._retention
        if retention is None:
            return 0
        try:
            deleted = await in_daemon_thread(
                partial(self._store.prune, time.time() - retention, keep_going=lambda: not self._stopping)
            )
        except StoreError as e:
            self.store_failures_total += 1
            log.warning("retention: %s", e)
            return 0
        self.samples_pruned_total += deleted
        if deleted:
            log.info("retention: deleted %d samples older than %s", deleted, format_age(retention))
        return deleted

    async def _prune_job(self) -> None:
        if self._stopping:
            return
        async with self._tracked("retention job"):
            await self.prune()

    # --- inventory reload and staleness ----------------------------------------------------------

    async def _reload_job(self) -> None:
        signature = _signature(self.inventory_path)
        if signature == self._signature:
            return
        self._signature = signature
        await self.reload()

    async def reload(self) -> bool:
        """Reload the inventory file now; returns whether it was applied.

        On problems (in the file, or a machine that cannot be scheduled) the last good inventory
        stays in force with its jobs, `inventory_error` holds the problems' text and they are
        logged; otherwise jobs are added, removed or rescheduled and the state is made to match
        the new inventory.
        """
        try:
            inventory = await asyncio.to_thread(load_inventory, self.inventory_path)
        except InventoryError as e:
            self._refuse(str(e))
            return False
        if not self._apply(inventory):
            return False
        self.inventory_error = None
        return True

    def _refuse(self, problems: str) -> None:
        self.inventory_error = problems
        count = len(self.inventory.machines) if self.inventory is not None else 0
        log.error("inventory not reloaded, keeping the last good one (%d machines):\n%s", count, problems)

    def _apply(self, inventory: Inventory) -> bool:
        """Switch to `inventory`: jobs first, then the inventory and the state (False: nothing changed)."""
        previous = self.inventory
        old = previous.by_id() if previous is not None else {}
        new = inventory.by_id()
        remove = [
            machine_id
            for machine_id, machine in old.items()
            if machine.scraped and (machine_id not in new or not new[machine_id].scraped)
        ]
        changed_jobs = [
            m
            for m in inventory.scraped_machines
            if m.id not in old
            or not old[m.id].scraped
            or old[m.id].scrape_interval_seconds != m.scrape_interval_seconds
        ]
        try:
            planned = self._plan(inventory, changed_jobs)
        except InventoryError as e:
            self._refuse(str(e))
            return False
        try:
            self._commit_jobs(remove, planned)
        except Exception as e:
            log.exception("scheduling the reloaded inventory failed; restoring the previous jobs")
            self._restore_jobs(previous, new)
            self._refuse(f"{self.inventory_path}: cannot schedule the scrapes of this inventory: {e}")
            return False

        self.inventory = inventory
        now = time.time()
        self._state.replace_all(self._view_for(m, self._state.get(m.id), now) for m in inventory.machines)
        removed = [machine_id for machine_id in old if machine_id not in new]
        if removed:
            self._writer.forget(removed)
        changed = sum(1 for k, m in new.items() if k in old and old[k] != m)
        log.info(
            "inventory reloaded: %d machines (%d added, %d removed, %d changed)",
            len(new),
            len(new.keys() - old.keys()),
            len(removed),
            changed,
        )
        return True

    def _restore_jobs(self, previous: Inventory | None, attempted: dict[str, Machine]) -> None:
        """After a failed switch: the jobs of `previous` again, none of those only `attempted` had."""
        kept = {m.id for m in previous.scraped_machines} if previous is not None else set()
        try:
            self._commit_jobs(
                [m for m in attempted if m not in kept],
                self._plan(previous, previous.scraped_machines) if previous is not None else [],
            )
        except Exception:
            log.exception("restoring the previous scrape jobs failed")

    async def _staleness_job(self) -> None:
        self.sweep_staleness(time.time())

    def sweep_staleness(self, now: float) -> list[MachineView]:
        """Mark views not refreshed in time as stale (see `status.apply_staleness`); returns those changed."""
        inventory = self.inventory
        if inventory is None:
            return []
        changed: list[MachineView] = []
        for view in self._state.snapshot():
            machine = inventory.get(view.id)
            if machine is None:
                continue
            swept = apply_staleness(view, now, scrape_timeout_seconds=machine.scrape_timeout_seconds)
            if swept is not view:
                changed.append(swept)
        return self._state.put(changed)

    def _view_for(self, machine: Machine, previous: MachineView | None, now: float) -> MachineView:
        """The machine's view under its current inventory entry, keeping what is known of its health."""
        view = machine.initial_view()
        if (
            previous is not None
            and machine.enabled
            and previous.enabled
            and previous.url == machine.url
            and previous.mode == machine.mode
            and previous.last_scrape is not None
            and previous.status not in (Status.DISABLED, Status.UNKNOWN)
        ):
            view = view.with_changes(
                status=previous.status,
                reason=previous.reason,
                last_scrape=previous.last_scrape,
                last_success_time=previous.last_success_time,
                readings=dict(previous.readings),
                system=previous.system,
            )
        return apply_staleness(view, now, scrape_timeout_seconds=machine.scrape_timeout_seconds)


def _job_id(machine_id: str) -> str:
    return f"scrape:{machine_id}"


def _signature(path: Path) -> _FileSignature | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return _FileSignature(stat.st_mtime_ns, stat.st_size, stat.st_ino)
