"""What the alert engine costs: the scraper's side (the FleetState listener) and the engine's own
evaluation passes, for a large fleet on a real SQLite file. Talks to no network; stops by itself.

    .venv/bin/python bench/alert_engine.py --machines 10000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from scraper.alerting.config import Notifications
from scraper.alerting.engine import AlertEngine
from scraper.alerting.notifier import Notifier
from scraper.alerting.store import AlertStore
from scraper.inventory import parse_inventory
from scraper.state import FleetState, LastScrape, MachineView, Status, Threshold
from scraper.store import Store


def fleet_text(machines: int) -> str:
    lines = [
        "defaults:",
        "  thresholds: {machine_temperature_celsius: {warn: 80, alarm: 95}}",
        "  alerts:",
        "    - {statuses: [alarm, down, sensor_fault, stale], for: 1m}",
        "    - {metric: machine_temperature_celsius, statuses: [alarm], for: 30s}",
        "machines:",
    ]
    lines += [
        f"  - {{id: m{n:05}, url: 'http://127.0.0.1:9/metrics', site: s{n % 50}}}" for n in range(machines)
    ]
    return "\n".join(lines) + "\n"


def views(machines: int, at: float, hot_every: int) -> list[MachineView]:
    out = []
    for n in range(machines):
        hot = hot_every > 0 and n % hot_every == 0
        out.append(
            MachineView(
                id=f"m{n:05}",
                name=f"m{n:05}",
                url="http://127.0.0.1:9/metrics",
                site=f"s{n % 50}",
                status=Status.ALARM if hot else Status.UP,
                last_scrape=LastScrape(at, 0.01),
                readings={"machine_temperature_celsius": 97.0 if hot else 65.0},
                thresholds={"machine_temperature_celsius": Threshold(warn=80, alarm=95)},
            )
        )
    return out


async def main(machines: int, rounds: int) -> None:
    start = time.perf_counter()
    inventory = parse_inventory(fleet_text(machines))
    print(f"inventory of {machines} machines parsed in {time.perf_counter() - start:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{Path(folder) / 'bench.db'}")
        store.migrate()
        state = FleetState()
        put_alone = []
        for r in range(rounds):
            batch = views(machines, time.time() + r, 0)
            start = time.perf_counter()
            state.put(batch)
            put_alone.append(time.perf_counter() - start)

        alerts = AlertStore(store.sqlalchemy_url)
        clock = [time.time()]
        engine = AlertEngine(
            state,
            lambda: inventory,
            alerts,
            Notifier(Notifications(), alerts),
            tick_interval=3600,
            clock=lambda: clock[0],
        )
        await engine.start()
        while not engine.loaded:
            await asyncio.sleep(0.01)
        put_engine, passes, firing = [], [], []
        for r in range(rounds):
            batch = views(machines, clock[0] + 1, 100)
            start = time.perf_counter()
            state.put(batch)  # what a scrape pays: the listener hands the ids over
            put_engine.append(time.perf_counter() - start)
            await asyncio.sleep(0)
            start = time.perf_counter()
            await engine.evaluate()
            passes.append(time.perf_counter() - start)
            clock[0] += 31 if r == 0 else 1  # past the 30 s `for:` once: 1 % of the fleet fires
            if r == 0:
                state.put(views(machines, clock[0] + 1, 100))
                await asyncio.sleep(0)
                start = time.perf_counter()
                await engine.evaluate()
                firing.append(time.perf_counter() - start)
        opened = sum(engine.open_counts().values())
        await engine.stop()
        alerts.close()
        store.close()

    def ms(values: list[float]) -> str:
        return f"{1000 * min(values):.1f} / {1000 * sorted(values)[len(values) // 2]:.1f} ms"

    print(f"machines: {machines}, rules per machine: 2, rounds: {rounds}")
    print(f"FleetState.put of the whole fleet, no listener (min / median): {ms(put_alone)}")
    print(f"FleetState.put of the whole fleet, engine listening:           {ms(put_engine)}")
    print(f"engine pass over every machine (1 % pending or firing):         {ms(passes)}")
    print(f"engine pass that fires {opened} alerts (one SQLite transaction each): {ms(firing)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.machines, args.rounds))
