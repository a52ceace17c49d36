"""What `GET /api/machines/{id}/history[.csv]` asks of the store, checked and bounded, and its CSV.

A request names a metric (the stored name, or a channel's short name that the machine's readings
resolve: `temperature` → `machine_temperature_celsius`), a range (`start`, `end`: Unix seconds or
ISO 8601; default the last hour) and a `step` (seconds or a duration such as `5m`; default the
smallest of `NICE_STEPS` giving at most `TARGET_POINTS` points). The store reads the raw samples or
a rollup, whichever the step allows (`scraper.store.history_resolution`). Refused with 422 and the
parameter's name: a range of more than `MAX_RANGE_SECONDS`, more than `MAX_POINTS` points, a bad
metric name, times that are not times.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi.exceptions import RequestValidationError

from millwatch_common.durations import parse_seconds
from millwatch_common.names import METRIC_NAME, READING_PREFIX
from scraper.scrape import SYNTHETIC_METRICS
from scraper.store import HistoryPoint, history_resolution
from server.jsonout import finite

DEFAULT_RANGE_SECONDS = 3600.0
TARGET_POINTS = 1000
MAX_POINTS = 10_000
# The hour rollups are kept 400 days by default; a longer range has nothing more to show.
MAX_RANGE_SECONDS = 400 * 86400.0
MAX_METRIC_CHARS = 200
MIN_STEP_SECONDS = 0.001  # the store keeps milliseconds
NICE_STEPS = (
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0, 172800.0, 604800.0,
)  # fmt: skip
CSV_HEADER = ("time", "min", "avg", "max", "count")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class HistoryQuery:
    """A checked request: what to ask `Store.history`."""

    machine_id: str
    metric: str
    start: float
    end: float
    step: float  # as the store uses it
    source: str  # "raw", "minute" or "hour"


def invalid(parameter: str, message: str, value: object = None) -> RequestValidationError:
    """A 422 in FastAPI's own shape, naming the query parameter."""
    return RequestValidationError(
        [{"loc": ("query", parameter), "msg": message, "type": "value_error", "input": value}]
    )


def history_metrics(readings: Iterable[str]) -> list[str]:
    """The metrics a machine has history for: its readings and the scrape series, sorted."""
    return sorted({*readings, *SYNTHETIC_METRICS})


def resolve_metric(metric: str, readings: Mapping[str, Any]) -> str:
    """The stored metric name for `metric`: itself when it is a valid name the machine does not
    know under a shorter channel name; `temperature` → the one reading `machine_temperature_*`."""
    if len(metric) > MAX_METRIC_CHARS or not METRIC_NAME.fullmatch(metric):
        raise invalid(
            "metric", "not a metric name (letters, digits, _ and :, not starting with a digit)", metric
        )
    if metric in readings or metric.startswith(READING_PREFIX):
        return metric
    full = READING_PREFIX + metric
    matches = sorted(k for k in readings if k == full or k.startswith(full + "_"))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise invalid("metric", f"channel {metric!r} is ambiguous: one of {', '.join(matches)}", metric)
    return metric


def parse_time(parameter: str, value: str) -> float:
    """Unix seconds from Unix seconds or ISO 8601 (a time without zone is UTC)."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise invalid(parameter, "expected Unix seconds or an ISO 8601 time", value) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        seconds = parsed.timestamp()
    if not math.isfinite(seconds) or seconds < 0:
        raise invalid(parameter, "expected a time after 1970", value)
    return seconds


def default_step(range_seconds: float) -> float:
    """The smallest of `NICE_STEPS` that gives at most `TARGET_POINTS` points over the range."""
    wanted = range_seconds / TARGET_POINTS
    return next((s for s in NICE_STEPS if s >= wanted), NICE_STEPS[-1])


def plan(
    machine_id: str,
    readings: Mapping[str, Any],
    *,
    metric: str,
    start: str | None,
    end: str | None,
    step: str | None,
    now: float,
) -> HistoryQuery:
    """The checked query of one request; RequestValidationError (422) naming the parameter."""
    resolved = resolve_metric(metric, readings)
    end_s = now if end is None else parse_time("end", end)
    start_s = end_s - DEFAULT_RANGE_SECONDS if start is None else parse_time("start", start)
    if not start_s < end_s:
        raise invalid("start", "start must be before end", start)
    if end_s - start_s > MAX_RANGE_SECONDS:
        raise invalid("start", f"the range is longer than {int(MAX_RANGE_SECONDS // 86400)} days", start)
    if step is None:
        wanted = default_step(end_s - start_s)
    else:
        try:
            wanted = parse_seconds(step)
        except ValueError as e:
            raise invalid("step", str(e), step) from None
        if not math.isfinite(wanted) or wanted < MIN_STEP_SECONDS:
            raise invalid("step", f"step must be at least {MIN_STEP_SECONDS} s", step)
    used, source = history_resolution(wanted)
    points = math.ceil((end_s - start_s) / used)
    if points > MAX_POINTS:
        least = (end_s - start_s) / MAX_POINTS
        raise invalid(
            "step",
            f"{points} points asked, at most {MAX_POINTS}: choose a step of at least {math.ceil(least)} s",
            step,
        )
    return HistoryQuery(machine_id, resolved, start_s, end_s, used, source)


def history_answer(query: HistoryQuery, points: list[HistoryPoint]) -> dict[str, Any]:
    """The JSON answer (`server.api_models.History`)."""
    return {
        "machine_id": query.machine_id,
        "metric": query.metric,
        "start": query.start,
        "end": query.end,
        "step": query.step,
        "source": query.source,
        "points": [
            {"time": p.time, "min": p.min, "avg": p.avg, "max": p.max, "count": p.count} for p in points
        ],
    }


def iso_utc(seconds: float) -> str:
    """ISO 8601 in UTC with a `Z`; milliseconds only when the time has them."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def history_csv(points: list[HistoryPoint]) -> str:
    """The points as CSV: a header row, times in ISO 8601 UTC, the numbers as the JSON writes them
    (an empty cell for a value that is not a finite number)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for p in points:
        writer.writerow(
            [iso_utc(p.time), *("" if v is None else repr(v) for v in finite([p.min, p.avg, p.max])), p.count]
        )
    return out.getvalue()


def csv_filename(query: HistoryQuery) -> str:
    """`<machine>_<metric>_<start>_<end>.csv` with times as compact UTC, nothing but [A-Za-z0-9._-]."""

    def stamp(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    name = f"{query.machine_id}_{query.metric}_{stamp(query.start)}_{stamp(query.end)}"
    return _UNSAFE_FILENAME.sub("_", name)[:200] + ".csv"
