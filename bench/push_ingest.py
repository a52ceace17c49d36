"""Push mode's central cost: batches per second through the real `POST /api/ingest`.

A real server (uvicorn, the millwatch app, SQLite or PostgreSQL) on 127.0.0.1 takes batches from
`--machines` push machines, each with its own key, sent by a few client threads for `--seconds`.
Every batch holds `--readings` readings of 3 values with new timestamps (so every value is
stored). Prints batches/s, values/s, the server process's CPU per 1000 batches and latency
percentiles. Stops by itself.

    .venv/bin/python bench/push_ingest.py --machines 50 --readings 15 --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import uvicorn

from millwatch_common.push_wire import batch_body
from scraper.state import FleetState
from scraper.store import Store
from server.app import create_app
from server.machine_keys import KeyStore
from server.settings import Settings

METRICS = ("machine_temperature_celsius", "machine_pressure_bar", "machine_speed_rpm")


@contextlib.contextmanager
def serving(settings: Settings, store: Store, keys: KeyStore) -> Iterator[str]:
    app = create_app(settings, state=FleetState(), store=store, scraper=None, keys=keys)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--machines", type=int, default=50)
    parser.add_argument("--readings", type=int, default=15, help="readings per batch (3 values each)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=4, help="client threads")
    parser.add_argument("--db", help="database URL (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = args.db or f"sqlite:///{root / 'bench.db'}"
        inventory = root / "machines.yaml"
        inventory.write_text(
            "machines:\n" + "".join(f"  - {{id: m{i:05d}, mode: push}}\n" for i in range(args.machines))
        )
        (root / "static").mkdir()
        store = Store(url)
        store.migrate()
        keys = KeyStore(url)
        machine_keys = [(f"m{i:05d}", keys.create(f"m{i:05d}")[1]) for i in range(args.machines)]
        settings = Settings(static_dir=root / "static", inventory=inventory, database_url=url)
        latencies: list[float] = []
        failures = 0
        lock = threading.Lock()
        process = psutil.Process()
        with serving(settings, store, keys) as base:
            stop_at = time.monotonic() + args.seconds
            cpu_before = process.cpu_times()

            def sender(index: int) -> None:
                nonlocal failures
                mine = machine_keys[index :: args.senders]
                start = time.time() - 86400 + index * 1e-3
                step = 0
                with httpx.Client(timeout=30) as client:
                    while time.monotonic() < stop_at:
                        machine_id, key = mine[step % len(mine)]
                        base_time = start + step * args.readings
                        readings = [
                            (base_time + r, dict.fromkeys(METRICS, 50.0 + r)) for r in range(args.readings)
                        ]
                        body = batch_body(
                            machine_id=machine_id,
                            batch_id=f"b{step}",
                            sequence=step,
                            sent_at=time.time(),
                            readings=readings,
                            serial_up=True,
                            last_reading_time=readings[-1][0],
                            system={"uptime_seconds": 100.0},
                        )
                        began = time.perf_counter()
                        answer = client.post(
                            f"{base}/api/ingest",
                            content=json.dumps(body),
                            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                        )
                        elapsed = time.perf_counter() - began
                        with lock:
                            latencies.append(elapsed)
                            if answer.status_code != 200:
                                failures += 1
                        step += 1

            threads = [threading.Thread(target=sender, args=(i,)) for i in range(args.senders)]
            began = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.monotonic() - began
            cpu_after = process.cpu_times()
        keys.close()
        store.close()
    # The client threads run in this process too: the CPU figure is the whole process (server + clients).
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    latencies.sort()
    count = len(latencies)
    print(
        f"machines={args.machines} readings/batch={args.readings} senders={args.senders} "
        f"db={'sqlite' if args.db is None else 'given'}"
    )
    values = count * args.readings * len(METRICS)
    print(f"batches: {count} in {wall:.1f}s = {count / wall:.1f}/s, values {values / wall:.0f}/s")
    print(f"process CPU (server and clients): {cpu / count * 1000:.2f} CPU-s per 1000 batches")
    print(
        f"latency p50 {latencies[count // 2] * 1000:.1f} ms, p99 {latencies[int(count * 0.99)] * 1000:.1f} ms"
    )
    print(f"failures: {failures}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
