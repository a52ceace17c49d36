"""The fleet's current state: one `MachineView` per machine, and who is told when one changes.

This is the contract between the scraper (which writes views) and the server (which reads
them and pushes changes over the WebSocket). `MachineView.to_dict()` writes the JSON shape of one
machine in `GET /api/machines` and in the WebSocket messages, whose one definition is the pydantic
model `scraper.view_model.Machine`; the web page's types are generated from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


class Status(str, Enum):
    """What the map colours mean, worst first in `SEVERITY` order."""

    UP = "up"
    WARN = "warn"
    ALARM = "alarm"
    SENSOR_FAULT = "sensor_fault"
    DOWN = "down"
    STALE = "stale"
    DISABLED = "disabled"
    UNKNOWN = "unknown"


# Higher is worse; used to colour a cluster by the worst status inside it.
SEVERITY: dict[Status, int] = {
    Status.DISABLED: 0,
    Status.UP: 1,
    Status.UNKNOWN: 2,
    Status.STALE: 3,
    Status.WARN: 4,
    Status.SENSOR_FAULT: 5,
    Status.DOWN: 6,
    Status.ALARM: 7,
}


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True)
class PlanPosition:
    """Where a machine is on its site's floor plan: fractions 0..1 of the image's width and height."""

    x: float
    y: float


@dataclass(frozen=True)
class Threshold:
    """A reading at or above `warn` is a warning, at or above `alarm` an alarm (None: no limit)."""

    warn: float | None = None
    alarm: float | None = None


@dataclass(frozen=True)
class SystemSummary:
    """The machine PC's own health, as the last successful scrape saw it."""

    uptime_seconds: float | None = None
    cpu_usage_ratio: float | None = None
    memory_used_ratio: float | None = None
    disk_used_ratio: float | None = None  # the fullest mount


@dataclass(frozen=True)
class LastScrape:
    time: float  # Unix seconds when the scrape started
    duration_seconds: float
    error: str | None = None  # the short text of the ScrapeError, None when it succeeded
    samples: int | None = (
        None  # samples the exporter sent (0 when it failed; push: the batch's); None: unknown
    )


@dataclass(frozen=True)
class Maintenance:
    """The maintenance window a machine is in (set by the alert engine through `FleetState`)."""

    window: int  # the window's id in GET /api/maintenance
    until: float  # Unix seconds when this occurrence of the window ends
    reason: str


@dataclass(frozen=True)
class MachineView:
    """One machine as the map and the API show it. Immutable: a change is a new view."""

    id: str
    name: str
    url: str
    site: str | None = None
    location: Location | None = None
    plan_position: PlanPosition | None = None
    labels: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    scrape_interval_seconds: float = 15.0
    status: Status = Status.UNKNOWN
    reason: str | None = None
    last_scrape: LastScrape | None = None
    last_success_time: float | None = None
    consecutive_failures: int = 0  # failed scrapes since the last successful one
    readings: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    system: SystemSummary = field(default_factory=SystemSummary)
    # "pull" (scraped) or "push" (sends to POST /api/ingest; `last_scrape` is then its last batch).
    mode: str = "pull"
    # Set for push machines: seconds without a batch after which the view is stale.
    stale_after_seconds: float | None = None
    maintenance: Maintenance | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of one machine (API and WebSocket). Never contains secrets."""
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "site": self.site,
            "location": None
            if self.location is None
            else {"lat": self.location.lat, "lon": self.location.lon},
            "plan_position": None
            if self.plan_position is None
            else {"x": self.plan_position.x, "y": self.plan_position.y},
            "labels": dict(self.labels),
            "enabled": self.enabled,
            "scrape_interval_seconds": self.scrape_interval_seconds,
            "status": self.status.value,
            "reason": self.reason,
            "last_scrape": None
            if self.last_scrape is None
            else {
                "time": self.last_scrape.time,
                "duration_seconds": self.last_scrape.duration_seconds,
                "error": self.last_scrape.error,
                "samples": self.last_scrape.samples,
            },
            "last_success_time": self.last_success_time,
            "consecutive_failures": self.consecutive_failures,
            "readings": dict(self.readings),
            "thresholds": {k: {"warn": t.warn, "alarm": t.alarm} for k, t in self.thresholds.items()},
            "system": {
                "uptime_seconds": self.system.uptime_seconds,
                "cpu_usage_ratio": self.system.cpu_usage_ratio,
                "memory_used_ratio": self.system.memory_used_ratio,
                "disk_used_ratio": self.system.disk_used_ratio,
            },
            "mode": self.mode,
            "stale_after_seconds": self.stale_after_seconds,
            "maintenance": None
            if self.maintenance is None
            else {
                "window": self.maintenance.window,
                "until": self.maintenance.until,
                "reason": self.maintenance.reason,
            },
        }

    def with_changes(self, **changes: Any) -> MachineView:
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MachineView:
        """The inverse of `to_dict` (for views read back from the store or the API), read through the
        model `scraper.view_model.Machine`: keys missing (a view stored by an older version) take
        their defaults, unknown keys are ignored.

        Raises pydantic's ValidationError (a ValueError) naming the field of a missing "id", "name"
        or "url" and of any value of the wrong type or an unknown status.
        """
        # Imported here: the model imports `Status` from this module.
        from scraper.view_model import Machine

        m = Machine.model_validate(data)
        return cls(
            id=m.id,
            name=m.name,
            url=m.url,
            site=m.site,
            location=None if m.location is None else Location(m.location.lat, m.location.lon),
            plan_position=None
            if m.plan_position is None
            else PlanPosition(m.plan_position.x, m.plan_position.y),
            labels=dict(m.labels),
            enabled=m.enabled,
            scrape_interval_seconds=m.scrape_interval_seconds,
            status=m.status,
            reason=m.reason,
            last_scrape=None
            if m.last_scrape is None
            else LastScrape(
                time=m.last_scrape.time,
                duration_seconds=m.last_scrape.duration_seconds,
                error=m.last_scrape.error,
                samples=m.last_scrape.samples,
            ),
            last_success_time=m.last_success_time,
            consecutive_failures=m.consecutive_failures,
            readings=dict(m.readings),
            thresholds={k: Threshold(warn=t.warn, alarm=t.alarm) for k, t in m.thresholds.items()},
            system=SystemSummary(**m.system.model_dump()),
            mode=m.mode,
            stale_after_seconds=m.stale_after_seconds,
            maintenance=None
            if m.maintenance is None
            else Maintenance(m.maintenance.window, m.maintenance.until, m.maintenance.reason),
        )


def plan_position_of(machine: object) -> PlanPosition | None:
    """The floor-plan position of an inventory machine (its `plan_position`, an object with `x` and
    `y` or a mapping), or None when it has none."""
    value: Any = getattr(machine, "plan_position", None)
    if value is None or isinstance(value, PlanPosition):
        return value
    if isinstance(value, Mapping):
        return PlanPosition(float(value["x"]), float(value["y"]))
    return PlanPosition(float(value.x), float(value.y))


Listener = Callable[[list[MachineView], list[str]], None]
"""Called with (changed or added views, ids of removed machines)."""


class FleetState:
    """Thread-safe map of machine id → current view, with change listeners.

    Listeners run synchronously in the writer's thread and must not block: the server's
    live hub hands the change over to its event loop with `call_soon_threadsafe`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._views: dict[str, MachineView] = {}
        self._listeners: list[Listener] = []
        # Which machines are in a maintenance window: owned by the alert engine, applied to every
        # view that is stored, so a writer that does not know about maintenance never erases it.
        self._maintenance: dict[str, Maintenance] = {}
        # Counts every change of the fleet: readers that derive something from the whole fleet (the
        # server's list answer) keep it until the version moves on.
        self.version = 0
        self._sorted: tuple[int, list[MachineView]] = (-1, [])

    def snapshot(self) -> list[MachineView]:
        """Every machine, sorted by id (a list of the caller's own)."""
        return list(self.versioned_snapshot()[1])

    def versioned_snapshot(self) -> tuple[int, list[MachineView]]:
        """The fleet's version and every machine, sorted by id (the list is shared: do not change it)."""
        with self._lock:
            if self._sorted[0] != self.version:
                self._sorted = (self.version, [self._views[k] for k in sorted(self._views)])
            return self._sorted

    def get(self, machine_id: str) -> MachineView | None:
        with self._lock:
            return self._views.get(machine_id)

    def put(self, views: Iterable[MachineView]) -> list[MachineView]:
        """Store views; listeners hear about those that differ from what was there. Returns them."""
        changed: list[MachineView] = []
        with self._lock:
            for view in views:
                view = self._with_maintenance(view)
                if self._views.get(view.id) != view:
                    self._views[view.id] = view
                    changed.append(view)
            if changed:
                self.version += 1
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener(changed, [])
        return changed

    def replace_all(self, views: Iterable[MachineView]) -> None:
        """Make the state exactly `views` (after an inventory reload): adds, changes and removals."""
        given = list(views)  # outside the lock: the iterable may read the state itself
        with self._lock:
            old = self._views
            new: dict[str, MachineView] = {}
            changed: list[MachineView] = []
            for view in given:
                view = self._with_maintenance(view)
                kept = old.get(view.id)
                if kept is not None and kept == view:
                    # The object held so far stays: readers that keep something per view object (the
                    # server's JSON text of each view) keep it valid through a reload.
                    new[view.id] = kept
                else:
                    new[view.id] = view
                    changed.append(view)
            removed = [k for k in old if k not in new]
            self._views = new
            if changed or removed:
                self.version += 1
            listeners = list(self._listeners)
        if changed or removed:
            for listener in listeners:
                listener(changed, removed)

    def set_maintenance(self, maintenance: Mapping[str, Maintenance]) -> None:
        """Make `maintenance` (machine id → its window) the machines in maintenance, every other
        machine out of it; listeners hear about the views that changed. Later views stored by
        `put` or `replace_all` carry their machine's maintenance too."""
        changed: list[MachineView] = []
        with self._lock:
            self._maintenance = dict(maintenance)
            for machine_id, view in self._views.items():
                updated = self._with_maintenance(view)
                if updated != view:
                    self._views[machine_id] = updated
                    changed.append(updated)
            if changed:
                self.version += 1
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener(changed, [])

    def _with_maintenance(self, view: MachineView) -> MachineView:
        wanted = self._maintenance.get(view.id)
        return view if view.maintenance == wanted else replace(view, maintenance=wanted)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns the function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
