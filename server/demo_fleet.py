"""The simulated fleet of `millwatch demo`: machines at real industrial towns, some made to fail.

Pure planning (no I/O): which machine stands where, what it is called, and which failure it
simulates. The plan is reproducible (seeded by the fleet size) so a demo shows the same fleet each
time it runs with the same `--machines`.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Any


class Scenario(str, enum.Enum):
    """What a demo machine simulates; the status the map should end up showing is in the comment."""

    NORMAL = "normal"  # up
    OVERHEAT = "overheat"  # up, then after 20–40 s warn, then alarm
    HOT = "hot"  # alarm from the first scrape
    SILENT = "silent"  # sensor_fault: the serial sensor says nothing
    GARBAGE = "garbage"  # sensor_fault: the serial sensor sends only garbage
    UNREACHABLE = "unreachable"  # down: its exporter is never started (connection refused)
    DISABLED = "disabled"  # disabled in the inventory


# How many of each failure a fleet of 50 has; other sizes scale, at least one of each from 8 machines.
FAILURES_PER_50: dict[Scenario, int] = {
    Scenario.OVERHEAT: 2,
    Scenario.HOT: 1,
    Scenario.SILENT: 2,
    Scenario.GARBAGE: 1,
    Scenario.UNREACHABLE: 1,
    Scenario.DISABLED: 1,
}
# For fleets below 8, the failures that show most of the map's states come first.
SMALL_FLEET_ORDER = (Scenario.HOT, Scenario.SILENT, Scenario.UNREACHABLE, Scenario.OVERHEAT)
OVERHEAT_AFTER_SECONDS = (20.0, 40.0)
JITTER_DEGREES = 0.06  # a few km: machines of one town do not sit on one point


@dataclass(frozen=True)
class Site:
    town: str
    slug: str
    country: str
    lat: float
    lon: float


# Industrial towns, mostly in Europe, with their coordinates.
SITES: tuple[Site, ...] = (
    Site("Berlin", "berlin", "DE", 52.520, 13.405),
    Site("Duisburg", "duisburg", "DE", 51.434, 6.762),
    Site("Essen", "essen", "DE", 51.456, 7.012),
    Site("Dortmund", "dortmund", "DE", 51.514, 7.465),
    Site("Wolfsburg", "wolfsburg", "DE", 52.423, 10.787),
    Site("Stuttgart", "stuttgart", "DE", 48.776, 9.183),
    Site("Munich", "munich", "DE", 48.135, 11.582),
    Site("Chemnitz", "chemnitz", "DE", 50.828, 12.921),
    Site("Salzgitter", "salzgitter", "DE", 52.150, 10.333),
    Site("Ludwigshafen", "ludwigshafen", "DE", 49.477, 8.445),
    Site("Linz", "linz", "AT", 48.307, 14.286),
    Site("Graz", "graz", "AT", 47.071, 15.440),
    Site("Turin", "turin", "IT", 45.070, 7.687),
    Site("Milan", "milan", "IT", 45.464, 9.190),
    Site("Brescia", "brescia", "IT", 45.542, 10.212),
    Site("Bergamo", "bergamo", "IT", 45.698, 9.677),
    Site("Bilbao", "bilbao", "ES", 43.263, -2.935),
    Site("Zaragoza", "zaragoza", "ES", 41.649, -0.889),
    Site("Barcelona", "barcelona", "ES", 41.387, 2.169),
    Site("Porto", "porto", "PT", 41.158, -8.629),
    Site("Lyon", "lyon", "FR", 45.764, 4.836),
    Site("Saint-Étienne", "saint_etienne", "FR", 45.440, 4.387),
    Site("Lille", "lille", "FR", 50.629, 3.057),
    Site("Dunkirk", "dunkirk", "FR", 51.034, 2.377),
    Site("Liège", "liege", "BE", 50.633, 5.580),
    Site("Antwerp", "antwerp", "BE", 51.219, 4.403),
    Site("Rotterdam", "rotterdam", "NL", 51.924, 4.478),
    Site("Eindhoven", "eindhoven", "NL", 51.442, 5.470),
    Site("Sheffield", "sheffield", "GB", 53.381, -1.470),
    Site("Birmingham", "birmingham", "GB", 52.486, -1.890),
    Site("Manchester", "manchester", "GB", 53.481, -2.243),
    Site("Glasgow", "glasgow", "GB", 55.864, -4.252),
    Site("Gothenburg", "gothenburg", "SE", 57.709, 11.975),
    Site("Sandviken", "sandviken", "SE", 60.617, 16.776),
    Site("Eskilstuna", "eskilstuna", "SE", 59.367, 16.508),
    Site("Luleå", "lulea", "SE", 65.585, 22.155),
    Site("Tampere", "tampere", "FI", 61.498, 23.761),
    Site("Ostrava", "ostrava", "CZ", 49.821, 18.263),
    Site("Plzeň", "plzen", "CZ", 49.738, 13.374),
    Site("Katowice", "katowice", "PL", 50.265, 19.024),
    Site("Łódź", "lodz", "PL", 51.759, 19.456),
    Site("Wrocław", "wroclaw", "PL", 51.108, 17.039),
    Site("Győr", "gyor", "HU", 47.688, 17.650),
    Site("Košice", "kosice", "SK", 48.716, 21.261),
    Site("Timișoara", "timisoara", "RO", 45.749, 21.209),
    Site("Galați", "galati", "RO", 45.435, 28.008),
    Site("Kragujevac", "kragujevac", "RS", 44.013, 20.911),
    Site("Maribor", "maribor", "SI", 46.555, 15.646),
    Site("Bursa", "bursa", "TR", 40.189, 29.061),
    Site("Pittsburgh", "pittsburgh", "US", 40.441, -79.996),
    Site("Detroit", "detroit", "US", 42.331, -83.046),
    Site("Hamilton", "hamilton", "CA", 43.256, -79.871),
    Site("Monterrey", "monterrey", "MX", 25.687, -100.316),
    Site("São Paulo", "sao_paulo", "BR", -23.551, -46.633),
    Site("Johannesburg", "johannesburg", "ZA", -26.204, 28.047),
    Site("Pune", "pune", "IN", 18.520, 73.857),
    Site("Jamshedpur", "jamshedpur", "IN", 22.805, 86.203),
    Site("Nagoya", "nagoya", "JP", 35.182, 136.907),
    Site("Ulsan", "ulsan", "KR", 35.538, 129.311),
    Site("Shenzhen", "shenzhen", "CN", 22.543, 114.058),
    Site("Wollongong", "wollongong", "AU", -34.428, 150.893),
)

# Fictional manufacturers: (display name, id prefix).
COMPANIES: tuple[tuple[str, str], ...] = (
    ("IronCast", "ironcast"),
    ("Nordstahl", "nordstahl"),
    ("Vulcan Forge", "vulcanforge"),
    ("Precisa", "precisa"),
    ("Alpenmetall", "alpenmetall"),
    ("Rheinwerk", "rheinwerk"),
    ("Baltic Mill", "balticmill"),
    ("Atlas Press", "atlaspress"),
)
LINES = ("casting", "milling", "pressing", "welding", "stamping", "assembly", "painting", "finishing")


@dataclass(frozen=True)
class DemoMachine:
    """One machine of the demo fleet."""

    id: str
    name: str
    site: str
    lat: float
    lon: float
    labels: dict[str, str]
    scenario: Scenario
    overheat_after: float | None = None  # seconds after start (OVERHEAT only)

    @property
    def runs_exporter(self) -> bool:
        return self.scenario is not Scenario.UNREACHABLE


def failure_counts(size: int) -> dict[Scenario, int]:
    """How many machines of a fleet of `size` simulate each failure (the rest are normal)."""
    if size >= 8:
        return {s: max(1, round(n * size / 50)) for s, n in FAILURES_PER_50.items()}
    return dict.fromkeys(SMALL_FLEET_ORDER[: size // 2], 1)


def plan_fleet(size: int) -> list[DemoMachine]:
    """`size` machines with unique ids, spread over the sites, failures placed at random (seeded)."""
    if size < 1:
        raise ValueError(f"a fleet needs at least 1 machine, got {size}")
    rng = random.Random(size)
    scenarios = [s for s, n in failure_counts(size).items() for _ in range(n)]
    scenarios += [Scenario.NORMAL] * (size - len(scenarios))
    rng.shuffle(scenarios)
    sites = list(SITES)
    rng.shuffle(sites)
    numbers: dict[tuple[str, str], int] = {}
    machines = []
    for i, scenario in enumerate(scenarios):
        site = sites[i % len(sites)]
        company, prefix = COMPANIES[rng.randrange(len(COMPANIES))]
        number = numbers[(prefix, site.slug)] = numbers.get((prefix, site.slug), 0) + 1
        machines.append(
            DemoMachine(
                id=f"{prefix}_{site.slug}_{number:02d}",
                name=f"{company} {site.town} {number:02d}",
                site=site.town,
                lat=round(site.lat + rng.uniform(-JITTER_DEGREES, JITTER_DEGREES), 5),
                lon=round(site.lon + rng.uniform(-JITTER_DEGREES, JITTER_DEGREES), 5),
                labels={
                    "line": rng.choice(LINES),
                    "hall": str(rng.randint(1, 6)),
                    "demo_scenario": scenario.value,
                },
                scenario=scenario,
                overheat_after=round(rng.uniform(*OVERHEAT_AFTER_SECONDS), 1)
                if scenario is Scenario.OVERHEAT
                else None,
            )
        )
    return machines


def inventory_document(
    machines: list[DemoMachine], urls: dict[str, str], scrape_interval: float
) -> dict[str, Any]:
    """The inventory (as plain data for YAML) of `machines`, each scraped at `urls[id]`."""
    return {
        "defaults": {
            "scrape_interval": scrape_interval,
            # The timeout must stay below the interval; a loopback exporter answers in milliseconds.
            "scrape_timeout": round(min(5.0, scrape_interval * 0.8), 3),
            "thresholds": {"machine_temperature_celsius": {"warn": 80, "alarm": 95}},
        },
        "machines": [
            {
                "id": m.id,
                "name": m.name,
                "url": urls[m.id],
                "location": {"lat": m.lat, "lon": m.lon},
                "site": m.site,
                "labels": dict(m.labels),
                "enabled": m.scenario is not Scenario.DISABLED,
            }
            for m in machines
        ],
    }
