"""`GET /api/machines/{id}/history` and `…/history.csv` over a real store (SQLite, PostgreSQL) holding
known samples: raw and rollup ranges, the CSV's numbers equal to the JSON's, bounds, access."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from auth_helpers import VIEWER, Accounts, bearer, login
from server_helpers import make_view
from support import database_url

from scraper.exposition import Sample
from scraper.state import FleetState
from scraper.store import SampleBatch, Store

METRIC = "machine_temperature_celsius"
INTERVAL = 15.0
HOURS = 4
# Whole hours in the past, so that every bucket of every source is complete.
BASE = math.floor(1764136800 / 3600) * 3600.0


def _value(i: int) -> float:
    return 60.0 + (i * 7) % 13 + (0.25 if i % 2 else 0.0)


SAMPLES = [(BASE + i * INTERVAL, _value(i)) for i in range(int(HOURS * 3600 / INTERVAL))]


def expected(start: float, end: float, step: float, width: float | None) -> list[dict[str, float]]:
    """What the store must answer, worked out here from the samples: raw samples by their time, a
    rollup's buckets (width seconds) by their start, both in [start, end], grouped per step."""
    groups: dict[float, list[float]] = {}
    for t, v in SAMPLES:
        selected = t if width is None else t - t % width
        if start <= selected <= end:
            groups.setdefault(selected - selected % step, []).append(v)
    return [
        {"time": k, "min": min(vs), "avg": sum(vs) / len(vs), "max": max(vs), "count": len(vs)}
        for k, vs in sorted(groups.items())
    ]


def _filled_store(backend: str, tmp_path: Path) -> Store:
    store = Store(database_url(backend, tmp_path))
    store.migrate()
    # The view too: a server without scraper shows the machines the store holds.
    view = make_view("press_14", readings={METRIC: 61.0, "machine_pressure_bar": 1.0})
    store.write([SampleBatch("press_14", t, [Sample(METRIC, {}, v)]) for t, v in SAMPLES], [view])
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def base(request: pytest.FixtureRequest, tmp_path: Path, state: FleetState, serve) -> Iterator[str]:
    """The server over a store with SAMPLES, on each database."""
    store = _filled_store(request.param, tmp_path)
    try:
        yield serve(state, store=store)
    finally:
        store.close()


@pytest.fixture
def sqlite_base(tmp_path: Path, state: FleetState, serve) -> Iterator[str]:
    """The same on SQLite only: for what the database has no part in (the parameters' checks)."""
    store = _filled_store("sqlite", tmp_path)
    try:
        yield serve(state, store=store)
    finally:
        store.close()


def _history(base: str, **params: object) -> httpx.Response:
    return httpx.get(f"{base}/api/machines/press_14/history", params=params, timeout=30)


def _close(points: list[dict[str, float]], wanted: list[dict[str, float]]) -> None:
    assert [p["time"] for p in points] == [w["time"] for w in wanted]
    for p, w in zip(points, wanted, strict=True):
        assert p["count"] == w["count"] and p["min"] == w["min"] and p["max"] == w["max"]
        assert math.isclose(p["avg"], w["avg"], rel_tol=1e-12)


@pytest.mark.parametrize(
    ("start", "end", "step", "source", "width"),
    [
        (BASE + 600, BASE + 1200, 30, "raw", None),
        (BASE, BASE + 2 * 3600, 300, "minute", 60.0),
        (BASE, BASE + 3 * 3600, 90, "minute", 60.0),  # rounded down to 60
        (BASE, BASE + HOURS * 3600, 3600, "hour", 3600.0),
        (BASE, BASE + HOURS * 3600, "2h", "hour", 3600.0),
    ],
)
def test_history_from_raw_samples_and_rollups(base: str, start, end, step, source, width) -> None:
    answer = _history(base, metric=METRIC, start=start, end=end, step=step)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    used = {30: 30.0, 300: 300.0, 90: 60.0, 3600: 3600.0, "2h": 7200.0}[step]
    assert (body["machine_id"], body["metric"], body["source"], body["step"]) == (
        "press_14",
        METRIC,
        source,
        used,
    )
    assert (body["start"], body["end"]) == (start, end)
    wanted = expected(start, end, used, width)
    assert wanted, "the case must select samples"
    _close(body["points"], wanted)


def test_a_channel_name_and_iso_times_are_understood(base: str) -> None:
    iso = _history(
        base, metric="temperature", start="2025-11-26T06:00:00Z", end="2025-11-26T07:00:00+00:00", step="5m"
    )
    unix = _history(base, metric=METRIC, start=BASE, end=BASE + 3600, step=300)

    assert iso.status_code == 200, iso.text
    assert BASE == datetime.fromisoformat("2025-11-26T06:00:00+00:00").timestamp()
    assert iso.json() == unix.json()


def test_defaults_are_the_last_hour_with_at_most_a_thousand_points(base: str) -> None:
    body = _history(base, metric=METRIC).json()

    assert math.isclose(body["end"] - body["start"], 3600)
    assert body["step"] == 5.0 and body["source"] == "raw"
    assert body["points"] == []  # the samples are a year old


def test_the_csv_has_the_numbers_of_the_json(base: str) -> None:
    params = {"metric": METRIC, "start": BASE, "end": BASE + 2 * 3600, "step": 600}
    points = _history(base, **params).json()["points"]

    answer = httpx.get(f"{base}/api/machines/press_14/history.csv", params=params)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="press_14_{METRIC}_20251126T060000Z_20251126T080000Z.csv"'
    )
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8"))))
    assert rows[0] == ["time", "min", "avg", "max", "count"]
    assert len(points) == 13  # 12 steps and the minute that starts at `end`
    assert len(rows) == len(points) + 1
    for row, point in zip(rows[1:], points, strict=True):
        assert row[0].endswith("Z")
        assert datetime.fromisoformat(row[0]).timestamp() == point["time"]
        assert [float(row[1]), float(row[2]), float(row[3]), int(row[4])] == [
            point["min"], point["avg"], point["max"], point["count"],
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "metric"),
        ({"metric": "1bad name"}, "metric"),
        ({"metric": "m" * 201}, "metric"),
        ({"metric": METRIC, "start": "yesterday"}, "start"),
        ({"metric": METRIC, "end": "-5"}, "end"),
        ({"metric": METRIC, "start": BASE + 10, "end": BASE}, "start"),
        ({"metric": METRIC, "start": BASE - 500 * 86400, "end": BASE}, "start"),
        ({"metric": METRIC, "start": BASE, "end": BASE + 86400, "step": "1"}, "step"),  # 86,400 points
        ({"metric": METRIC, "step": "0"}, "step"),
        ({"metric": METRIC, "step": "fast"}, "step"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(sqlite_base: str, params, field) -> None:
    for path in ("history", "history.csv"):
        answer = httpx.get(f"{sqlite_base}/api/machines/press_14/{path}", params=params)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"][:2] == ["query", field]


def test_too_many_points_says_which_step_would_do(sqlite_base: str) -> None:
    answer = _history(sqlite_base, metric=METRIC, start=BASE, end=BASE + 86400, step=1)

    assert "at most 10000" in answer.json()["detail"][0]["msg"]
    assert "at least 9 s" in answer.json()["detail"][0]["msg"]


def test_unknown_machine_is_404(sqlite_base: str) -> None:
    for path in ("history", "history.csv"):
        answer = httpx.get(f"{sqlite_base}/api/machines/nope/{path}", params={"metric": METRIC})
        assert answer.status_code == 404
        assert answer.json() == {"detail": "no machine 'nope'"}


def test_history_needs_a_viewer(state: FleetState, serve, accounts: Accounts) -> None:
    accounts.store.write([], [make_view("press_14")])
    base = serve(state, store=accounts.store, anonymous_read=False)
    url = f"{base}/api/machines/press_14/history"

    assert httpx.get(url, params={"metric": METRIC}).status_code == 401
    assert (
        httpx.get(url, params={"metric": METRIC}, headers=bearer(accounts.revoked_token)).status_code == 401
    )
    assert httpx.get(url, params={"metric": METRIC}, headers=bearer(accounts.viewer_token)).status_code == 200
    with login(base, *VIEWER) as viewer:
        assert viewer.get("/api/machines/press_14/history.csv", params={"metric": METRIC}).status_code == 200


def test_without_a_database_history_is_503(state: FleetState, serve) -> None:
    state.put([make_view("press_14")])
    answer = httpx.get(f"{serve(state)}/api/machines/press_14/history", params={"metric": METRIC})

    assert answer.status_code == 503
    assert "no database" in answer.json()["detail"]
