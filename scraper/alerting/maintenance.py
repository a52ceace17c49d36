"""Maintenance windows: a machine, a site or a label that sends no notification for a while.

A window is `[starts_at, ends_at)` in Unix seconds; a `weekly` one repeats every 7 days from its
first occurrence (so it must last less than a week). Pure functions: the caller passes `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scraper.state import MachineView

WEEK_SECONDS = 7 * 86400.0
SCOPES = ("machine", "site", "label")


@dataclass(frozen=True)
class MaintenanceWindow:
    """One window. `target` is a machine id (scope `machine`), a site name (`site`) or `name=value`
    (`label`)."""

    id: int
    scope: str
    target: str
    starts_at: float
    ends_at: float
    weekly: bool
    reason: str
    created_by: str
    created_at: float

    def active(self, now: float) -> bool:
        """True when `now` falls in this window (or, for a weekly one, in one of its repetitions)."""
        if now < self.starts_at:
            return False
        if not self.weekly:
            return now < self.ends_at
        return (now - self.starts_at) % WEEK_SECONDS < self.ends_at - self.starts_at

    def current_end(self, now: float) -> float:
        """When the occurrence that holds `now` ends (only meaningful while `active(now)`)."""
        if not self.weekly:
            return self.ends_at
        return now - (now - self.starts_at) % WEEK_SECONDS + (self.ends_at - self.starts_at)

    def finished(self, now: float) -> bool:
        """True when this window will never be active again (a weekly window never finishes)."""
        return not self.weekly and now >= self.ends_at

    def covers(self, view: MachineView) -> bool:
        """True when the machine of `view` is in this window's scope."""
        if self.scope == "machine":
            return view.id == self.target
        if self.scope == "site":
            return view.site == self.target
        name, _, value = self.target.partition("=")
        return view.labels.get(name) == value

    def to_dict(self, now: float) -> dict[str, Any]:
        """The JSON shape of a window in `GET /api/maintenance`."""
        return {
            "id": self.id,
            "scope": self.scope,
            "target": self.target,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "weekly": self.weekly,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "active": self.active(now),
        }


def active_window(
    windows: Iterable[MaintenanceWindow], view: MachineView, now: float
) -> MaintenanceWindow | None:
    """The window that holds `view`'s machine at `now` and ends last, or None."""
    found = [w for w in windows if w.covers(view) and w.active(now)]
    return max(found, key=lambda w: w.current_end(now)) if found else None


def maintenance_of(
    windows: Iterable[MaintenanceWindow], view: MachineView, now: float
) -> dict[str, Any] | None:
    """The `maintenance` field of a machine's JSON: `{"window": id, "until": T, "reason": text}` or None."""
    window = active_window(windows, view, now)
    if window is None:
        return None
    return {"window": window.id, "until": window.current_end(now), "reason": window.reason}
