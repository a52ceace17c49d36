"""The status rules: what colour a machine gets on the map, and the one-line reason why.

Pure functions of their arguments (no clock, no I/O), so every rule is unit-tested directly.

Order of the rules after a scrape:
1. disabled in the inventory               -> `disabled`
2. the scrape failed                       -> `down`, reason = the error's text; last readings kept
3. `millwatch_serial_up` is 0              -> `sensor_fault`, "serial sensor not reporting";
   except while the exporter is younger than its `stale_after` and no line came yet: the sensor
   has not had the time to send its first line, so the machine is `up` with the reason
   "waiting for the sensor's first line" (an exporter that just started is not a fault)
4. a value at or above its alarm limit     -> `alarm`; else at or above its warn limit -> `warn`
5. otherwise                               -> `up`
A push machine (`evaluate_push`) follows rules 1 and 3 to 5 for each batch it sends. Between
scrapes, `apply_staleness` turns a view that has not been refreshed for 3 x interval + timeout
(a push machine: its `stale_after_seconds`, push_stale_intervals x push_interval) into `stale`,
with a reason that names that limit ("no scrape for over 50s"), not the growing age: the reason
stays the same from sweep to sweep, so a stale fleet is not sent to every browser again each time
(the page shows the last scrape's time and age itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from math import isfinite
from operator import itemgetter, not_

from millwatch_common.names import MACHINE_INFO_METRIC, READING_PREFIX
from scraper.body_template import picker
from scraper.errors import ScrapeError
from scraper.exposition import ParsedSamples, Sample
from scraper.inventory import Machine
from scraper.line_cache import SeriesRef
from scraper.state import LastScrape, MachineView, Status, SystemSummary, Threshold

SERIAL_UP = "millwatch_serial_up"
SERIAL_LAST_READING = "millwatch_serial_last_reading_timestamp_seconds"
SERIAL_STALE_AFTER = "millwatch_serial_stale_after_seconds"
SERIAL_START = "millwatch_serial_start_time_seconds"
PROCESS_START = "process_start_time_seconds"  # for exporters without SERIAL_START
DEFAULT_STALE_AFTER_SECONDS = 30.0  # the exporter's default, for exporters that do not say theirs
WAITING_FOR_FIRST_LINE = "waiting for the sensor's first line"
NOT_A_READING = frozenset({MACHINE_INFO_METRIC})
STALE_AFTER_INTERVALS = 3


def readings_of(samples: Sequence[Sample]) -> dict[str, float]:
    """Sensor readings: unlabelled, finite samples named `machine_*` (but not `machine_info`)."""
    return _readings(_Unlabelled.of(samples).finite)


def system_summary(samples: Sequence[Sample], scraped_at: float) -> SystemSummary:
    """The machine PC's health from the exporter's `system_*` samples (absent figures stay None)."""
    return _Unlabelled.of(samples).system(scraped_at)


class _Unlabelled:
    """What the rules read of a scrape's samples, gathered in one pass over them: the unlabelled
    values (the last of a name wins), the finite ones, and the disks' sizes by mount point."""

    __slots__ = ("plain", "finite", "disk_total", "disk_free")

    def __init__(self) -> None:
        self.plain: dict[str, float] = {}
        self.finite: dict[str, float] = {}
        self.disk_total: dict[str, float] = {}
        self.disk_free: dict[str, float] = {}

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> _Unlabelled:
        if isinstance(samples, ParsedSamples):
            shape = samples.shape
            if shape is not None:
                # Read through the body's template: the picks are the same at every scrape.
                picks = shape.derived.get(_PICKS_KEY)
                if picks is None:
                    picks = shape.derived[_PICKS_KEY] = _Picks(samples.series)
                return picks.gather(samples.values)
            names: list[str] = list(map(_NAME, samples.series))
            labels: list[dict[str, str]] = list(map(_LABELS, samples.series))
            values = samples.values
        else:
            names = [s.name for s in samples]
            labels = [s.labels for s in samples]
            values = [s.value for s in samples]
        gathered = cls()
        # In C, no Python per sample (a scrape has ~115): the unlabelled ones picked by a mask.
        unlabelled = list(map(not_, labels))
        gathered.set_plain(list(compress(names, unlabelled)), list(compress(values, unlabelled)))
        for name, sample_labels, value in compress(zip(names, labels, values), map(_IS_DISK, names)):
            mount = sample_labels.get("mountpoint")
            if mount is not None:
                gathered.add_disk(name == _DISK_TOTAL, mount, value)
        return gathered

    def set_plain(self, names: Sequence[str], values: Sequence[float]) -> None:
        """The unlabelled samples, in order: a dict of them (the last of a name wins), and the
        finite ones the same dict when, as nearly always, every value is finite."""
        self.plain = dict(zip(names, values))
        if all(map(isfinite, values)):
            self.finite = self.plain.copy()
        else:
            self.finite = {n: v for n, v in zip(names, values) if isfinite(v)}

    def add_disk(self, total: bool, mount: str, value: float) -> None:
        """A disk's size (`total`) or free bytes at `mount`; not a finite value: not counted."""
        if isfinite(value):
            (self.disk_total if total else self.disk_free)[mount] = value

    def system(self, scraped_at: float) -> SystemSummary:
        plain, disk_total, disk_free = self.finite, self.disk_total, self.disk_free
        boot = plain.get("system_boot_time_seconds")
        total = plain.get("system_memory_total_bytes")
        available = plain.get("system_memory_available_bytes")
        disk_ratios = [
            _clamp(1 - disk_free[m] / size) for m, size in disk_total.items() if size > 0 and m in disk_free
        ]
        cpu = plain.get("system_cpu_usage_ratio")
        return SystemSummary(
            uptime_seconds=None if boot is None or boot <= 0 else max(0.0, scraped_at - boot),
            cpu_usage_ratio=None if cpu is None else _clamp(cpu),
            memory_used_ratio=None if not total or available is None else _clamp(1 - available / total),
            disk_used_ratio=max(disk_ratios) if disk_ratios else None,
        )


class _Picks:
    """What `_Unlabelled.of` picks from a body's samples, worked out once per body shape: the
    unlabelled samples' names and places, the disks' sizes' places with their mount points."""

    __slots__ = ("_disks", "_names", "_pick")

    def __init__(self, series: list[SeriesRef]) -> None:
        unlabelled = [n for n, ref in enumerate(series) if not ref.labels]
        self._names = [series[n].name for n in unlabelled]
        self._pick = picker(unlabelled)
        self._disks = [
            (n, ref.name == _DISK_TOTAL, ref.labels["mountpoint"])
            for n, ref in enumerate(series)
            if ref.name in _DISK_METRICS and "mountpoint" in ref.labels
        ]

    def gather(self, values: list[float]) -> _Unlabelled:
        """As `_Unlabelled.of` gathers them, from a scrape's values."""
        gathered = _Unlabelled()
        gathered.set_plain(self._names, self._pick(values))
        for n, total, mount in self._disks:
            gathered.add_disk(total, mount, values[n])
        return gathered


_PICKS_KEY = "status"
_DISK_TOTAL = "system_disk_total_bytes"
_DISK_METRICS = frozenset({_DISK_TOTAL, "system_disk_free_bytes"})
_IS_DISK = _DISK_METRICS.__contains__
_NAME, _LABELS = itemgetter(0), itemgetter(1)  # of a `SeriesRef`


def _readings(finite: dict[str, float]) -> dict[str, float]:
    return {
        name: value
        for name, value in finite.items()
        if name.startswith(READING_PREFIX) and name not in NOT_A_READING
    }


def plain_finite_values(samples: Sequence[Sample]) -> dict[str, float]:
    """The finite values of the unlabelled samples by name (the last of a name wins)."""
    return _Unlabelled.of(samples).finite


@dataclass(frozen=True)
class Crossing:
    """A value at or above one of its limits."""

    metric: str
    value: float
    level: Status  # WARN or ALARM
    limit: float

    def text(self) -> str:
        return f"{self.metric} {format_number(self.value)} ≥ {self.level.value} {format_number(self.limit)}"


def crossings(values: dict[str, float], thresholds: dict[str, Threshold]) -> list[Crossing]:
    """Every threshold crossed, worst first: alarms before warnings, then by how far past the limit."""
    found: list[Crossing] = []
    for metric, threshold in thresholds.items():
        value = values.get(metric)
        if value is None or not math.isfinite(value):
            continue
        if threshold.alarm is not None and value >= threshold.alarm:
            found.append(Crossing(metric, value, Status.ALARM, threshold.alarm))
        elif threshold.warn is not None and value >= threshold.warn:
            found.append(Crossing(metric, value, Status.WARN, threshold.warn))
    return sorted(found, key=lambda c: (c.level != Status.ALARM, -_excess(c), c.metric))


def judge(
    values: dict[str, float],
    thresholds: dict[str, Threshold],
    serial_up: float | None,
    last_reading: float | None,
    now: float,
    *,
    waiting_for_sensor: bool = False,
) -> tuple[Status, str | None]:
    """Rules 3 to 5 for a machine that answered: sensor fault, then thresholds, else up.

    `waiting_for_sensor`: the exporter just started and its sensor has sent no line yet (see
    `waiting_for_first_line`), so a serial_up of 0 is not a fault yet.
    """
    if serial_up is not None and serial_up == 0:
        if waiting_for_sensor:
            return Status.UP, WAITING_FOR_FIRST_LINE
        return Status.SENSOR_FAULT, _sensor_fault_reason(last_reading, now)
    found = crossings(values, thresholds)
    if found:
        return found[0].level, found[0].text() + (f", +{len(found) - 1} more" if len(found) > 1 else "")
    return Status.UP, None


def evaluate(machine: Machine, samples: Sequence[Sample], scraped_at: float, duration: float) -> MachineView:
    """The view after a successful scrape of `machine` that returned `samples`.

    Thresholds apply to unlabelled samples of the metric they name (normally the `machine_*`
    readings). The view keeps the machine's identity from the inventory.
    """
    view = machine.initial_view()
    if not machine.enabled:
        return view
    gathered = _Unlabelled.of(samples)
    plain = gathered.plain
    status, reason = judge(
        plain,
        machine.thresholds,
        plain.get(SERIAL_UP),
        plain.get(SERIAL_LAST_READING),
        scraped_at,
        waiting_for_sensor=waiting_for_first_line(plain, scraped_at),
    )
    return view.with_changes(
        status=status,
        reason=reason,
        last_scrape=LastScrape(time=scraped_at, duration_seconds=duration, error=None, samples=len(samples)),
        last_success_time=scraped_at,
        readings=_readings(gathered.finite),
        system=gathered.system(scraped_at),
    )


def evaluate_push(
    machine: Machine,
    previous: MachineView | None,
    readings: dict[str, float],
    serial_up: bool,
    last_reading: float | None,
    system: SystemSummary,
    received_at: float,
    duration: float,
    samples: int | None = None,
) -> MachineView:
    """The view of a push machine after a batch received at `received_at`: the scrape rules.

    `readings` are the batch's newest value of each metric; a batch without readings (the
    machine had nothing new) keeps the previous ones. `serial_up` false is a sensor fault, as
    `millwatch_serial_up 0` is for a scraped machine. `last_scrape` records the batch (`samples`:
    how many it carried).
    """
    view = machine.initial_view()
    if not machine.enabled:
        return view
    kept = dict(previous.readings) if previous is not None and previous.mode == machine.mode else {}
    current = {**kept, **{k: v for k, v in readings.items() if math.isfinite(v)}}
    status, reason = judge(current, machine.thresholds, 1.0 if serial_up else 0.0, last_reading, received_at)
    return view.with_changes(
        status=status,
        reason=reason,
        last_scrape=LastScrape(time=received_at, duration_seconds=duration, error=None, samples=samples),
        last_success_time=received_at,
        readings=current,
        system=system,
    )


def waiting_for_first_line(plain: dict[str, float], scraped_at: float) -> bool:
    """The exporter started less than its `stale_after` ago and its sensor has sent no line yet.

    `plain` holds the scrape's unlabelled samples. Needs the exporter's start time
    (`millwatch_serial_start_time_seconds`, else `process_start_time_seconds`); without it,
    nothing is excused.
    """
    last = plain.get(SERIAL_LAST_READING)
    if last is not None and last > 0:
        return False
    started = plain.get(SERIAL_START, plain.get(PROCESS_START))
    if started is None or not math.isfinite(started) or started <= 0:
        return False
    grace = plain.get(SERIAL_STALE_AFTER, DEFAULT_STALE_AFTER_SECONDS)
    if not math.isfinite(grace) or grace < 0:
        grace = DEFAULT_STALE_AFTER_SECONDS
    return scraped_at - started < grace


def failed(previous: MachineView, error: ScrapeError, scraped_at: float, duration: float) -> MachineView:
    """The view after a failed scrape: `down` with the error's text, last readings and system kept.

    A disabled machine stays `disabled` (only its last scrape is recorded). Failures in a row are
    counted (`consecutive_failures`; a success sets it back to 0).
    """
    last = LastScrape(time=scraped_at, duration_seconds=duration, error=str(error), samples=0)
    failures = previous.consecutive_failures + 1
    if not previous.enabled:
        return previous.with_changes(
            status=Status.DISABLED, reason=None, last_scrape=last, consecutive_failures=failures
        )
    return previous.with_changes(
        status=Status.DOWN, reason=str(error), last_scrape=last, consecutive_failures=failures
    )


def stale_after(view: MachineView, scrape_timeout_seconds: float | None = None) -> float:
    """Seconds without a scrape after which a view is stale: 3 x interval + timeout.

    Without the timeout (the view does not carry it), the interval stands in for it: the
    inventory guarantees the timeout is shorter than the interval.
    """
    timeout = view.scrape_interval_seconds if scrape_timeout_seconds is None else scrape_timeout_seconds
    return STALE_AFTER_INTERVALS * view.scrape_interval_seconds + timeout


def apply_staleness(
    view: MachineView, now: float, *, scrape_timeout_seconds: float | None = None
) -> MachineView:
    """`view` turned `stale` if it is enabled, was scraped once, and not since `stale_after` seconds.

    Its reason names the limit that was passed ("no scrape for over 50s" for a 15 s interval and a
    5 s timeout), so it does not change while the machine stays stale; everything else is kept, so
    the page still shows the last readings and the time of the last scrape. A view that is not
    stale, or already is with that reason, comes back unchanged (the same object).
    """
    if not view.enabled or view.last_scrape is None or view.status in (Status.DISABLED, Status.UNKNOWN):
        return view
    push = view.stale_after_seconds is not None
    limit = (
        view.stale_after_seconds
        if view.stale_after_seconds is not None
        else stale_after(view, scrape_timeout_seconds)
    )
    if now - view.last_scrape.time <= limit:
        return view
    reason = push_stale_reason(limit) if push else stale_reason(limit)
    if view.status is Status.STALE and view.reason == reason:
        return view
    return view.with_changes(status=Status.STALE, reason=reason)


def stale_reason(limit_seconds: float) -> str:
    """The reason of a stale view: "no scrape for over 50s" (`limit_seconds` as `format_age` writes it)."""
    return f"no scrape for over {format_age(limit_seconds)}"


def push_stale_reason(limit_seconds: float) -> str:
    """The reason of a stale push machine: "no data pushed for over 45s"."""
    return f"no data pushed for over {format_age(limit_seconds)}"


def format_number(value: float) -> str:
    """A reading as people write it: 95, 97.2, 1.02, 1480 (at most 6 significant digits)."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def format_age(seconds: float) -> str:
    """A coarse age: "94s" below 2 minutes, "12m" below 2 hours, "5h" below 2 days, then "3d"."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 7200:
        return f"{int(seconds // 60)}m"
    if seconds < 172800:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def _sensor_fault_reason(last_reading: float | None, scraped_at: float) -> str:
    reason = "serial sensor not reporting"
    if last_reading is not None and math.isfinite(last_reading) and last_reading > 0:
        reason += f", last reading {format_age(scraped_at - last_reading)} ago"
    return reason


def _excess(crossing: Crossing) -> float:
    scale = abs(crossing.limit) or 1.0
    return (crossing.value - crossing.limit) / scale


def _clamp(ratio: float) -> float:
    return min(1.0, max(0.0, ratio))
