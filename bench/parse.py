"""Samples per second of millwatch's exposition parser beside prometheus_client's.

Parses a real exporter's `/metrics` body (captured from an ExporterApp reading a simulated sensor)
and a larger synthetic one with labels, with `scraper.exposition.parse_exposition` (with and
without the machine limits; and as the scraper parses, with a machine's line cache kept from one
parse to the next) and `prometheus_client.parser.text_string_to_metric_families`:

    python bench/parse.py --seconds 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from scrape_fleet import capture_exposition

from scraper.exposition import parse_exposition, parse_samples
from scraper.limits import ScrapeLimits
from scraper.line_cache import LineCache


def rate(parse: Callable[[str], int], text: str, seconds: float) -> float:
    samples = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        samples += parse(text)
    return samples / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="time per cell (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="millwatch-parse-") as tmp:
        real = capture_exposition(Path(tmp)).decode()
    labelled = "# TYPE http_requests_total counter\n" + "".join(
        f'http_requests_total{{method="GET",path="/p{i}",code="200"}} {i}.5\n' for i in range(2000)
    )
    limits = ScrapeLimits()
    caches: dict[str, LineCache] = {}  # one per body, as the scraper keeps one per machine
    parsers: dict[str, Callable[[str], int]] = {
        "millwatch parse_exposition": lambda t: len(parse_exposition(t)),
        "millwatch parse_exposition, limits checked": lambda t: len(parse_exposition(t, limits=limits)),
        "millwatch parse_samples, limits checked, the machine's line cache warm": lambda t: len(
            parse_samples(t, caches.setdefault(t, LineCache()), None, limits)
        ),
        "prometheus_client text_string_to_metric_families": lambda t: sum(
            len(f.samples) for f in text_string_to_metric_families(t)
        ),
    }
    print(f"# {args.seconds:g} s per cell, Python {sys.version.split()[0]}")
    print("| parser | real exporter body (samples/s) | 2,000 labelled samples (samples/s) |")
    print("|---|---|---|")
    for name, parse in parsers.items():
        real_rate, labelled_rate = rate(parse, real, args.seconds), rate(parse, labelled, args.seconds)
        print(f"| {name} | {real_rate:,.0f} | {labelled_rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
