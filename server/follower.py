"""A server without scraper (`millwatch serve --no-scrape`) follows the database instead.

`millwatch scrape` processes write each machine's view into the store. On PostgreSQL they also
`NOTIFY millwatch_views` (scraper/notify.py): the follower LISTENs and reads the views again as
soon as one arrives (bursts gathered over `NOTIFY_GATHER_SECONDS`), so status changes reach
every server at once, without polling. Every `interval` seconds it re-applies the staleness rule
to what it holds (a machine whose scraper stopped sends nothing, and must turn `stale`), and
reads everything again every `FULL_READ_SECONDS` as a safety net. While its LISTEN connection is
down, and always on SQLite, it reads the views every `interval` seconds.

Between full reads it reads only the views saved since its last read (less `CHANGED_MARGIN_SECONDS`
for writers whose clocks run behind, or whose transactions commit late): at 10,000 machines a read
of every view cost most of a core each second. A machine removed from the database leaves the
state at the next full read.

A view is decoded only when its saved text differs from the one decoded before for that machine
(`SavedViews`): the margin above means every read returns the views of the last ten seconds again,
and at 10,000 machines (1,000 saved a second) decoding them all again cost a third of a core. An
unchanged text also gives back the very same view object, so the state sees no change and the
JSON of the view kept by the server (server/view_json.py) stays valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from scraper.errors import StoreError
from scraper.event_wait import wait_event
from scraper.notify import ViewListener
from scraper.state import FleetState, MachineView
from scraper.status import apply_staleness
from scraper.store import Store, decode_view

log = logging.getLogger(__name__)

NOTIFY_GATHER_SECONDS = 0.1
FULL_READ_SECONDS = 60.0
CHANGED_MARGIN_SECONDS = 10.0


class SavedViews:
    """The views decoded from the database, by machine, with the text each was decoded from."""

    def __init__(self) -> None:
        self._decoded: dict[str, tuple[str, MachineView]] = {}

    def __len__(self) -> int:
        return len(self._decoded)

    def decode(self, rows: list[tuple[str, str]], *, full: bool) -> list[MachineView]:
        """The views of `rows` (`(machine id, text)`), decoding only new texts; unreadable rows are
        left out (and logged). `full`: the rows are every saved view, so machines not among them
        are forgotten."""
        views: list[MachineView] = []
        decoded = self._decoded
        for machine_id, text in rows:
            known = decoded.get(machine_id)
            if known is not None and known[0] == text:
                views.append(known[1])
                continue
            view = decode_view(machine_id, text)
            if view is None:
                decoded.pop(machine_id, None)
                continue
            decoded[machine_id] = (text, view)
            views.append(view)
        if full and len(decoded) > len(views):
            kept = {v.id for v in views}
            self._decoded = {k: e for k, e in decoded.items() if k in kept}
        return views


class StoreFollower:
    """Copies the machine views of `store` into `state`, on notification (PostgreSQL) or by polling."""

    def __init__(
        self,
        store: Store,
        state: FleetState,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.time,
        listen: bool | None = None,
    ) -> None:
        self._store = store
        self._state = state
        self._interval = interval
        self._clock = clock
        self._listen = store.dialect == "postgresql" if listen is None else listen
        self.reload_failures_total = 0
        self.reloads_total = 0
        self.last_error: str | None = None
        self.listener: ViewListener | None = None
        self._last_read: float | None = None  # when the last successful read began (our clock)
        self._saved = SavedViews()

    @property
    def notifications_total(self) -> int:
        """Notifications received over LISTEN (0 when polling)."""
        return 0 if self.listener is None else self.listener.notifications_total

    async def reload_once(self, *, full: bool = True) -> bool:
        """Read the views once and put them into the state; False (state untouched) when the read fails.

        `full`: every view, and machines no longer saved leave the state; else only the views saved
        since the last read (all of them when there was none).
        """
        started = self._clock()
        since = None if full or self._last_read is None else self._last_read - CHANGED_MARGIN_SECONDS
        try:
            rows = await asyncio.to_thread(self._store.load_view_texts, changed_since=since)
        except StoreError as e:
            self.reload_failures_total += 1
            if self.last_error != str(e):
                log.error("cannot read machine states from the database: %s", e)
            self.last_error = str(e)
            return False
        if self.last_error is not None:
            log.info("reading machine states from the database again")
        self.last_error = None
        self.reloads_total += 1
        views = self._saved.decode(rows, full=since is None)
        now = self._clock()
        if since is None:
            self._state.replace_all(apply_staleness(v, now) for v in views)
        else:
            self._state.put([apply_staleness(v, now) for v in views])
        self._last_read = started
        return True

    def sweep_staleness(self) -> None:
        """Re-apply the staleness rule to the views held (no database read)."""
        now = self._clock()
        changed = []
        for view in self._state.snapshot():
            swept = apply_staleness(view, now)
            if swept is not view:
                changed.append(swept)
        self._state.put(changed)

    async def run(self) -> None:
        """Follow until cancelled (the caller does the first `reload_once`)."""
        if not self._listen:
            last_full = time.monotonic()
            while True:
                await asyncio.sleep(self._interval)
                full = time.monotonic() - last_full >= FULL_READ_SECONDS
                if await self.reload_once(full=full) and full:
                    last_full = time.monotonic()
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def notified() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody follows any more
                loop.call_soon_threadsafe(wake.set)

        listener = ViewListener(self._store, notified)
        self.listener = listener
        listener.start()
        last_full = time.monotonic()
        try:
            while True:
                await wait_event(wake, self._interval)
                if wake.is_set():
                    await asyncio.sleep(NOTIFY_GATHER_SECONDS)  # one read for a burst of notifications
                    wake.clear()
                    await self.reload_once(full=False)
                elif not listener.connected or time.monotonic() - last_full >= FULL_READ_SECONDS:
                    full = time.monotonic() - last_full >= FULL_READ_SECONDS
                    if await self.reload_once(full=full) and full:
                        last_full = time.monotonic()
                else:
                    self.sweep_staleness()
        finally:
            await asyncio.to_thread(listener.stop)
