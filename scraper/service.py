"""The scraper service: one interval job per enabled machine, results into the store and the state.

Each job: fetch (bounded by a semaphore shared by all jobs) -> parse -> status rules -> store
(in a thread) -> `FleetState.put`. The database is allowed to fail: the view is still updated,
and the samples wait in a bounded queue until a later write succeeds. The inventory file is
watched and reloaded; a broken file keeps the last good inventory in force.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scraper.errors import InventoryError, ScrapeError, StoreError, UnknownMachineError
from scraper.exposition import Sample, parse_exposition
from scraper.fetch import DEFAULT_MAX_BODY_BYTES, fetch_metrics
from scraper.inventory import Inventory, Machine, load_inventory
from scraper.state import FleetState, MachineView, Status
from scraper.status import apply_staleness, evaluate, failed
from scraper.store import SampleBatch, Store

log = logging.getLogger(__name__)

STALENESS_SWEEP_SECONDS = 5.0
START_SPREAD_SECONDS = 2.0
DROP_LOG_SECONDS = 60.0
_PARSE_IN_THREAD_CHARS = 2**20  # bigger bodies are parsed off the event loop
_RELOAD_JOB = "millwatch:reload"
_STALENESS_JOB = "millwatch:staleness"


@dataclass(frozen=True)
class _FileSignature:
    mtime_ns: int
    size: int
    inode: int


class ScraperService:
    """Scrapes every enabled machine of the inventory on its interval.

    Counters (read them as attributes; the server exports them as its own metrics):
    `scrapes_total`, `scrape_failures_total`, `store_failures_total`, `samples_dropped_total`;
    `pending_samples` is how many samples wait for the store. `inventory_error` is the text of
    the problems of the inventory file when its last change could not be loaded (else None).
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
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.inventory_path = Path(inventory_path)
        self.inventory: Inventory | None = None
        self.inventory_error: str | None = None
        self.scrapes_total = 0
        self.scrape_failures_total = 0
        self.store_failures_total = 0
        self.samples_dropped_total = 0

        self._store = store
        self._state = state
        self._max_concurrency = max_concurrency
        self._reload_interval = reload_interval
        self._staleness_interval = staleness_interval
        self._sample_limit = sample_limit
        self._max_body_bytes = max_body_bytes
        self._max_pending_samples = max_pending_samples
        self._store_retry_min = store_retry_min
        self._store_retry_max = store_retry_max

        self._scheduler: AsyncIOScheduler | None = None
        self._stopping = False
        self._client: httpx.AsyncClient | None = None
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._signature: _FileSignature | None = None
        self._tasks: set[asyncio.Task[object]] = set()  # scrape jobs in flight
        self._background: set[asyncio.Task[None]] = set()
        # Writes waiting for the store, oldest first; views keyed by machine (the newest wins).
        self._pending: deque[SampleBatch] = deque()
        self.pending_samples = 0
        self._pending_views: dict[str, MachineView] = {}
        self._write_lock = asyncio.Lock()
        self._store_retry_at = 0.0
        self._store_backoff = 0.0
        self._last_drop_log = -DROP_LOG_SECONDS

    # --- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the inventory, publish the initial views and start scraping.

        Raises `InventoryError` (nothing started) when the inventory cannot be loaded. Views
        saved by a previous run are kept for machines still in the inventory, then checked for
        staleness. The database schema must already be migrated (`Store.migrate()`).
        """
        if self._scheduler is not None:
            raise RuntimeError("the scraper service is already started")
        self._stopping = False
        self._signature = _signature(self.inventory_path)
        inventory = await asyncio.to_thread(load_inventory, self.inventory_path)
        self.inventory = inventory
        try:
            saved = {v.id: v for v in await asyncio.to_thread(self._store.load_views)}
        except StoreError as e:
            self.store_failures_total += 1
            log.warning("starting without the saved machine views: %s", e)
            saved = {}
        now = time.time()
        self._state.replace_all(self._view_for(m, saved.get(m.id), now) for m in inventory.machines)

        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=3,
            # The environment's proxy settings are meant for people's browsers, not for the plant network.
            trust_env=False,
            # No keep-alive: a machine is scraped again only after its interval, longer than any
            # sensible idle timeout, and an idle connection would hold a thread of the exporter.
            limits=httpx.Limits(max_connections=self._max_concurrency, max_keepalive_connections=0),
        )
        scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        scheduler.start()
        self._scheduler = scheduler
        self._schedule(inventory.enabled_machines)
        scheduler.add_job(self._reload_job, IntervalTrigger(seconds=self._reload_interval), id=_RELOAD_JOB)
        scheduler.add_job(
            self._staleness_job, IntervalTrigger(seconds=self._staleness_interval), id=_STALENESS_JOB
        )
        log.info(
            "scraping %d of %d machines from %s",
            len(inventory.enabled_machines),
            len(inventory.machines),
            self.inventory_path,
        )

    async def stop(self) -> None:
        """Stop scheduling, cancel scrapes in flight, try once more to write what waits, close the client.

        Safe to call twice, or without `start`.
        """
        self._stopping = True
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.pause()  # no new runs while those under way are wound down
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._background, return_exceptions=True)
        if scheduler is not None:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # the scheduler shuts down on its next loop turn
        if self._pending or self._pending_views:
            self._store_retry_at = 0.0
            await self._flush()
            if self.pending_samples:
                log.error("stopping with %d samples not written to the store", self.pending_samples)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- scraping --------------------------------------------------------------------------------

    async def scrape_now(self, machine_id: str) -> MachineView:
        """Scrape one machine now (outside its schedule), store and publish the result, return its view.

        Raises `UnknownMachineError` for an id not in the inventory and RuntimeError before `start`.
        A disabled machine is not scraped: its current view is returned.
        """
        client, inventory = self._client, self.inventory
        if client is None or inventory is None:
            raise RuntimeError("the scraper service is not started")
        machine = inventory.get(machine_id)
        if machine is None:
            raise UnknownMachineError(machine_id)
        if not machine.enabled:
            return self._state.get(machine_id) or machine.initial_view()

        samples: list[Sample] = []
        async with self._semaphore:
            scraped_at = time.time()
            started = time.perf_counter()
            try:
                text, _ = await fetch_metrics(client, machine, max_body_bytes=self._max_body_bytes)
                samples = await self._parse(text)
                view = evaluate(machine, samples, scraped_at, time.perf_counter() - started)
            except ScrapeError as e:
                self.scrape_failures_total += 1
                previous = self._view_for(machine, self._state.get(machine_id), scraped_at)
                view = failed(previous, e, scraped_at, time.perf_counter() - started)
            self.scrapes_total += 1

        await self._persist(SampleBatch(machine_id, scraped_at, samples) if samples else None, view)
        # A reload during the scrape may have removed or changed the machine: then this result is
        # not the machine's view any more (the next scrape makes the new one).
        current = self.inventory.get(machine_id) if self.inventory is not None else None
        if current == machine:
            self._state.put([view])
        return view

    async def _parse(self, text: str) -> list[Sample]:
        if len(text) > _PARSE_IN_THREAD_CHARS:
            return await asyncio.to_thread(parse_exposition, text, self._sample_limit)
        return parse_exposition(text, self._sample_limit)

    async def _scrape_job(self, machine_id: str) -> None:
        if self._stopping:
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self.scrape_now(machine_id)
        except UnknownMachineError:
            pass  # removed by a reload after this run was due
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cancelled by `stop`: an orderly end of this run, not an error of the job.
        except Exception:
            log.exception("scrape job of %s failed", machine_id)
        finally:
            if task is not None:
                self._tasks.discard(task)

    def _schedule(self, machines: list[Machine]) -> None:
        """Add (or replace) the jobs of `machines`, their first runs spread over a short window."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        now = datetime.now(timezone.utc)
        count = len(machines)
        for index, machine in enumerate(machines):
            interval = machine.scrape_interval_seconds
            offset = min(interval, START_SPREAD_SECONDS) * index / count
            scheduler.add_job(
                self._scrape_job,
                IntervalTrigger(seconds=interval),
                args=[machine.id],
                id=_job_id(machine.id),
                name=f"scrape {machine.id}",
                next_run_time=now + timedelta(seconds=offset),
                misfire_grace_time=max(1, int(interval)),
                replace_existing=True,
            )

    # --- storing ---------------------------------------------------------------------------------

    async def _persist(self, batch: SampleBatch | None, view: MachineView) -> None:
        """Queue a scrape's samples and view, then write everything queued (unless the store is resting)."""
        if batch is not None:
            self._pending.append(batch)
            self.pending_samples += len(batch.samples)
            self._drop_overflow()
        self._pending_views[view.id] = view
        if time.monotonic() < self._store_retry_at:
            return  # the store failed recently; a later write after the back-off takes these along
        await self._flush()

    async def _flush(self) -> None:
        # One writer at a time; whoever holds the lock writes what every waiting job queued, so
        # writes batch up by themselves when the store is slower than the scrapes.
        async with self._write_lock:
            if not self._pending and not self._pending_views:
                return
            batches = list(self._pending)
            views = list(self._pending_views.values())
            self._pending.clear()
            self.pending_samples = 0
            self._pending_views.clear()
            work = asyncio.ensure_future(asyncio.to_thread(self._store.write, batches, views))
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                # The write goes on in its thread; account for it before giving up, so that
                # nothing is lost or counted twice.
                await asyncio.wait([work])
                self._written(work, batches, views)
                raise
            except Exception:  # noqa: S110 - `_written` reads the error from `work` and handles it
                pass
            self._written(work, batches, views)

    def _written(
        self, work: asyncio.Future[int], batches: list[SampleBatch], views: list[MachineView]
    ) -> None:
        error = work.exception()
        if error is None:
            if self._store_backoff:
                log.info("the store is back: wrote %d held samples", sum(len(b.samples) for b in batches))
            self._store_backoff = 0.0
            self._store_retry_at = 0.0
            return
        self.store_failures_total += 1
        self._store_backoff = min(self._store_retry_max, max(self._store_retry_min, self._store_backoff * 2))
        self._store_retry_at = time.monotonic() + self._store_backoff
        held = sum(len(b.samples) for b in batches) + self.pending_samples
        if isinstance(error, StoreError):
            log.warning("%s; holding %d samples, next try in %gs", error, held, self._store_backoff)
        else:
            log.error("unexpected error writing to the store; holding %d samples", held, exc_info=error)
        self._pending.extendleft(reversed(batches))
        self.pending_samples += sum(len(b.samples) for b in batches)
        known = self.inventory.by_id() if self.inventory is not None else {}
        for view in views:
            if view.id in known:
                self._pending_views.setdefault(view.id, view)  # a newer queued view wins
        self._drop_overflow()

    def _drop_overflow(self) -> None:
        dropped_now = 0
        while self.pending_samples > self._max_pending_samples and self._pending:
            dropped = self._pending.popleft()
            self.pending_samples -= len(dropped.samples)
            dropped_now += len(dropped.samples)
        if not dropped_now:
            return
        self.samples_dropped_total += dropped_now
        # Once a minute at most: during a long outage this would otherwise be every scrape.
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_SECONDS:
            self._last_drop_log = now
            log.warning(
                "store queue full (%d samples held): dropping the oldest samples, %d dropped so far",
                self._max_pending_samples,
                self.samples_dropped_total,
            )

    # --- inventory reload and staleness ----------------------------------------------------------

    async def _reload_job(self) -> None:
        signature = _signature(self.inventory_path)
        if signature == self._signature:
            return
        self._signature = signature
        await self.reload()

    async def reload(self) -> bool:
        """Reload the inventory file now; returns whether it was applied.

        On problems the last good inventory stays in force, `inventory_error` holds the problems'
        text and they are logged; otherwise jobs are added, removed or rescheduled and the state
        is made to match the new inventory.
        """
        try:
            inventory = await asyncio.to_thread(load_inventory, self.inventory_path)
        except InventoryError as e:
            self.inventory_error = str(e)
            count = len(self.inventory.machines) if self.inventory is not None else 0
            log.error("inventory not reloaded, keeping the last good one (%d machines):\n%s", count, e)
            return False
        self.inventory_error = None
        self._apply(inventory)
        return True

    def _apply(self, inventory: Inventory) -> None:
        old = self.inventory.by_id() if self.inventory is not None else {}
        new = inventory.by_id()
        self.inventory = inventory
        if self._scheduler is not None:
            for machine_id, machine in old.items():
                if machine.enabled and (machine_id not in new or not new[machine_id].enabled):
                    self._scheduler.remove_job(_job_id(machine_id))
        self._schedule(
            [
                m
                for m in inventory.enabled_machines
                if m.id not in old
                or not old[m.id].enabled
                or old[m.id].scrape_interval_seconds != m.scrape_interval_seconds
            ]
        )
        now = time.time()
        self._state.replace_all(self._view_for(m, self._state.get(m.id), now) for m in inventory.machines)
        removed = [machine_id for machine_id in old if machine_id not in new]
        for machine_id in removed:
            self._pending_views.pop(machine_id, None)
        if removed:
            task = asyncio.get_running_loop().create_task(self._forget(removed))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        changed = sum(1 for k, m in new.items() if k in old and old[k] != m)
        log.info(
            "inventory reloaded: %d machines (%d added, %d removed, %d changed)",
            len(new),
            len(new.keys() - old.keys()),
            len(removed),
            changed,
        )

    async def _forget(self, machine_ids: list[str]) -> None:
        try:
            await asyncio.to_thread(self._store.delete_views, machine_ids)
        except StoreError as e:
            self.store_failures_total += 1
            log.warning("%s", e)

    async def _staleness_job(self) -> None:
        self.sweep_staleness(time.time())

    def sweep_staleness(self, now: float) -> list[MachineView]:
        """Mark views not refreshed in time as stale (see `status.apply_staleness`); returns those changed."""
        inventory = self.inventory
        if inventory is None:
            return []
        machines = inventory.by_id()
        changed: list[MachineView] = []
        for view in self._state.snapshot():
            machine = machines.get(view.id)
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
