"""Scrape throughput and cost of the central scraper, against a loopback fleet.

A second process serves the `/metrics` body of a real exporter (captured from an ExporterApp
reading a simulated sensor) on N loopback ports, so the scraper's CPU is measured alone. This
process runs the real ScraperService (httpx, parser, status rules, SQLite store) for a fixed
time at each concurrency bound and prints one row per run:

    python bench/scrape_fleet.py --machines 500 --interval 5 --seconds 30 --concurrency 4 16 64

Everything talks to 127.0.0.1 only, and every loop is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from exporter.app import ExporterApp
from exporter.config import parse_config
from exporter.simulator import SimulatedSensor
from scraper.service import ScraperService
from scraper.state import FleetState, Status
from scraper.store import Store


def capture_exposition(folder: Path) -> bytes:
    """The /metrics body of a real exporter reading a simulated sensor."""
    with SimulatedSensor(interval=0.05, seed=1) as sensor:
        assert sensor.path is not None
        config = parse_config(
            {
                "machine": {"id": "bench", "name": "Bench"},
                "listen": "127.0.0.1:0",
                "serial": {"port": sensor.path},
                "buffer": {"path": str(folder / "bench-buffer.sqlite")},
            },
            "bench",
        )
        with ExporterApp(config) as app:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                body = httpx.get(app.url, timeout=5).content
                if b"machine_temperature_celsius " in body:
                    return body
                time.sleep(0.05)
    raise RuntimeError("the exporter never reported a reading")


async def serve_fleet(body: bytes, count: int, lifetime: float) -> None:
    """Serve `body` as /metrics on `count` loopback ports; print the ports; stop after `lifetime`."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
    )

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(answer, "127.0.0.1", 0, backlog=256) for _ in range(count)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps(ports), flush=True)
    await asyncio.sleep(lifetime)


def write_inventory(path: Path, ports: list[int], interval: float) -> None:
    lines = [
        "defaults:",
        f"  scrape_interval: {interval}",
        f"  scrape_timeout: {min(interval * 0.8, 5.0)}",
        "  thresholds:",
        "    machine_temperature_celsius: {warn: 80, alarm: 95}",
        "machines:",
    ]
    for i, port in enumerate(ports):
        lines.append(f"  - {{id: m{i:05d}, url: 'http://127.0.0.1:{port}/metrics'}}")
    path.write_text("\n".join(lines) + "\n")


async def run_once(inventory: Path, db: Path, concurrency: int, seconds: float) -> dict[str, float]:
    store = Store(f"sqlite:///{db}")
    store.migrate()
    state = FleetState()
    service = ScraperService(inventory, store, state, max_concurrency=concurrency)
    await service.start()
    # Let the first round (spread over the first two seconds) settle before measuring.
    await asyncio.sleep(3)
    scrapes0, failures0 = service.scrapes_total, service.scrape_failures_total
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    scrapes = service.scrapes_total - scrapes0
    failures = service.scrape_failures_total - failures0
    durations = sorted(v.last_scrape.duration_seconds for v in state.snapshot() if v.last_scrape is not None)
    not_up = sum(1 for v in state.snapshot() if v.status is not Status.UP)
    await service.stop()
    store.close()
    return {
        "concurrency": concurrency,
        "scrapes_per_second": scrapes / wall,
        "failures": failures,
        "not_up": not_up,
        "cpu_seconds_per_1000_scrapes": 1000 * cpu / max(scrapes, 1),
        "cpu_share_of_one_core": cpu / wall,
        "duration_p50_ms": 1000 * durations[len(durations) // 2] if durations else float("nan"),
        "duration_p99_ms": 1000 * durations[int(len(durations) * 0.99)] if durations else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--machines", type=int, default=500, help="simulated exporters (default 500)")
    parser.add_argument("--interval", type=float, default=5.0, help="scrape interval in seconds (default 5)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per run (default 30)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)  # internal: the fleet process
    args = parser.parse_args()

    if args.serve is not None:
        body = sys.stdin.buffer.read()
        asyncio.run(serve_fleet(body, args.machines, args.serve))
        return 0

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.machines + 256)), hard))
    with tempfile.TemporaryDirectory(prefix="millwatch-bench-") as tmp:
        folder = Path(tmp)
        body = capture_exposition(folder)
        lifetime = len(args.concurrency) * (args.seconds + 15) + 30
        fleet = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(lifetime), "--machines", str(args.machines)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert fleet.stdin is not None and fleet.stdout is not None
            fleet.stdin.write(body)
            fleet.stdin.close()
            ports = json.loads(fleet.stdout.readline())
            inventory = folder / "machines.yaml"
            write_inventory(inventory, ports, args.interval)
            print(
                f"# {args.machines} machines, interval {args.interval}s "
                f"(target {args.machines / args.interval:.0f} scrapes/s), body {len(body)} bytes, "
                f"{args.seconds:.0f}s per run, Python {sys.version.split()[0]}, {os.cpu_count()} cores"
            )
            print(
                "| max in flight | scrapes/s | CPU-s per 1000 scrapes | CPU (share of a core) "
                "| scrape p50 ms | scrape p99 ms | failures | not up |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for i, concurrency in enumerate(args.concurrency):
                row = asyncio.run(run_once(inventory, folder / f"bench-{i}.db", concurrency, args.seconds))
                print(
                    f"| {concurrency} | {row['scrapes_per_second']:.1f} "
                    f"| {row['cpu_seconds_per_1000_scrapes']:.2f} | {row['cpu_share_of_one_core']:.2f} "
                    f"| {row['duration_p50_ms']:.1f} | {row['duration_p99_ms']:.1f} "
                    f"| {row['failures']:.0f} | {row['not_up']:.0f} |",
                    flush=True,
                )
        finally:
            fleet.kill()
            fleet.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
