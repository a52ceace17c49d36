"""The scraper service: wires the parts that scrape the fleet, one small module each.

- `inventory_watcher.InventoryWatcher`: watches machines.yaml, diffs, keeps the last good one;
- `job_planner.JobPlanner`: the APScheduler jobs, each machine at its stable phase;
- `scrape.scrape_once`: one scrape -> (view, samples), published here to the `FleetState`;
- `store_writer.StoreWriter`: the one background writer, so a scrape never waits for the database;
- `backfill.Backfiller`: after a gap, the exporter's buffered readings from `/history`;
- `retention.RetentionJob`: deletes samples past the retention;
- `stats.ScraperStats`: the counters they share.

With several scrapers on one PostgreSQL (`leases.LeaseKeeper`), `set_owned` limits the jobs to the
machines this process holds a lease on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scraper.backfill import Backfiller
from scraper.errors import InventoryError, Problem, StoreError, UnknownMachineError
from scraper.fetch import DEFAULT_MAX_BODY_BYTES, Transport
from scraper.http1 import Http1Transport
from scraper.inventory import Inventory, Machine
from scraper.inventory_watcher import InventoryWatcher, diff
from scraper.job_planner import JobPlanner
from scraper.line_cache import LineCache
from scraper.retention import (
    DEFAULT_RETENTION_SECONDS,
    PRUNE_FIRST_RUN_SECONDS,
    PRUNE_INTERVAL_SECONDS,
    RetentionJob,
)
from scraper.scrape import scrape_once
from scraper.state import FleetState, MachineView, Status
from scraper.stats import ScraperStats
from scraper.status import apply_staleness
from scraper.store import Store
from scraper.store_writer import StoreWriter

__all__ = ["DEFAULT_RETENTION_SECONDS", "ScraperService"]

log = logging.getLogger(__name__)

STALENESS_SWEEP_SECONDS = 5.0
STOP_FLUSH_SECONDS = 3.0
_RELOAD_JOB = "millwatch:reload"
_STALENESS_JOB = "millwatch:staleness"
_PRUNE_JOB = "millwatch:prune"


class ScraperService:
    """Scrapes every enabled machine of the inventory on its interval.

    Counters are in `stats` (also readable as attributes of the service: `scrapes_total`,
    `scrape_failures_total`, `store_failures_total`, `samples_dropped_total`,
    `samples_pruned_total`, ...); `pending_samples` is how many samples wait for the store.
    `inventory_error` is the text of the problems of the inventory file when its last change
    could not be applied (else None).

    `retention_seconds`: samples older than this are deleted every `prune_interval` seconds
    (first shortly after start); None keeps them forever. `stop_flush_timeout`: how long `stop`
    waits for the store to take what is still queued. `backfill`: fetch the exporters'
    buffered readings after a gap (see `backfill.py`).
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
        backfill: bool = True,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if not prune_interval > 0 or not stop_flush_timeout >= 0:
            raise ValueError("prune_interval must be greater than 0 and stop_flush_timeout not negative")
        self.stats = ScraperStats()
        self._store = store
        self._state = state
        self._max_concurrency = max_concurrency
        self._reload_interval = reload_interval
        self._staleness_interval = staleness_interval
        self._sample_limit = sample_limit
        self._max_body_bytes = max_body_bytes
        self._prune_interval = prune_interval
        self._stop_flush_timeout = stop_flush_timeout
        self._retention = RetentionJob(
            store, self.stats, retention_seconds, keep_going=lambda: not self._stopping
        )
        self._watcher = InventoryWatcher(Path(inventory_path), self._apply)
        self._inventory: Inventory | None = None
        self._owned: set[str] | None = None  # None: every machine (no leases)
        self._saved: dict[str, MachineView] = {}  # views of the previous run, until the first apply
        # Each machine's lines already parsed (scraper/line_cache.py), dropped when it leaves.
        self._lines: dict[str, LineCache] = {}

        self._scheduler: AsyncIOScheduler | None = None
        self._planner: JobPlanner | None = None
        self._stopping = False
        self._client: Transport | None = None
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[object]] = set()  # scrape, backfill and prune jobs in flight
        self._writer = StoreWriter(
            store,
            self.stats,
            is_known=self._is_known,
            max_pending_samples=max_pending_samples,
            retry_min=store_retry_min,
            retry_max=store_retry_max,
        )
        self._backfiller = (
            Backfiller(store, self.stats, self._writer.queue_batches, self._semaphore) if backfill else None
        )

    # --- what the server and the tests read --------------------------------------------------------

    @property
    def inventory_path(self) -> Path:
        return self._watcher.path

    @property
    def inventory(self) -> Inventory | None:
        return self._inventory

    @property
    def inventory_error(self) -> str | None:
        return self._watcher.error

    @property
    def pending_samples(self) -> int:
        """Samples not in the store yet: queued, or in a write under way."""
        return self._writer.pending_samples

    @property
    def samples_set_aside_by_machine(self) -> dict[str, int]:
        """Samples set aside per machine because the database kept refusing them."""
        return dict(self._writer.set_aside_by_machine)

    @property
    def scrapes_total(self) -> int:
        return self.stats.scrapes_total

    @property
    def scrape_failures_total(self) -> int:
        return self.stats.scrape_failures_total

    @property
    def store_failures_total(self) -> int:
        return self.stats.store_failures_total

    @property
    def samples_dropped_total(self) -> int:
        return self.stats.samples_dropped_total

    @property
    def samples_pruned_total(self) -> int:
        return self.stats.samples_pruned_total

    @property
    def scheduled_machines(self) -> set[str]:
        """The machines that have a scheduled scrape now (never a push or disabled one)."""
        return set() if self._planner is None else self._planner.scheduled()

    @property
    def owned(self) -> set[str] | None:
        """The machines this process scrapes (None: all of them, no leases)."""
        return None if self._owned is None else set(self._owned)

    def _is_known(self, machine_id: str) -> bool:
        return self._inventory is not None and self._inventory.get(machine_id) is not None

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
        try:
            self._saved = {v.id: v for v in await asyncio.to_thread(self._store.load_views)}
        except StoreError as e:
            self.stats.store_failures_total += 1
            log.warning("starting without the saved machine views: %s", e)
            self._saved = {}
        scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._planner = JobPlanner(scheduler, self._scrape_job)
        # The jobs are added to the scheduler before it starts: the first inventory is applied
        # (and refused, raising) before anything runs.
        try:
            inventory = await self._watcher.load_first()
        except BaseException:
            self._planner = None
            raise
        self._saved = {}
        self._writer.start()
        # Keep-alive: one idle connection per exporter (whose server bounds its connections and
        # closes idle ones; the transport sends again once on a connection closed that way).
        self._client = Http1Transport()
        scheduler.start()
        self._scheduler = scheduler
        try:
            scheduler.add_job(
                self._reload_job, IntervalTrigger(seconds=self._reload_interval), id=_RELOAD_JOB
            )
            scheduler.add_job(
                self._staleness_job, IntervalTrigger(seconds=self._staleness_interval), id=_STALENESS_JOB
            )
            if self._retention.retention_seconds is not None:
                first = min(PRUNE_FIRST_RUN_SECONDS, self._prune_interval)
                scheduler.add_job(
                    self._prune_job,
                    IntervalTrigger(seconds=self._prune_interval),
                    id=_PRUNE_JOB,
                    next_run_time=datetime.now(timezone.utc) + timedelta(seconds=first),
                )
        except BaseException:
            await self.stop()
            self._inventory = None
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
        if self._planner is not None:
            self._planner.close()  # nor the starts already arranged for the current slot
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

        The view is in the fleet state when this returns; the samples (with the synthetic `up`,
        `scrape_duration_seconds`, `scrape_samples_scraped`) and the view are queued for the
        store, which the background writer takes them to (`pending_samples` counts them until
        then). Raises `UnknownMachineError` for an id not in the inventory and RuntimeError before
        `start`. A disabled or push machine is not scraped: its current view is returned.
        """
        client, inventory = self._client, self._inventory
        if client is None or inventory is None:
            raise RuntimeError("the scraper service is not started")
        machine = inventory.get(machine_id)
        if machine is None:
            raise UnknownMachineError(machine_id)
        if not machine.scraped:
            return self._state.get(machine_id) or machine.initial_view()

        lines = self._lines.get(machine_id)
        if lines is None:
            lines = self._lines[machine_id] = LineCache()
        async with self._semaphore:
            now = time.time()
            result = await scrape_once(
                client,
                machine,
                # Only a failed scrape reads the machine's current view: not built for the others.
                lambda: self._view_for(machine, self._state.get(machine_id), now),
                sample_limit=self._sample_limit,
                max_body_bytes=self._max_body_bytes,
                lines=lines,
            )
        self.stats.scrapes_total += 1
        if result.error is not None:
            self.stats.scrape_failures_total += 1

        # A reload during the scrape may have removed or changed the machine: then this result is
        # not the machine's view any more (the next scrape makes the new one), and publishing or
        # saving it would bring a removed machine back. Its samples were measured all the same.
        current = self._inventory.get(machine_id) if self._inventory is not None else None
        if current is None:
            return result.view
        publish = current is machine or current == machine  # the same object: no field-by-field compare
        if publish:
            self._state.put([result.view])
        self._writer.queue(result.batch(), result.view if publish else None)
        if self._backfiller is not None and not self._stopping:
            gap = self._backfiller.observe(machine, result)
            if gap is not None:
                backfiller = self._backfiller
                self._spawn(lambda: backfiller.run(client, machine, gap), f"backfill of {machine_id}")
        return result.view

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, object]], what: str) -> None:
        """Run `work()` beside the scrapes; `stop` cancels it, an unexpected error is logged.

        The coroutine is made inside the task: a task cancelled before it ran leaves none unawaited.
        """

        async def tracked() -> None:
            async with self._tracked(what):
                await work()

        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(tracked())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    # --- ownership (several scrapers on one PostgreSQL) ---------------------------------------------

    def set_owned(self, machine_ids: Iterable[str] | None) -> None:
        """Scrape only these machines from now on (None: all). Jobs are added and removed at once."""
        owned = None if machine_ids is None else set(machine_ids)
        if owned == self._owned:
            return
        before = self._scraped(self._inventory) if self._inventory is not None else set()
        self._owned = owned
        inventory, planner = self._inventory, self._planner
        if inventory is None or planner is None:
            return
        after = self._scraped(inventory)
        gained = [m for m in inventory.scraped_machines if m.id in after - before]
        planner.commit(sorted(before - after), planner.plan(inventory, gained, str(self.inventory_path)))
        if gained or before - after:
            log.info(
                "now scraping %d machines (%d gained, %d handed over)",
                len(after),
                len(gained),
                len(before - after),
            )

    def _scraped(self, inventory: Inventory) -> set[str]:
        # Push machines are never scheduled: they send their data to /api/ingest themselves.
        scraped = {m.id for m in inventory.scraped_machines}
        return scraped if self._owned is None else scraped & self._owned

    # --- retention -------------------------------------------------------------------------------

    async def prune(self) -> int:
        """Delete the samples older than the retention now (see `RetentionJob.prune`)."""
        return await self._retention.prune()

    async def _prune_job(self) -> None:
        if self._stopping:
            return
        async with self._tracked("retention job"):
            await self.prune()

    # --- inventory reload and staleness ----------------------------------------------------------

    async def _reload_job(self) -> None:
        await self._watcher.check()

    async def reload(self) -> bool:
        """Reload the inventory file now; returns whether it was applied.

        On problems (in the file, or a machine that cannot be scheduled) the last good inventory
        stays in force with its jobs, `inventory_error` holds the problems' text and they are
        logged; otherwise jobs are added, removed or rescheduled and the state is made to match
        the new inventory.
        """
        return await self._watcher.reload()

    def _apply(self, previous: Inventory | None, inventory: Inventory) -> None:
        """Switch to `inventory`: jobs first, then the state. Raises InventoryError, changing nothing."""
        planner = self._planner
        if planner is None:
            raise RuntimeError("the scraper service is not started")
        change = diff(previous, inventory)
        wanted = self._scraped(inventory)
        had = self._scraped(previous) if previous is not None else set()
        remove = [m for m in change.stopped if m in had] + sorted(had - wanted - set(change.stopped))
        planned = planner.plan(
            inventory, [m for m in change.rescheduled if m.id in wanted], str(self.inventory_path)
        )  # raises InventoryError before any job was touched
        try:
            planner.commit(remove, planned)
        except Exception as e:
            log.exception("scheduling the inventory failed; restoring the previous jobs")
            self._restore_jobs(previous, inventory)
            raise InventoryError(
                [
                    Problem(
                        str(self.inventory_path),
                        None,
                        "",
                        f"cannot schedule the scrapes of this inventory: {e}",
                    )
                ]
            ) from e

        self._inventory = inventory
        self._store.fit_series_cache(len(inventory.machines))
        now = time.time()
        saved = self._saved if previous is None else {}
        self._state.replace_all(
            self._view_for(m, self._state.get(m.id) or saved.get(m.id), now) for m in inventory.machines
        )
        for machine_id in (*change.removed, *change.stopped):
            self._lines.pop(machine_id, None)  # not scraped any more (removed, disabled or push)
        if change.removed:
            self._writer.forget(change.removed)
            if self._backfiller is not None:
                self._backfiller.forget(change.removed)
        if previous is not None:
            log.info(
                "inventory reloaded: %d machines (%d added, %d removed, %d changed)",
                len(inventory.machines),
                change.added,
                len(change.removed),
                change.changed,
            )

    def _restore_jobs(self, previous: Inventory | None, attempted: Inventory) -> None:
        """After a failed switch: the jobs of `previous` again, none of those only `attempted` had."""
        planner = self._planner
        if planner is None:
            return
        kept = self._scraped(previous) if previous is not None else set()
        try:
            planner.commit(
                [m.id for m in attempted.machines if m.id not in kept],
                planner.plan(previous, [m for m in previous.scraped_machines if m.id in kept], "")
                if previous is not None
                else [],
            )
        except Exception:
            log.exception("restoring the previous scrape jobs failed")

    async def _staleness_job(self) -> None:
        self.sweep_staleness(time.time())

    def sweep_staleness(self, now: float) -> list[MachineView]:
        """Mark views not refreshed in time as stale (see `status.apply_staleness`); returns those changed.

        With leases, only the machines this process scrapes: another scraper keeps the others fresh.
        """
        inventory = self._inventory
        if inventory is None:
            return []
        changed: list[MachineView] = []
        machines = inventory.by_id()  # one look-up a view in a plain dict, not in the pydantic model
        for view in self._state.snapshot():
            machine = machines.get(view.id)
            if machine is None or (self._owned is not None and view.id not in self._owned):
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
                consecutive_failures=previous.consecutive_failures,
                readings=dict(previous.readings),
                system=previous.system,
            )
        return apply_staleness(view, now, scrape_timeout_seconds=machine.scrape_timeout_seconds)
