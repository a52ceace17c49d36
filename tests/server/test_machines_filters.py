"""`GET /api/machines` filters and counts, and `GET /api/machines/{id}`'s scrape health."""

from __future__ import annotations

import httpx
import pytest
from server_helpers import make_view

from scraper.errors import ScrapeError
from scraper.inventory import Machine
from scraper.state import FleetState, LastScrape, Location, PlanPosition, Status
from scraper.status import evaluate, failed


def _fleet(state: FleetState) -> None:
    state.put(
        [
            make_view(
                "press_14", name="Press 14", site="Berlin", labels={"line": "stamping"}, status=Status.ALARM
            ),
            make_view(
                "press_15", name="Press 15", site="Berlin", labels={"line": "stamping"}, status=Status.UP
            ),
            make_view("oven_01", name="Oven One", site="Lyon", labels={"line": "paint", "hall": "B"}),
            make_view("mill_07", name="Mill 7", site="Lyon", labels={"line": "casting"}, status=Status.DOWN),
            make_view("lathe_x", name="Lathe", site=None, labels={}, status=Status.UNKNOWN),
        ]
    )


def _ids(base: str, params: list[tuple[str, str]] | None = None) -> list[str]:
    answer = httpx.get(f"{base}/api/machines", params=params)
    assert answer.status_code == 200, answer.text
    return [m["id"] for m in answer.json()["machines"]]


def test_filters_by_status_site_label_and_text(state: FleetState, serve) -> None:
    _fleet(state)
    base = serve(state)

    assert _ids(base, [("status", "alarm"), ("status", "down")]) == ["mill_07", "press_14"]
    assert _ids(base, [("site", "lyon")]) == ["mill_07", "oven_01"]
    assert _ids(base, [("label", "line=stamping")]) == ["press_14", "press_15"]
    # Two values of one key: either; two keys: both.
    assert _ids(base, [("label", "line=paint"), ("label", "line=casting")]) == ["mill_07", "oven_01"]
    assert _ids(base, [("label", "line=paint"), ("label", "hall=B")]) == ["oven_01"]
    assert _ids(base, [("label", "line=paint"), ("label", "hall=A")]) == []
    # Text: name, id, site and label values, any case.
    assert _ids(base, [("q", "PRESS 14")]) == ["press_14"]
    assert _ids(base, [("q", "mill_0")]) == ["mill_07"]
    assert _ids(base, [("q", "berlin")]) == ["press_14", "press_15"]
    assert _ids(base, [("q", "Paint")]) == ["oven_01"]
    # Filters combine.
    assert _ids(base, [("site", "Berlin"), ("status", "up")]) == ["press_15"]
    assert _ids(base, [("q", "  ")]) == ["lathe_x", "mill_07", "oven_01", "press_14", "press_15"]


def test_counts_of_the_fleet_and_of_the_matched_machines(state: FleetState, serve) -> None:
    _fleet(state)
    base = serve(state)

    counts = httpx.get(f"{base}/api/machines", params={"site": "Berlin"}).json()["counts"]

    assert counts["total"] == 5 and counts["matched_total"] == 2
    assert counts["fleet"] == {
        "up": 2, "warn": 0, "alarm": 1, "sensor_fault": 0, "down": 1, "stale": 0, "disabled": 0, "unknown": 1,
    }  # fmt: skip
    assert counts["matched"] == {
        "up": 1, "warn": 0, "alarm": 1, "sensor_fault": 0, "down": 0, "stale": 0, "disabled": 0, "unknown": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ([("status", "purple")], "status"),
        ([("label", "no-equals-sign")], "label"),
        ([("label", "=value")], "label"),
        ([("q", "x" * 201)], "q"),
        ([("site", "s" * 201)], "site"),
        ([("label", f"k=v{i}") for i in range(21)], "label"),
        ([("label", "k=" + "v" * 300)], "label"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(state: FleetState, serve, params, field) -> None:
    _fleet(state)
    answer = httpx.get(f"{serve(state)}/api/machines", params=params)

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][:2] == ["query", field]


def test_detail_has_the_scrape_health_and_the_metrics_with_history(state: FleetState, serve) -> None:
    view = make_view(
        "press_14",
        status=Status.DOWN,
        reason="connection refused",
        last_scrape=LastScrape(
            time=1764136800.5, duration_seconds=0.25, error="connection refused", samples=0
        ),
        last_success_time=1764136700.0,
        consecutive_failures=3,
        plan_position=PlanPosition(0.25, 0.5),
    )
    state.put([view])

    body = httpx.get(f"{serve(state)}/api/machines/press_14").json()

    assert body["health"] == {
        "last_scrape_time": 1764136800.5,
        "last_duration_seconds": 0.25,
        "samples_scraped": 0,
        "last_error": "connection refused",
        "last_success_time": 1764136700.0,
        "consecutive_failures": 3,
        "interval_seconds": 15.0,
    }
    assert body["plan_position"] == {"x": 0.25, "y": 0.5}
    assert body["history_metrics"] == [
        "machine_pressure_bar",
        "machine_temperature_celsius",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "up",
    ]


def test_failures_in_a_row_are_counted_and_a_success_resets_them() -> None:
    from scraper.exposition import Sample

    machine = Machine(id="m1", name="M1", url="http://127.0.0.1:9/metrics", location=Location(1, 2))
    view = machine.initial_view()
    for n in (1, 2, 3):
        view = failed(view, ScrapeError("connection refused"), 100.0 + n, 0.1)
        assert view.consecutive_failures == n
        assert view.last_scrape is not None and view.last_scrape.samples == 0
    samples = [Sample("machine_temperature_celsius", {}, 60.0), Sample("up_time", {}, 1.0)]
    ok = evaluate(machine, samples, 200.0, 0.05)
    assert ok.consecutive_failures == 0
    assert ok.last_scrape == LastScrape(time=200.0, duration_seconds=0.05, error=None, samples=2)


def test_the_list_shows_each_change_though_unchanged_machines_are_encoded_once(
    state: FleetState, serve
) -> None:
    _fleet(state)
    base = serve(state)
    before = httpx.get(f"{base}/api/machines").json()

    press = state.get("press_15")
    assert press is not None
    state.put([press.with_changes(status=Status.WARN, reason="machine_temperature_celsius 81 ≥ warn 80")])
    state.replace_all([v for v in state.snapshot() if v.id != "lathe_x"])
    after = httpx.get(f"{base}/api/machines").json()

    changed = {m["id"]: m for m in after["machines"]}
    assert changed["press_15"]["status"] == "warn" and "lathe_x" not in changed
    assert [m for m in before["machines"] if m["id"] not in ("press_15", "lathe_x")] == [
        m for m in after["machines"] if m["id"] != "press_15"
    ]
    assert after["counts"]["fleet"]["warn"] == 1 and after["counts"]["total"] == 4


def test_view_texts_are_kept_per_view_and_forgotten_with_their_machine() -> None:
    from server.jsonout import dumps
    from server.view_json import ViewJson

    texts = ViewJson()
    view = make_view("m1")
    first = texts.text(view)
    assert texts.text(view) is first and first == dumps(view.to_dict())
    changed = view.with_changes(status=Status.DOWN)
    assert '"status":"down"' in texts.text(changed)
    others = [make_view(f"x{i}") for i in range(1500)]
    texts.array(others)
    texts.keep_only([changed])
    assert texts.text(changed) is texts.text(changed) and len(texts._texts) == 1
    assert texts.data(changed) == texts.text(changed).encode()


def test_the_gzip_answer_made_of_pieces_is_one_valid_stream_of_the_whole() -> None:
    """The list's gzip body is compressed in pieces (in parallel) and closed per request: any gzip
    reader (Python's, browsers', curl's) must read back exactly the plain answer, whatever the
    sizes, the non-ASCII text and the tail."""
    import gzip
    import random
    import zlib

    from server.list_cache import ListCache, deflate_pieces, finish_gzip

    rng = random.Random(5)
    words = ["press", "Luleå", "≥ warn 80", '"status":"up"', "{", "}", "0.5", "\u00e9"]
    for size in (0, 1, 1000, 3 * 1024 + 7, 200_000):
        data = " ".join(rng.choice(words) for _ in range(size // 4)).encode()[:size]
        for tail in (b"", b',"time":1796000000.25}'):
            body = finish_gzip(deflate_pieces(data, piece_bytes=1024), zlib.crc32(data), len(data), tail)
            assert gzip.decompress(body) == data + tail
            reader = zlib.decompressobj(31)  # as HTTP clients read it: one member, then the end
            assert reader.decompress(body) == data + tail and reader.eof and not reader.unused_data

    cache = ListCache()
    prefix = ("x" * 3_000_000).encode()
    zipped = cache.body((1, ()), lambda: prefix, "}", gzip=True)
    assert gzip.decompress(zipped) == prefix + b"}"
    assert len(zipped) < len(prefix) // 50


def test_the_list_is_the_same_gzip_or_plain_and_each_answer_has_its_own_time(
    state: FleetState, serve
) -> None:
    """Kept per fleet version: a second reader gets the same machines (compressed when it asks), a
    fresh server time, and a change of the fleet shows at once."""
    _fleet(state)
    base = serve(state)
    plain = httpx.get(f"{base}/api/machines", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    zipped = httpx.get(f"{base}/api/machines", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    refused = httpx.get(f"{base}/api/machines", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers
    first, second = plain.json(), zipped.json()  # httpx decompresses the gzip answer
    assert first["machines"] == second["machines"] and first["counts"] == second["counts"]
    assert second["time"] > first["time"]

    press = state.get("press_15")
    assert press is not None
    state.put([press.with_changes(status=Status.ALARM, reason="machine_temperature_celsius 99 ≥ alarm 95")])
    for encoding in ("gzip", "identity"):
        after = httpx.get(f"{base}/api/machines", headers={"Accept-Encoding": encoding}).json()
        assert {m["id"]: m["status"] for m in after["machines"]}["press_15"] == "alarm"
        assert after["counts"]["fleet"]["alarm"] == first["counts"]["fleet"]["alarm"] + 1
    filtered = httpx.get(f"{base}/api/machines", params={"status": "alarm"}).json()
    assert "press_15" in [m["id"] for m in filtered["machines"]]


def test_the_list_cache_keeps_few_answers_and_never_an_old_version() -> None:
    from server.list_cache import ListCache

    cache = ListCache(max_entries=2)
    built: list[int] = []

    def prefix(n: int) -> bytes:
        built.append(n)
        return b'{"n":' + str(n).encode()

    for n in (1, 1, 2, 3, 2, 1):
        cache.body((7, (n,)), lambda n=n: prefix(n), "}", gzip=False)
    assert built == [1, 2, 3, 1]  # 1 kept once; then pushed out by 3 (two at most, 1 used least)
    assert cache.body((8, (1,)), lambda: prefix(9), "}", gzip=True)  # a new version builds anew
    assert built[-1] == 9
    assert all(key[0] == 8 for key in cache._entries)
