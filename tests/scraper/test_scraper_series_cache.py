"""The store's series-id cache: bounded, and sized to the fleet so a scrape cycle does not evict
each machine just before its next scrape."""

from __future__ import annotations

from pathlib import Path

from scraper.series_cache import SeriesCache
from scraper.store import SERIES_CACHE_PER_MACHINE, Store


def ids_of(machine: int, series: int) -> dict[tuple[str, str], int]:
    return {(f"metric_{n}", "{}"): machine * 1000 + n for n in range(series)}


def cycle_hits(cache: SeriesCache, machines: int, series: int) -> int:
    """One scrape cycle over the fleet, as the store does it: look up, then remember what was missing."""
    hits = 0
    for machine in range(machines):
        if cache.get(f"m{machine}") is not None:
            hits += 1
        else:
            cache.put(f"m{machine}", ids_of(machine, series))
    return hits


def test_a_cache_smaller_than_the_fleet_misses_every_machine_and_a_resized_one_hits_them_all() -> None:
    cache = SeriesCache(max_entries=1_000)
    cycle_hits(cache, machines=12, series=100)
    # 12 machines of 100 series in a cache of 1,000: least recently used first means the machine
    # about to be scraped is always the one just evicted.
    assert cycle_hits(cache, machines=12, series=100) == 0
    assert len(cache) <= 1_000
    cache.resize(1_200)
    cycle_hits(cache, machines=12, series=100)
    assert cycle_hits(cache, machines=12, series=100) == 12
    cache.resize(500)  # smaller again: evicted down to the bound at once
    assert len(cache) <= 500


def test_the_store_sizes_its_cache_to_the_fleet_never_below_its_floor(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}", series_cache_size=5_000)
    try:
        store.fit_series_cache(10)
        assert store._series.max_entries == 5_000  # the floor it was opened with
        store.fit_series_cache(10_000)
        assert store._series.max_entries == 10_000 * SERIES_CACHE_PER_MACHINE
    finally:
        store.close()
