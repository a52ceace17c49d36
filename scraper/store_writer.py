"""The scraper's one writer to the store: a background task that never makes a scrape wait.

Scrape jobs hand their samples and views over with `queue` and go on at once. The writer takes
everything queued to the store in one transaction (a long backlog in several), at most one write
every `gather_seconds` (0.5 s) while scrapes keep coming, so that each write takes many scrapes.
After a failed write it rests (exponential back-off, checked by the writer itself, the only
task that writes) and then writes what was queued meanwhile. The queue is bounded: past the
bound the oldest samples are dropped, counted and logged. Store calls run in daemon threads of
their own, so a database that hangs can never hold up the end of the process once `close` has
given up on it.

One machine can never hold the others back. When a write fails because the database refused
the data (an integrity or data error: a constraint, a value out of range, a trigger's refusal),
the writer writes each machine's part in a transaction of its own, tries a refused machine
`machine_attempts` times, and sets its batch aside (counted in `batches_set_aside_total` and
`samples_set_aside_total`, logged once per machine and reason), so that every other machine's
samples are written. A machine once refused is written in its own transaction from then on,
until a write of it succeeds again. Any other failure (the database does not answer, is locked,
times out) sets nothing aside: everything is held and retried after the back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from typing import Protocol, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import SQLAlchemyError

from scraper.errors import StoreError
from scraper.event_wait import wait_event
from scraper.notify import notify_views
from scraper.state import MachineView
from scraper.store import SampleBatch, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

DROP_LOG_SECONDS = 60.0
MAX_SAMPLES_PER_WRITE = 100_000  # a long backlog is written in several transactions, not one huge one
# A write starts at most this long after the previous one began, unless MAX_SAMPLES_PER_WRITE wait:
# under a steady stream of scrapes each write takes many of them. A write has a fixed cost (a
# thread, a transaction, a commit) as big as a scrape's samples; written one scrape at a time, as
# at 500 machines, it doubled the store's CPU. An idle writer writes a new scrape at once.
GATHER_SECONDS = 0.5


MACHINE_ATTEMPTS = 3


class WriterCounters(Protocol):
    """Where the writer counts its failures, drops and set-asides (`scraper.stats.ScraperStats`)."""

    store_failures_total: int
    samples_dropped_total: int
    batches_set_aside_total: int
    samples_set_aside_total: int


class StoreWriter:
    """Writes queued samples and views to `store` from one background task.

    `is_known(machine_id)` says whether a machine is still in the inventory: views of machines
    that are not are never written (a removed machine's saved view must not come back). Failures
    and dropped samples are counted on `counters`. Use: `start()` on the event loop, `queue` /
    `forget` from the scrape jobs, `close()` once at the end.
    """

    def __init__(
        self,
        store: Store,
        counters: WriterCounters,
        *,
        is_known: Callable[[str], bool],
        max_pending_samples: int = 1_000_000,
        retry_min: float = 1.0,
        retry_max: float = 30.0,
        machine_attempts: int = MACHINE_ATTEMPTS,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        if machine_attempts < 1 or gather_seconds < 0:
            raise ValueError("machine_attempts must be at least 1 and gather_seconds not negative")
        self._gather_seconds = gather_seconds
        self._gather_until = 0.0
        self._machine_attempts = machine_attempts
        # Machines whose data the database refused: written alone until it takes them again.
        self._isolated: set[str] = set()
        self._refusals: dict[str, str] = {}  # machine -> last reason logged
        self.set_aside_by_machine: dict[str, int] = {}  # samples set aside, per machine
        self._store = store
        self._counters = counters
        self._is_known = is_known
        self._max_pending_samples = max_pending_samples
        self._retry_min = retry_min
        self._retry_max = retry_max
        # Oldest first; views keyed by machine (the newest wins); saved views to delete.
        self._batches: deque[SampleBatch] = deque()
        self._queued_samples = 0
        self._writing_samples = 0
        self._views: dict[str, MachineView] = {}
        self._forget: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._retry_at = 0.0
        self._backoff = 0.0
        self._last_drop_log = -DROP_LOG_SECONDS
        self._pending_counts: deque[tuple[str, tuple[int, int]]] = deque()

    @property
    def pending_samples(self) -> int:
        """Samples not in the store yet: queued, or in a write under way."""
        return self._queued_samples + self._writing_samples

    def start(self) -> None:
        """Start the writer task on the running event loop."""
        if self._task is not None:
            raise RuntimeError("the store writer is already started")
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="millwatch store writer")
        self._task.add_done_callback(_report_end)

    def queue(self, batch: SampleBatch | None, view: MachineView | None) -> None:
        """Hand over a scrape's samples and/or view; returns at once, whatever the store does."""
        if batch is not None:
            self._batches.append(batch)
            self._queued_samples += len(batch.samples)
            self._drop_overflow()
        if view is not None:
            self._views[view.id] = view
        self._wake.set()

    def queue_batches(self, batches: Iterable[SampleBatch]) -> None:
        """Hand over samples without a view (a backfill's readings); returns at once."""
        for batch in batches:
            self._batches.append(batch)
            self._queued_samples += len(batch.samples)
        self._drop_overflow()
        self._wake.set()

    def forget(self, machine_ids: Iterable[str]) -> None:
        """Delete the saved views of these machines (removed from the inventory); drop queued ones."""
        for machine_id in machine_ids:
            self._views.pop(machine_id, None)
            self._forget.add(machine_id)
        self._wake.set()

    async def close(self, timeout: float) -> int:
        """Write what is queued (no more resting), waiting at most `timeout` seconds; stop the task.

        Returns how many samples were not written; they are counted as dropped and logged. The
        writer cannot be started again.
        """
        task, self._task = self._task, None
        if task is None:
            return 0
        self._retry_at = 0.0
        self._closing.set()
        self._wake.set()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            # The write goes on in its thread, bounded by the store's own timeouts; nobody waits for it.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        unwritten = self.pending_samples
        if unwritten:
            self._counters.samples_dropped_total += unwritten
            why = f"the database did not answer within {timeout:g}s" if not done else "the last write failed"
            log.error("stopping with %d samples not written to the store: %s", unwritten, why)
        self._batches.clear()
        self._queued_samples = self._writing_samples = 0
        self._views.clear()
        self._forget.clear()
        return unwritten

    def _has_work(self) -> bool:
        return bool(self._batches or self._views or self._forget)

    async def _run(self) -> None:
        while True:
            if not self._has_work():
                if self._closing.is_set():
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            until = self._retry_at
            if self._queued_samples < MAX_SAMPLES_PER_WRITE:
                until = max(until, self._gather_until)
            rest = until - time.monotonic()
            if rest > 0 and not self._closing.is_set():
                # Work queued during the rest waits for its end; only `close` cuts it short.
                await wait_event(self._closing, rest)
                continue
            self._gather_until = time.monotonic() + self._gather_seconds
            written = await self._write_some()
            if not written and self._closing.is_set():
                return  # `close` counts what is left

    async def _write_some(self) -> bool:
        """Write one transaction's worth of what is queued; True when the store took it."""
        batches: list[SampleBatch] = []
        count = 0
        while self._batches and (
            not batches or count + len(self._batches[0].samples) <= MAX_SAMPLES_PER_WRITE
        ):
            batch = self._batches.popleft()
            batches.append(batch)
            count += len(batch.samples)
        self._queued_samples -= count
        self._writing_samples = count
        views = [v for v in self._views.values() if self._is_known(v.id)]
        self._views.clear()
        forget = sorted(self._forget)
        self._forget.clear()
        error: Exception | None = None
        try:
            await in_daemon_thread(partial(self._write_isolating, batches, views, forget))
        except asyncio.CancelledError:
            raise  # `close` gave up waiting; it counts these samples as not written
        except Exception as e:
            error = e
        self._writing_samples = 0
        if error is None:
            self._succeeded(count)
        else:
            self._failed(error, batches, views, forget)
        return error is None

    def _write_isolating(
        self, batches: list[SampleBatch], views: list[MachineView], forget: list[str]
    ) -> None:
        """Write everything, one machine's refused data never stopping the rest (in the writer's thread).

        Raises when the database failed otherwise than by refusing data: the caller then holds
        everything for the next try.
        """
        isolated = self._isolated
        shared_batches = [b for b in batches if b.machine_id not in isolated]
        shared_views = [v for v in views if v.id not in isolated]
        alone = sorted(
            {b.machine_id for b in batches if b.machine_id in isolated}
            | {v.id for v in views if v.id in isolated}
        )
        try:
            self._write(shared_batches, shared_views, forget)
        except Exception as e:
            if not refused(e):
                raise
            # The database refused something in this write: machine by machine.
            if forget:
                self._store.delete_views(forget)
            alone = sorted({b.machine_id for b in batches} | {v.id for v in views})
        for machine_id in alone:
            self._write_machine(
                machine_id,
                [b for b in batches if b.machine_id == machine_id],
                [v for v in views if v.id == machine_id],
            )

    def _write_machine(self, machine_id: str, batches: list[SampleBatch], views: list[MachineView]) -> None:
        error: Exception | None = None
        for _ in range(self._machine_attempts):
            try:
                self._write(batches, views, [])
            except Exception as e:
                if not refused(e):
                    raise
                error = e
                continue
            if machine_id in self._isolated:
                self._isolated.discard(machine_id)
                self._refusals.pop(machine_id, None)
                log.info("%s: the database takes this machine's samples again", machine_id)
            return
        self._set_aside(machine_id, batches, error)

    def _set_aside(self, machine_id: str, batches: list[SampleBatch], error: Exception | None) -> None:
        samples = sum(len(b.samples) for b in batches)
        self._isolated.add(machine_id)
        # Counted on the loop's thread: the counters are plain integers read there.
        loop_counts = (len(batches), samples)
        self._pending_counts.append((machine_id, loop_counts))
        reason = str(error) if error is not None else "refused"
        if self._refusals.get(machine_id) != reason:
            self._refusals[machine_id] = reason
            log.error(
                "%s: the database refused this machine's data %d times; set aside %d samples "
                "(further refusals of the same kind are only counted): %s",
                machine_id,
                self._machine_attempts,
                samples,
                reason,
            )

    def _write(self, batches: list[SampleBatch], views: list[MachineView], forget: list[str]) -> None:
        # Forgetting first: a machine removed and added again at once keeps the view written after.
        if forget:
            self._store.delete_views(forget)
        if batches or views:
            self._store.write(batches, views)
        if views or forget:
            try:
                notify_views(self._store)
            except SQLAlchemyError as e:
                # The views are written; servers without scraper then see them at their next full read.
                log.debug("status change notification not sent: %s", e)

    def _count_set_aside(self) -> int:
        """Move the set-aside counts of the last write onto the counters; returns the samples set aside."""
        total = 0
        while self._pending_counts:
            machine_id, (batches, samples) = self._pending_counts.popleft()
            self._counters.batches_set_aside_total += batches
            self._counters.samples_set_aside_total += samples
            self.set_aside_by_machine[machine_id] = self.set_aside_by_machine.get(machine_id, 0) + samples
            total += samples
        return total

    def _succeeded(self, samples: int) -> None:
        self._count_set_aside()
        if self._backoff:
            log.info("the store is back: wrote %d held samples", samples)
        self._backoff = 0.0
        self._retry_at = 0.0

    def _failed(
        self, error: Exception, batches: list[SampleBatch], views: list[MachineView], forget: list[str]
    ) -> None:
        self._count_set_aside()
        self._counters.store_failures_total += 1
        self._backoff = min(self._retry_max, max(self._retry_min, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff
        self._batches.extendleft(reversed(batches))
        self._queued_samples += sum(len(b.samples) for b in batches)
        for view in views:
            if self._is_known(view.id):
                self._views.setdefault(view.id, view)  # a newer queued view wins
        self._forget.update(m for m in forget if not self._is_known(m))
        if isinstance(error, StoreError):
            log.warning("%s; holding %d samples, next try in %gs", error, self.pending_samples, self._backoff)
        else:
            log.error(
                "unexpected error writing to the store; holding %d samples",
                self.pending_samples,
                exc_info=error,
            )
        self._drop_overflow()

    def _drop_overflow(self) -> None:
        dropped_now = 0
        while self.pending_samples > self._max_pending_samples and self._batches:
            dropped = self._batches.popleft()
            self._queued_samples -= len(dropped.samples)
            dropped_now += len(dropped.samples)
        if not dropped_now:
            return
        self._counters.samples_dropped_total += dropped_now
        # Once a minute at most: during a long outage this would otherwise be every scrape.
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_SECONDS:
            self._last_drop_log = now
            log.warning(
                "store queue full (%d samples held): dropping the oldest samples, %d dropped so far",
                self._max_pending_samples,
                self._counters.samples_dropped_total,
            )


def refused(error: BaseException) -> bool:
    """Whether the database refused the data itself (integrity or data error), not failed to answer."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (sa_exc.IntegrityError, sa_exc.DataError)):
            return True
        current = current.__cause__
    return False


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "the store writer ended unexpectedly: samples are no longer written", exc_info=task.exception()
        )


async def in_daemon_thread(function: Callable[[], T]) -> T:
    """`function()` in a daemon thread of its own; its result (or error) awaited on the loop.

    Not `asyncio.to_thread`: the interpreter waits at exit for the threads of the loop's default
    executor, so a database call that hangs there would hold up the end of the process after
    the caller gave up on it. Cancelling the await leaves the call to finish (or fail) by itself.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: tuple[T] | BaseException) -> None:
        if future.done():
            return  # the awaiting task was cancelled
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome[0])

    def work() -> None:
        outcome: tuple[T] | BaseException
        try:
            outcome = (function(),)
        except BaseException as e:  # noqa: BLE001 - handed over to the awaiting task
            outcome = e
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=work, name="millwatch-store", daemon=True).start()
    return await future
