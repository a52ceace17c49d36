"""The alert engine: follows the fleet state and turns each machine's rules into alerts.

It listens to `FleetState` like the live hub does (the listener only hands the machine ids over to
the engine's event loop), so it never touches the scrape loop and works the same behind
`millwatch serve` with its scraper or a server following `millwatch scrape` processes.

For each machine and each of its rules (`alerts:` in machines.yaml):
- the condition holds → pending; held for the rule's `for:` → an alert `firing`, stored with its
  history, and notified (unless the machine is in a maintenance window);
- while it fires and is not acknowledged, it is notified again every `repeat_interval`;
- the condition gone (for `keep_firing_for:`) → `resolved`, and a resolved message when the alert
  had been notified.

After a restart nothing is sent again for what was already known: open alerts are read back from
the database with the time they were last notified, and only views scraped after the engine
started count (a machine `stale` because the central host itself was down is not the machine's
problem, and the saved views of before the restart are old news).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from scraper.alerting.maintenance import MaintenanceWindow, active_window
from scraper.alerting.message import FIRING, REPEAT, RESOLVED
from scraper.alerting.notifier import Notifier
from scraper.alerting.rules import AlertRule
from scraper.alerting.store import ACKNOWLEDGED, AlertRecord, AlertStore
from scraper.errors import StoreError
from scraper.event_wait import wait_event
from scraper.inventory import Inventory
from scraper.state import FleetState, MachineView, Maintenance, Status

log = logging.getLogger(__name__)

WINDOWS_REFRESH_SECONDS = 10.0


@dataclass
class _Tracked:
    """One (machine, rule): pending since when, clear since when, and its open alert if any."""

    pending_since: float | None = None
    clear_since: float | None = None
    alert: AlertRecord | None = None
    silenced_noted: bool = False


class AlertEngine:
    """Alerts of the machines in `state`, by the rules of the inventory `rules()` returns.

    `rules()` returns the current inventory (None while none is loaded). Evaluation happens on the
    engine's event loop, at once after a change and every `tick_interval` seconds (for `for:`
    durations, repeats and maintenance windows that begin or end).
    """

    def __init__(
        self,
        state: FleetState,
        rules: Callable[[], Inventory | None],
        store: AlertStore,
        notifier: Notifier,
        *,
        tick_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._rules = rules
        self.store = store
        self.notifier = notifier
        self._tick_interval = tick_interval
        self._clock = clock
        self._tracked: dict[tuple[str, str], _Tracked] = {}
        self._touched: set[str] = set()
        self._wake = asyncio.Event()
        # One pass at a time: a pass awaits the database between steps, and two interleaved passes
        # could fire or resolve the same alert twice.
        self._pass = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._windows: list[MaintenanceWindow] = []
        self._windows_loaded = float("-inf")
        self._maintenance: dict[str, Maintenance] = {}
        self._started = 0.0
        self.alerts_fired_total = 0
        self.notifications_silenced_total = 0
        self.evaluation_failures_total = 0
        self.loaded = False  # the open alerts and the windows have been read back

    # --- life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the fleet. The open alerts and the maintenance windows are read back from the
        database first thing in the engine's task, retried every tick while the database does not
        answer (the map works meanwhile; nothing is evaluated, so nothing is sent twice)."""
        self._loop = asyncio.get_running_loop()
        self._started = self._clock()
        await self.notifier.start()
        self._unsubscribe = self._state.subscribe(self._on_state_change)
        self._touched.update(v.id for v in self._state.snapshot())
        self._task = asyncio.create_task(self._run(), name="alert-engine")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.notifier.stop()

    def open_counts(self) -> Counter[tuple[str, str]]:
        """Open alerts by (state, severity), for the server's metrics."""
        return Counter(
            (t.alert.state, t.alert.severity) for t in self._tracked.values() if t.alert is not None
        )

    def windows(self) -> list[MaintenanceWindow]:
        return list(self._windows)

    # --- actions of the API ----------------------------------------------------------------------

    async def acknowledge(self, alert_id: int, *, actor: str, reason: str) -> AlertRecord:
        """Acknowledge an alert (stops its repeats). Raises AlertNotFound, AlertNotOpen, StoreError."""
        record = await asyncio.to_thread(
            self.store.acknowledge, alert_id, actor=actor, reason=reason, now=self._clock()
        )
        tracked = self._tracked.get(record.key)
        if tracked is not None and tracked.alert is not None and tracked.alert.id == alert_id:
            tracked.alert = replace(
                tracked.alert,
                state=ACKNOWLEDGED,
                acknowledged_at=record.acknowledged_at,
                acknowledged_by=actor,
                ack_reason=reason,
            )
        return record

    async def reload_windows(self) -> None:
        """Read the maintenance windows now (after the API changed them) and apply them."""
        self._windows = await asyncio.to_thread(self.store.windows)
        self._windows_loaded = self._clock()
        self._apply_maintenance(self._clock())
        self._wake.set()

    # --- evaluation ------------------------------------------------------------------------------

    def _on_state_change(self, changed: list[MachineView], removed: list[str]) -> None:
        # In the writer's thread: hand the ids over to the loop, nothing else.
        ids = [v.id for v in changed] + list(removed)
        loop = self._loop
        if loop is None or not ids:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            loop.call_soon_threadsafe(self._touch, ids)

    def _touch(self, ids: list[str]) -> None:
        self._touched.update(ids)
        self._wake.set()

    async def _load(self) -> None:
        for alert in await asyncio.to_thread(self.store.open_alerts):
            self._tracked[alert.key] = _Tracked(pending_since=alert.started_at, alert=alert)
        await self.reload_windows()
        self.loaded = True

    async def _run(self) -> None:
        while not self.loaded:
            try:
                await self._load()
            except StoreError as e:
                self.evaluation_failures_total += 1
                log.warning("alerts cannot read the database yet (retrying): %s", e)
                await asyncio.sleep(self._tick_interval)
        while True:
            await wait_event(self._wake, self._tick_interval)
            self._wake.clear()
            try:
                await self.evaluate()
            except StoreError as e:
                self.evaluation_failures_total += 1
                log.warning("alert evaluation postponed: %s", e)
            except Exception:  # the engine must outlive any one bad evaluation
                self.evaluation_failures_total += 1
                log.exception("alert evaluation failed")

    async def evaluate(self) -> None:
        """One pass: the machines that changed and those with pending or open alerts."""
        async with self._pass:
            await self._evaluate()

    async def _evaluate(self) -> None:
        now = self._clock()
        if now - self._windows_loaded >= WINDOWS_REFRESH_SECONDS:
            await self.reload_windows()
        else:
            self._apply_maintenance(now)
        inventory = self._rules()
        if inventory is None:
            return
        touched, self._touched = self._touched, set()
        machine_ids = touched | {machine_id for machine_id, _ in self._tracked}
        for machine_id in sorted(machine_ids):
            await self._evaluate_machine(machine_id, inventory, now)
        await self._notify_due(now)

    async def _evaluate_machine(self, machine_id: str, inventory: Inventory, now: float) -> None:
        machine = inventory.get(machine_id)
        if machine is None:
            for key in [k for k in self._tracked if k[0] == machine_id]:
                await self._clear(key, now, "machine removed from the inventory", force=True)
            return
        view = self._state.get(machine_id)
        if view is None:  # not published yet (the scraper is starting): nothing new to judge
            return
        rules = {rule.name: rule for rule in machine.alerts}
        for key in [k for k in self._tracked if k[0] == machine_id and k[1] not in rules]:
            await self._clear(key, now, "rule removed from the inventory", force=True)
        if not self._fresh(view):
            return
        for rule in rules.values():
            await self._step(view, rule, now)

    def _fresh(self, view: MachineView) -> bool:
        """Whether `view` is news from this run (see the module's docstring); disabled always is."""
        if view.status is Status.DISABLED:
            return True
        return view.last_scrape is not None and view.last_scrape.time >= self._started

    async def _step(self, view: MachineView, rule: AlertRule, now: float) -> None:
        key = (view.id, rule.name)
        tracked = self._tracked.get(key)
        condition = rule.condition(view)
        if condition is None:
            if tracked is not None:
                await self._clear(key, now, "condition cleared", keep_for=rule.keep_firing_for_seconds)
            return
        if tracked is None:
            tracked = self._tracked[key] = _Tracked(pending_since=now)
        tracked.clear_since = None
        if tracked.alert is not None or now - (tracked.pending_since or now) < rule.for_seconds:
            return
        tracked.alert = await asyncio.to_thread(
            self.store.fire,
            machine_id=view.id,
            rule=rule.name,
            severity=rule.severity_of(condition),
            level=condition.level,
            reason=condition.reason,
            site=view.site,
            labels=dict(view.labels),
            started_at=tracked.pending_since or now,
            now=now,
        )
        self.alerts_fired_total += 1
        log.info("alert %d firing: %s %s (%s)", tracked.alert.id, view.id, rule.name, condition.reason)

    async def _clear(
        self, key: tuple[str, str], now: float, detail: str, *, keep_for: float = 0.0, force: bool = False
    ) -> None:
        tracked = self._tracked[key]
        alert = tracked.alert
        if alert is None:
            del self._tracked[key]
            return
        if not force:
            if tracked.clear_since is None:
                tracked.clear_since = now
            if now - tracked.clear_since < keep_for:
                return
        await asyncio.to_thread(self.store.resolve, alert.id, now, detail)
        del self._tracked[key]
        log.info("alert %d resolved: %s %s (%s)", alert.id, alert.machine_id, alert.rule, detail)
        resolved = replace(alert, state="resolved", resolved_at=now)
        if alert.last_notified_at is not None and self.notifier.settings.send_resolved:
            if alert.machine_id in self._maintenance:
                self.notifications_silenced_total += 1
            else:
                self.notifier.submit(RESOLVED, resolved)

    async def _notify_due(self, now: float) -> None:
        repeat = self.notifier.settings.repeat_interval
        due: list[tuple[_Tracked, str]] = []
        for tracked in self._tracked.values():
            alert = tracked.alert
            if alert is None or alert.state != "firing":
                continue
            if alert.last_notified_at is not None and now - alert.last_notified_at < repeat:
                continue
            if alert.machine_id in self._maintenance:
                if not tracked.silenced_noted:
                    tracked.silenced_noted = True
                    self.notifications_silenced_total += 1
                    window = self._maintenance[alert.machine_id].window
                    await asyncio.to_thread(
                        self.store.record_event, [alert.id], now, "silenced", f"maintenance window {window}"
                    )
                continue
            due.append((tracked, FIRING if alert.last_notified_at is None else REPEAT))
        if not due:
            return
        await asyncio.to_thread(self.store.mark_notified, [t.alert.id for t, _ in due if t.alert], now)
        for tracked, kind in due:
            assert tracked.alert is not None
            tracked.alert = replace(tracked.alert, last_notified_at=now)
            self.notifier.submit(kind, tracked.alert)

    def _apply_maintenance(self, now: float) -> None:
        mapping: dict[str, Maintenance] = {}
        if self._windows:
            live = [w for w in self._windows if not w.finished(now)]
            for view in self._state.snapshot():
                window = active_window(live, view, now)
                if window is not None:
                    mapping[view.id] = Maintenance(window.id, window.current_end(now), window.reason)
        if mapping != self._maintenance:
            self._maintenance = mapping
            self._state.set_maintenance(mapping)
