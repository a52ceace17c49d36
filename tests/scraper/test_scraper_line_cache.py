"""The per-machine line cache of the parser: the same samples and errors as a cold parse, bounded,
and the machine's limits still enforced on the lines it knows."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from scraper_helpers import (
    FakeExporter,
    async_wait_until,
    machine_yaml,
    mangled,
    run,
    running,
    write_inventory,
)

from scraper.errors import BadExposition, LimitExceeded, SampleLimitExceeded, ScrapeError
from scraper.exposition import MAX_LINE_LENGTH, Sample, parse_exposition, parse_samples
from scraper.limits import ScrapeLimits
from scraper.line_cache import LineCache
from scraper.state import FleetState, Status
from scraper.store import SampleBatch, Store


def exposition() -> str:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests.", ["method", "path"], registry=registry)
    requests.labels("GET", "/metrics").inc(3)
    requests.labels("POST", 'we"ird\\path').inc()
    Gauge("machine_temperature_celsius", "Temperature.", registry=registry).set(72.5)
    Gauge("machine_nan", "Not a number.", registry=registry).set(float("nan"))
    Histogram("latency_seconds", "Latency.", registry=registry, buckets=(0.1, 1.0)).observe(0.5)
    return generate_latest(registry).decode()


def outcome(parse: Callable[..., Sequence[Sample]], *args: object) -> object:
    """What `parse(*args)` gives: the samples as comparable tuples (NaN as a string), or the
    error's type and text."""
    try:
        samples = parse(*args)
    except ScrapeError as e:
        return (type(e).__name__, str(e))
    return [(s.name, sorted(s.labels.items()), repr(s.value)) for s in samples]


def test_a_warm_cache_gives_the_samples_of_a_cold_parse_scrape_after_scrape() -> None:
    cache = LineCache()
    limits = ScrapeLimits()
    for value in (1.0, 2.5, float("nan"), -3e-9):
        text = exposition().replace("72.5", repr(value))
        cold = parse_exposition(text, limits=limits)
        warm = parse_samples(text, cache, None, limits)
        assert outcome(list, warm) == outcome(list, cold)
        assert not any(s.name.endswith("_created") for s in warm), "_created samples stay dropped"
    assert len(cache) > 0


def test_random_mutations_of_known_lines_give_the_cold_parsers_samples_or_error() -> None:
    """Mangled versions of lines the cache knows: the warm parse must not accept anything the
    careful parser rejects, nor report another error or line."""
    base = exposition() + "plain_gauge 1\n" + 'labelled{a="1"} 2\n' + "crlf_gauge 3\r\n"
    alphabet = ['"', "\\", "{", "}", " ", "\t", "\n", "\r", "#", "\x00", "_", "é", "e", "+", ".", "1", "١"]
    rng = random.Random(20261130)
    for _ in range(1500):
        cache = LineCache()
        parse_samples(base, cache)
        text = mangled(base, rng, alphabet, 4)
        assert outcome(parse_samples, text, cache) == outcome(parse_exposition, text), text


def test_new_values_of_known_lines_give_the_cold_parsers_samples_or_error() -> None:
    """Scrape after scrape only the values of known lines change, to every spelling a number's
    text may take or almost take: the warm parse must give what the careful parser gives, samples
    or error (the warm way checks a value's text itself before float() sees it)."""
    base = exposition() + "plain_gauge 1\n" + 'labelled{a="1"} 2\n' + "# a free comment\n"
    base += "jobs_created 3\n"
    spellings = ["0", "-1.5", "+Inf", "-inf", "NaN", "nan", "Infinity", "1e9", "1E-3", ".5", "5.", "1_0"]
    spellings += ["0x1f", "1e", "--1", "inf1", "١", "1.0.0", "e5", "+", "9" * 70, "0" * 64]
    lines = base.split("\n")
    rng = random.Random(20261201)
    cache = LineCache()
    parse_samples(base, cache)
    for _ in range(400):
        changed = [
            line.rpartition(" ")[0] + " " + rng.choice(spellings) if line and line[0] != "#" else line
            for line in lines
        ]
        text = "\n".join(changed)
        assert outcome(parse_samples, text, cache) == outcome(parse_exposition, text), text
    order = "jobs_created 1\n# TYPE jobs counter\njobs_total 2\njobs_created 3\n"
    parse_samples(order, cache)
    assert [s.name for s in parse_samples(order, cache)] == ["jobs_created", "jobs_total"]


@pytest.mark.parametrize(
    ("value", "detail"),
    [("1_000", "bad value '1_000'"), ("0x10", "bad value"), ("1e", "bad value")],
)
def test_a_known_line_with_a_bad_value_is_rejected_with_its_line(value: str, detail: str) -> None:
    cache = LineCache()
    parse_samples('ok 1\nm{a="x"} 1\n', cache)
    with pytest.raises(BadExposition) as caught:
        parse_samples(f'ok 1\nm{{a="x"}} {value}\n', cache)
    assert caught.value.line == 2
    assert detail in caught.value.detail


def test_a_known_line_grown_past_the_line_length_is_rejected() -> None:
    cache = LineCache()
    parse_samples("m 1\n", cache)
    with pytest.raises(BadExposition, match="line 1: line longer than"):
        parse_samples("m 1" + "0" * MAX_LINE_LENGTH + "\n", cache)


def test_a_changed_label_value_makes_a_new_series(tmp_path: Path) -> None:
    cache = LineCache()
    first = parse_samples('# TYPE job_state gauge\njob_state{job="a-17"} 1\n', cache)
    second = parse_samples('# TYPE job_state gauge\njob_state{job="a-18"} 1\n', cache)
    assert list(first) == [Sample("job_state", {"job": "a-17"}, 1.0)]
    assert list(second) == [Sample("job_state", {"job": "a-18"}, 1.0)]
    store = Store(f"sqlite:///{tmp_path / 'mw.db'}")
    store.migrate()
    try:
        store.write([SampleBatch("m1", 100.0, first), SampleBatch("m1", 115.0, second)])
        assert store.query_samples("m1", "job_state", 0, 200, {"job": "a-17"}) == [(100.0, 1.0)]
        assert store.query_samples("m1", "job_state", 0, 200, {"job": "a-18"}) == [(115.0, 1.0)]
    finally:
        store.close()


def test_the_cache_stays_within_its_bound_when_labels_change_at_every_scrape() -> None:
    cache = LineCache(max_lines=50)
    for scrape in range(40):
        text = "# HELP up_since Start.\nup_since 1\n" + "".join(
            f'request{{id="{scrape}-{i}"}} {i}\n' for i in range(7)
        )
        samples = parse_samples(text, cache)
        assert len(cache) <= 50
        assert [s.labels for s in samples][1:] == [{"id": f"{scrape}-{i}"} for i in range(7)]
    # The unchanged lines are known again after the cache was emptied.
    assert "up_since" in cache.series and "# HELP up_since Start." in cache.comments


def test_limits_are_enforced_on_lines_the_cache_knows() -> None:
    cache = LineCache()
    text = 'm{path="/a/long/path"} 1\nm{path="/b"} 2\nn 3\n'
    assert len(parse_samples(text, cache, None, ScrapeLimits())) == 3
    # The machine's limits are lowered by an inventory change: the known lines are checked again.
    with pytest.raises(LimitExceeded, match="label_value_length_limit 5 exceeded"):
        parse_samples(text, cache, None, ScrapeLimits(label_value_length_limit=5))
    with pytest.raises(LimitExceeded, match="label_limit 0 exceeded"):
        parse_samples(text, cache, None, ScrapeLimits(label_limit=0))
    with pytest.raises(SampleLimitExceeded, match="sample_limit 2 exceeded"):
        parse_samples(text, cache, None, ScrapeLimits(sample_limit=2))
    with pytest.raises(SampleLimitExceeded, match="sample_limit 1 exceeded"):
        parse_samples(text, cache, 1, ScrapeLimits())
    assert len(parse_samples(text, cache, None, ScrapeLimits())) == 3


def test_created_samples_follow_the_type_lines_of_each_scrape() -> None:
    cache = LineCache()
    typed = "# TYPE jobs counter\njobs_total 4\njobs_created 1.7e9\n"
    untyped = "jobs_total 4\njobs_created 1.7e9\n"
    assert [s.name for s in parse_samples(typed, cache)] == ["jobs_total"]
    # Without the TYPE line `jobs_created` is an ordinary sample, even from the cache.
    assert [s.name for s in parse_samples(untyped, cache)] == ["jobs_total", "jobs_created"]
    assert [s.name for s in parse_samples(typed, cache)] == ["jobs_total"]
    values = parse_samples(typed.replace("4", "nan"), cache).values
    assert len(values) == 1 and math.isnan(values[0])


def test_a_reload_lowering_a_machines_limits_applies_to_the_lines_it_already_sent(
    tmp_path: Path, sqlite_store: Store, exporter: FakeExporter
) -> None:
    hourly = {"scrape_interval": "1h", "scrape_timeout": "2s"}  # scraped here by hand only
    path = write_inventory(
        tmp_path / "machines.yaml",
        [machine_yaml("a", exporter.url, **hourly), machine_yaml("b", exporter.url, **hourly)],
    )
    state = FleetState()

    async def scenario() -> None:
        async with running(path, sqlite_store, state) as service:
            assert (await service.scrape_now("a")).status is Status.UP
            assert (await service.scrape_now("a")).status is Status.UP  # every line known by now
            assert (await service.scrape_now("b")).status is Status.UP
            write_inventory(path, [machine_yaml("a", exporter.url, label_value_length_limit=2, **hourly)])
            await async_wait_until(
                lambda: service.inventory is not None and service.inventory.get("b") is None,
                what="the reload",
            )
            view = await service.scrape_now("a")
            assert view.status is Status.DOWN
            assert view.reason is not None and "label_value_length_limit 2 exceeded" in view.reason
            # b left the inventory, and its line cache with it: memory follows the fleet.
            assert set(service._lines) == {"a"}

    run(scenario())


def exporter_like_body(values: Sequence[str]) -> str:
    """A body shaped like the millwatch exporter's: HELP and TYPE before every metric, one blank
    line nowhere, a newline at the end."""
    lines: list[str] = []
    for number, value in enumerate(values):
        lines += [f"# HELP m{number} Metric {number}.", f"# TYPE m{number} gauge"]
        lines.append(f'm{number}{{port="COM{number}"}} {value}' if number % 2 else f"m{number} {value}")
    return "\n".join(lines) + "\n"


def test_a_body_shaped_like_the_last_is_read_through_its_template() -> None:
    """Scrape after scrape of an unchanged shape the template reads the values (no line-by-line
    pass), and gives what the careful parser gives."""
    cache = LineCache()
    parse_samples(exporter_like_body(["1"] * 6), cache)
    template = cache.template.template
    assert template is not None, "a template is made of a body parsed whole"
    for values in (["2"] * 6, ["-1.5", "NaN", "+Inf", "1e9", ".5", "0"]):
        text = exporter_like_body(values)
        assert outcome(parse_samples, text, cache) == outcome(parse_exposition, text)
        assert cache.template.template is template, "the same shape keeps its template"


def test_every_change_of_shape_gives_the_careful_parsers_samples_or_error() -> None:
    """Lines added, removed, moved, emptied or filled, a comment changed, a value the cached way
    refuses: the template never reads a body it does not fit."""
    base = exporter_like_body(["1", "2", "3", "4"])
    lines = base.split("\n")
    changes = {
        "a line added": base + "extra 5\n",
        "a blank line filled": base + "late 1",
        "a blank line inserted": base.replace("\n# HELP m2", "\n\n# HELP m2"),
        "a sample line removed": base.replace("m2 3\n", ""),
        "two samples swapped": "\n".join(lines[:2] + [lines[5]] + lines[3:5] + [lines[2]] + lines[6:]),
        "a comment changed": base.replace("Metric 1.", "Metric one."),
        "a label value changed": base.replace('port="COM1"', 'port="COM9"'),
        "a timestamp added": base.replace("m2 3\n", "m2 3 1700000000000\n"),
        "an exemplar added": base.replace("m2 3\n", 'm2 3 # {a="b"} 1\n'),
        "a value with an underscore": base.replace("m2 3\n", "m2 3_0\n"),
        "a value not a number": base.replace("m2 3\n", "m2 three\n"),
        "a NUL in a value": base.replace("m2 3\n", "m2 3\x00\n"),
        "a carriage return": base.replace("m2 3\n", "m2 3\r\n"),
        "a line too long": base.replace("m2 3\n", "m2 3" + "0" * MAX_LINE_LENGTH + "\n"),
        "two spaces": base.replace("m2 3\n", "m2  3\n"),
        "EOF before the end": base.replace("# HELP m3", "# EOF\n# HELP m3"),
        "a _created sample": base + "# TYPE jobs counter\njobs_total 1\njobs_created 2\n",
    }
    for what, text in changes.items():
        cache = LineCache()
        parse_samples(base, cache)
        assert cache.template.template is not None
        assert outcome(parse_samples, text, cache) == outcome(parse_exposition, text), what
        # And back: the first shape again is read as the careful parser reads it.
        assert outcome(parse_samples, base, cache) == outcome(parse_exposition, base), what


def test_the_sample_limit_holds_on_a_body_read_through_its_template() -> None:
    cache = LineCache()
    body = exporter_like_body(["1"] * 5)
    parse_samples(body, cache)
    with pytest.raises(SampleLimitExceeded):
        parse_samples(body, cache, 4)


def test_a_body_whose_shape_keeps_changing_is_read_line_by_line_and_its_template_comes_back() -> None:
    cache = LineCache()
    for scrape in range(40):
        text = exporter_like_body(["1"] * 4).replace("COM1", f"COM{scrape}")
        assert outcome(parse_samples, text, cache) == outcome(parse_exposition, text)
    stable = exporter_like_body(["1"] * 4)
    for _ in range(70):  # at most the back-off's longest wait
        parse_samples(stable, cache)
    template = cache.template.template
    assert template is not None, "a stable shape gets its template again"
    parse_samples(stable.replace(" 1\n", " 2\n"), cache)
    assert cache.template.template is template
