"""CPU per scrape of `millwatch scrape` beside Debian's Prometheus, on the same loopback targets.

One light separate process serves a real exporter's `/metrics` body (captured from an ExporterApp
reading a simulated sensor, ~60 samples; gzip when asked) on N loopback ports, with HTTP/1.1
keep-alive; its CPU is not counted. Then, one after the other on the same targets and in the same
run, each scraper runs at a 15 s interval:

- Prometheus (/usr/bin/prometheus, generated prometheus.yml, TSDB in a temporary folder, web
  listener on 127.0.0.1), stopped by its PID;
- `millwatch scrape` (this checkout, storing every sample into SQLite), stopped by its PID.

Each one is measured over a bounded window after a warm-up: CPU seconds of its process (user +
system, from /proc) and scrapes answered by the fleet in that window. Prints CPU-s per 1000
scrapes for both and the ratio. The fleet answers millwatch's `/history` backfill requests (after a
gap, e.g. while a big fleet's first rounds run late) with a valid empty page; they are counted apart
and shown in their own column (their CPU is in millwatch's figure: they are part of its work):

    python bench/scrape_vs_prometheus.py --targets 500 2000 10000

Everything talks to 127.0.0.1 only; every wait is bounded (about 2 x (warm-up + window) + 20 s
per target count).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scrape_fleet import capture_exposition

from scraper.scrape import SYNTHETIC_METRICS

PROMETHEUS = "/usr/bin/prometheus"
ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the fleet: one process, many ports, keep-alive ------------------------------------------------


async def serve_fleet(body: bytes, count: int, lifetime: float) -> None:
    """Serve `body` on `count` loopback ports; print the ports; answer "count" lines on stdin.

    `/history` (millwatch's backfill after a gap) gets a valid empty page, as an exporter whose
    buffer holds nothing newer answers; those requests are counted apart from the scrapes.
    """
    served = [0]
    history_served = [0]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
    packed = gzip.compress(body, 6)
    plain_answer = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    gzip_answer = head + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed) + packed
    page = b'{"machine_id":"m","readings":[],"next_since":null}'
    history_answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(page) + page
    )

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                request, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
                if request.startswith(b"GET /history"):
                    history_served[0] += 1
                    self.transport.write(history_answer)
                    continue
                served[0] += 1
                self.transport.write(gzip_answer if b"gzip" in request.lower() else plain_answer)
            if len(self.buffer) > 65536:
                self.transport.close()

    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(Answer, "127.0.0.1", 0, backlog=512) for _ in range(count)]
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def answer_counts() -> None:
        while await reader.readline():
            print(served[0], history_served[0], flush=True)

    try:
        await asyncio.wait_for(answer_counts(), lifetime)
    except TimeoutError:
        pass


# --- measuring ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fleet:
    """The targets, served by as many processes as the open-files limit needs (a listening socket
    and a kept-alive connection per target)."""

    def __init__(self, body: bytes, count: int, lifetime: float, per_process: int) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        try:
            for start in range(0, count, per_process):
                size = min(per_process, count - start)
                process = subprocess.Popen(
                    [sys.executable, __file__, "--serve", str(lifetime), "--targets", str(size)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                self.processes.append(process)
                assert process.stdin is not None and process.stdout is not None
                process.stdin.write(len(body).to_bytes(8, "big") + body)
                process.stdin.flush()
                self.ports += json.loads(process.stdout.readline())
        except BaseException:
            self.stop()
            raise

    def served(self) -> int:
        """Scrapes answered so far (`/metrics`)."""
        return self.counts()[0]

    def counts(self) -> tuple[int, int]:
        """(scrapes, `/history` requests) answered so far."""
        scrapes = history = 0
        for process in self.processes:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(b"count\n")
            process.stdin.flush()
            metrics, pages = process.stdout.readline().split()
            scrapes += int(metrics)
            history += int(pages)
        return scrapes, history

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(
    name: str,
    process: subprocess.Popen[bytes],
    fleet: Fleet,
    warmup: float,
    window: float,
    interval: float,
    most: float,
    ready: Callable[[], bool] = lambda: True,
) -> tuple[float, int, int]:
    """(CPU seconds, scrapes answered, `/history` requests answered) of `process` over `window`
    seconds after the warm-up.

    The warm-up lasts `warmup` seconds, and longer (at most `most` seconds) until the scraper is
    in its steady state: over the last interval it scraped every target once (within 10 %), and
    `ready()` says its start is over. A big fleet's start (reading a 10,000-machine inventory,
    creating a million series, catching up with the rounds that ran late meanwhile) is not what is
    measured: measured in it, millwatch scraped 19 % more than the schedule's rate (the late
    rounds) while it still created series.
    """
    rate = len(fleet.ports) / interval
    started = time.monotonic()
    seen = [(started, fleet.served())]
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the scraper exited early with status {process.returncode}")
        time.sleep(1)
        now = time.monotonic()
        seen.append((now, fleet.served()))
        recent = [(t, n) for t, n in seen if t >= now - interval - 0.5]
        current = (recent[-1][1] - recent[0][1]) / max(recent[-1][0] - recent[0][0], 1e-9)
        steady = now - started >= interval and abs(current - rate) <= rate / 10
        if now - started >= warmup and ((steady and ready()) or now - started >= most):
            break
    state = "steady" if now - started < most else "NOT steady: the longest warm-up ran out"
    print(f"# {name}: warm-up {now - started:.0f} s ({state})", flush=True)
    cpu0, (served0, history0) = cpu_seconds(process.pid), fleet.counts()
    time.sleep(window)
    cpu1, (served1, history1) = cpu_seconds(process.pid), fleet.counts()
    return cpu1 - cpu0, served1 - served0, history1 - history0


def all_series_stored(database: Path, expected: int) -> Callable[[], bool]:
    """True once millwatch's SQLite database holds `expected` series (read-only, a count)."""

    def check() -> bool:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as db:
                (count,) = db.execute("SELECT count(*) FROM series").fetchone()
        except sqlite3.Error:
            return False  # not created yet, or busy
        return bool(count >= expected)

    return check


def run_prometheus(
    folder: Path, fleet: Fleet, interval: float, warmup: float, window: float, most: float
) -> tuple[float, int, int]:
    config = folder / "prometheus.yml"
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in fleet.ports)
    config.write_text(
        f"global:\n  scrape_interval: {interval:g}s\n  scrape_timeout: 5s\n"
        f"scrape_configs:\n  - job_name: fleet\n    static_configs:\n      - targets: [{targets}]\n"
    )
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{free_port()}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return measure("prometheus", process, fleet, warmup, window, interval, most)
    finally:
        stop(process)


def run_millwatch(
    folder: Path,
    fleet: Fleet,
    interval: float,
    warmup: float,
    window: float,
    most: float,
    concurrency: int,
    series_per_target: int,
) -> tuple[float, int, int]:
    inventory = folder / "machines.yaml"
    lines = ["defaults:", f"  scrape_interval: {interval:g}s", "  scrape_timeout: 5s", "machines:"]
    lines += [f"  - {{id: m{i:05d}, url: 'http://127.0.0.1:{p}/metrics'}}" for i, p in enumerate(fleet.ports)]
    inventory.write_text("\n".join(lines) + "\n")
    millwatch = Path(sys.executable).with_name("millwatch")
    process = subprocess.Popen(
        [str(millwatch), "scrape", "--inventory", str(inventory), "--db", f"sqlite:///{folder / 'mw.db'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        # Scrapes in flight: the default 16 suits a plant of hundreds; a fleet of thousands at 15 s
        # needs more (Prometheus has no such bound).
        env={**os.environ, "MILLWATCH_MAX_CONCURRENCY": str(concurrency)},
    )
    try:
        ready = all_series_stored(folder / "mw.db", series_per_target * len(fleet.ports))
        return measure("millwatch", process, fleet, warmup, window, interval, most, ready)
    finally:
        stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=int, nargs="+", default=[500, 2000, 10000])
    parser.add_argument(
        "--interval", type=float, default=15.0, help="scrape interval in seconds (default 15)"
    )
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before measuring (default 30)")
    parser.add_argument(
        "--max-warmup",
        type=float,
        default=600.0,
        help="longest warm-up while the scraper is not in its steady state (default 600)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=256, help="MILLWATCH_MAX_CONCURRENCY of millwatch (default 256)"
    )
    parser.add_argument("--window", type=float, default=30.0, help="measured seconds (default 30)")
    parser.add_argument(
        "--millwatch-only",
        action="store_true",
        help="run millwatch alone, no Prometheus and no ratio (to profile it: attach py-spy or perf)",
    )
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)  # internal: the fleet process
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.serve is not None:
        size = int.from_bytes(sys.stdin.buffer.read(8), "big")
        body = sys.stdin.buffer.read(size)
        asyncio.run(serve_fleet(body, args.targets[0], args.serve))
        return 0
    if not args.millwatch_only and not os.access(PROMETHEUS, os.X_OK):
        print(f"{PROMETHEUS} is missing (apt-get install prometheus)", file=sys.stderr)
        return 2
    if max(args.targets) + 500 > hard:
        print(f"the open-files limit ({hard}) is too small for {max(args.targets)} targets", file=sys.stderr)
        return 2
    per_process = max(1, (hard - 500) // 2)

    with tempfile.TemporaryDirectory(prefix="millwatch-vs-prom-") as tmp:
        body = capture_exposition(Path(tmp))
        samples = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        print(
            f"# interval {args.interval:g}s, warm-up {args.warmup:g}s, window {args.window:g}s, "
            f"millwatch max concurrency {args.concurrency}, body "
            f"{len(body)} bytes ({samples} samples), Python {sys.version.split()[0]}, {os.cpu_count()} cores"
        )
        print(
            "| targets | Prometheus scrapes/s | Prometheus CPU-s per 1000 scrapes | millwatch scrapes/s "
            "| millwatch CPU-s per 1000 scrapes | ratio | millwatch /history requests/s |"
        )
        print("|---|---|---|---|---|---|---|")
        for count in args.targets:
            folder = Path(tmp) / str(count)
            folder.mkdir()
            lifetime = 2 * (args.max_warmup + args.window) + 120
            fleet = Fleet(body, count, lifetime, per_process)
            try:
                p_cpu, p_scrapes = 0.0, 0
                if not args.millwatch_only:
                    p_cpu, p_scrapes, _ = run_prometheus(
                        folder, fleet, args.interval, args.warmup, args.window, args.max_warmup
                    )
                m_cpu, m_scrapes, m_history = run_millwatch(
                    folder,
                    fleet,
                    args.interval,
                    args.warmup,
                    args.window,
                    args.max_warmup,
                    args.concurrency,
                    samples + len(SYNTHETIC_METRICS),
                )
            finally:
                fleet.stop()
            p_cost = 1000 * p_cpu / max(p_scrapes, 1)
            m_cost = 1000 * m_cpu / max(m_scrapes, 1)
            ratio = f"{m_cost / p_cost:.1f}" if p_scrapes and m_scrapes else "n/a (no scrapes measured)"
            if args.millwatch_only:
                ratio = "n/a (--millwatch-only)"
            print(
                f"| {count} | {p_scrapes / args.window:.0f} | {p_cost:.2f} | {m_scrapes / args.window:.0f} "
                f"| {m_cost:.2f} | {ratio} | {m_history / args.window:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
