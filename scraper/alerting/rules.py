"""Alert rules: which statuses of a machine (or which crossed limit of one sensor channel) notify,
after how long, and how severe. Written under `alerts:` in machines.yaml (docs/alerts.md).

Pure data and pure functions, imported by the inventory: nothing here reads a clock or a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from scraper.state import MachineView, Status

ALERT_STATUSES: tuple[str, ...] = ("alarm", "warn", "down", "sensor_fault", "stale")
"""Statuses an alert rule may name (the scraper's statuses that mean something is wrong)."""

METRIC_STATUSES: tuple[str, ...] = ("alarm", "warn")
"""Statuses a rule on one sensor channel (`metric:`) may name: the limits of its thresholds."""

SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
"""Severities, worst first."""

_STATUS_SEVERITY = {"alarm": "critical", "down": "critical", "warn": "warning"}
# Statuses whose rule is only meaningful while the machine answers (its readings are current).
_ANSWERING = frozenset({Status.UP, Status.WARN, Status.ALARM})


def status_severity(status: str) -> str:
    """The severity of an alert whose rule writes none: `critical` for `alarm` and `down`, else `warning`."""
    return _STATUS_SEVERITY.get(status, "warning")


@dataclass(frozen=True)
class Condition:
    """A rule's condition holding for a machine: the status (or limit) that holds and why."""

    level: str  # one of ALERT_STATUSES
    reason: str


@dataclass(frozen=True)
class AlertRule:
    """One resolved rule of a machine. `name` is unique among the machine's rules and, with the
    machine id, identifies its alerts (`machine_id/name`)."""

    name: str
    statuses: frozenset[str]
    severity: str | None = None  # None: from the status that fired (`status_severity`)
    for_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0
    metric: str | None = None

    def severity_of(self, condition: Condition) -> str:
        return self.severity or status_severity(condition.level)

    def condition(self, view: MachineView) -> Condition | None:
        """The condition of this rule as it holds for `view`, or None when it does not.

        Without `metric`: the machine's status is one of `statuses` (reason: the status's reason).
        With `metric`: the machine answers and that channel's reading is at or above the limit
        (`alarm`, or `warn` below alarm) named in `statuses`.
        """
        if self.metric is None:
            if view.status.value in self.statuses:
                reason = f"{view.status.value}: {view.reason}" if view.reason else view.status.value
                return Condition(view.status.value, reason)
            return None
        if view.status not in _ANSWERING:
            return None
        value = view.readings.get(self.metric)
        threshold = view.thresholds.get(self.metric)
        if value is None or threshold is None:
            return None
        if threshold.alarm is not None and value >= threshold.alarm:
            level, limit = "alarm", threshold.alarm
        elif threshold.warn is not None and value >= threshold.warn:
            level, limit = "warn", threshold.warn
        else:
            return None
        if level not in self.statuses:
            return None
        return Condition(level, f"{self.metric} {value:g} ≥ {level} {limit:g}")


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule(name="status", statuses=frozenset({"alarm", "down", "sensor_fault", "stale"})),
)
"""The rules of a machine when neither it nor `defaults` writes `alerts:`: `alarm`, `down`,
`sensor_fault` and `stale` notify at once (`warn` only colours the map), severity by status."""
