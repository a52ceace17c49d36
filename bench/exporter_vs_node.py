"""The machine PC's exporter side by side with Debian's prometheus-node-exporter, in the same run.

Both run as their own processes on loopback ports; this process drives them and reads their
figures with psutil, then prints one table (and `--json` for the raw numbers):

    python bench/exporter_vs_node.py [--scrapes 500] [--rss-scrapes 600] [--readings 3600] \
        [--idle-seconds 60] [--wheels .cache/bundle-wheels/win_amd64-cp39] [--exporter PATH]

- RSS after an hour-equivalent of 1 reading/s and 600 scrapes. The hour is fed fast: a simulated
  sensor on a pseudo-terminal writes `--readings` lines at 500 lines/s, so the exporter parses,
  exports and buffers (SQLite) 3600 readings, as in an hour; only the buffer's age-based pruning,
  which runs on the clock, is not exercised by it.
- `/metrics` latency over `--scrapes` sequential scrapes, one new connection each (as the central
  scraper does), the two exporters alternated so both see the same machine load; p50 and p99.
- CPU per scrape: each process's CPU time over those scrapes, divided by their number.
- Idle CPU: 1 reading/s and no scrapes for `--idle-seconds`; the share of one core.
- The win_amd64 bundle zip's size (`millwatch bundle`, wheels from `--wheels` or the index).

Goals (issue 6): RSS <= 1.2x node_exporter's; p99 <= 0.5x node_exporter's; idle CPU <= 0.2 % of a
core; zip <= 600 KB. Everything talks to 127.0.0.1; both processes are stopped by their PID.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from exporter.simulator import SimulatedSensor

ROOT = Path(__file__).resolve().parents[1]
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
EXPORTER = Path(sys.executable).with_name("millwatch-exporter")
MILLWATCH = Path(sys.executable).with_name("millwatch")
FEED_INTERVAL = 0.002  # 500 readings/s while feeding the hour-equivalent
GOALS = {"rss_ratio": 1.2, "p99_ratio": 0.5, "idle_cpu_percent": 0.2, "zip_kb": 600}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> float:
    """One GET on a new connection; its wall time in seconds."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
    return time.perf_counter() - started


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            scrape(url)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def readings_total(url: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("millwatch_serial_readings_total "):
                return float(line.split()[1])
    return 0.0


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bundle_size(wheels: Path | None, folder: Path) -> int:
    command = [
        str(MILLWATCH),
        "bundle",
        "--platform",
        "win_amd64",
        "--python-version",
        "3.9",
        "-o",
        str(folder),
    ]
    if wheels is not None:
        command += ["--wheels", str(wheels)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    (zip_path,) = folder.glob("*.zip")
    return zip_path.stat().st_size


def compile_bytecode(exporter: Path) -> None:
    """Byte-compile the exporter's packages with its own interpreter, as `pip install` does.

    An installed exporter (the bundle's wheels, or any pip install) starts from `.pyc` files. An
    editable install in a shell with PYTHONDONTWRITEBYTECODE=1 (this project's machines) would
    instead compile every module at each start, and the compiler's freed memory stays in the
    process's RSS (1.5 MB here): a cost no machine PC pays, so it is taken out of the comparison.
    """
    python = exporter.absolute().with_name("python")
    folders = subprocess.run(
        [
            str(python),
            "-c",
            "import exporter, millwatch_common as m; print(exporter.__path__[0]); print(m.__path__[0])",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    subprocess.run(
        [str(python), "-m", "compileall", "-q", *folders], check=True, capture_output=True, timeout=120
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(args: argparse.Namespace) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="millwatch-bench-"))
    node_port, ours_port = free_port(), free_port()
    node_url = f"http://127.0.0.1:{node_port}/metrics"
    ours_url = f"http://127.0.0.1:{ours_port}/metrics"
    figures: dict[str, float] = {}
    compile_bytecode(args.exporter)
    with SimulatedSensor(interval=FEED_INTERVAL, seed=5) as sensor:
        config = folder / "exporter.yaml"
        config.write_text(
            f"machine: {{id: bench_01, name: Bench 01}}\nlisten: 127.0.0.1:{ours_port}\n"
            f"serial: {{port: {sensor.path}, stale_after: 30s}}\n"
            f"buffer: {{path: {folder / 'buffer.sqlite'}}}\n",
            encoding="utf-8",
        )
        node = subprocess.Popen(
            [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{node_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ours = subprocess.Popen(
            [str(args.exporter.absolute()), "--config", str(config), "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )
        try:
            wait_for(node_url)
            wait_for(ours_url)
            node_ps, ours_ps = psutil.Process(node.pid), psutil.Process(ours.pid)
            # Right after start: what the interpreter and the imports cost before any work.
            figures["node_rss_start_mb"] = node_ps.memory_info().rss / 2**20
            figures["ours_rss_start_mb"] = ours_ps.memory_info().rss / 2**20

            # The hour-equivalent of readings, counted by the exporter itself.
            started = time.monotonic()
            feed_scrapes = 0
            while readings_total(ours_url) < args.readings:
                feed_scrapes += 1
                if time.monotonic() - started > 120:
                    raise SystemExit(f"fewer than {args.readings} readings after 120 s")
                time.sleep(0.5)
            sensor.interval = 1.0
            figures["feed_seconds"] = time.monotonic() - started

            # Latency and CPU per scrape, the two alternated.
            for url in (node_url, ours_url):
                for _ in range(10):
                    scrape(url)  # warm-up
            cpu_before = {"node": cpu_seconds(node_ps), "ours": cpu_seconds(ours_ps)}
            latencies: dict[str, list[float]] = {"node": [], "ours": []}
            for _ in range(args.scrapes):
                latencies["node"].append(scrape(node_url))
                latencies["ours"].append(scrape(ours_url))
            for name, process in (("node", node_ps), ("ours", ours_ps)):
                figures[f"{name}_cpu_ms_per_scrape"] = (
                    (cpu_seconds(process) - cpu_before[name]) / args.scrapes * 1000
                )
                figures[f"{name}_p50_ms"] = percentile(latencies[name], 0.50) * 1000
                figures[f"{name}_p99_ms"] = percentile(latencies[name], 0.99) * 1000
            for _ in range(max(0, args.rss_scrapes - args.scrapes - 10 - feed_scrapes)):
                scrape(node_url)
                scrape(ours_url)
            figures["scrapes_each"] = float(max(args.rss_scrapes, args.scrapes + 10 + feed_scrapes))
            figures["node_rss_mb"] = node_ps.memory_info().rss / 2**20
            figures["ours_rss_mb"] = ours_ps.memory_info().rss / 2**20
            # Unique memory: RSS without the shared libraries' pages another process could share.
            figures["node_uss_mb"] = node_ps.memory_full_info().uss / 2**20
            figures["ours_uss_mb"] = ours_ps.memory_full_info().uss / 2**20
            with urllib.request.urlopen(ours_url, timeout=10) as response:
                figures["ours_metrics_bytes"] = float(len(response.read()))
            with urllib.request.urlopen(node_url, timeout=10) as response:
                figures["node_metrics_bytes"] = float(len(response.read()))

            # Idle: 1 reading/s, nobody scrapes.
            idle_before = {"node": cpu_seconds(node_ps), "ours": cpu_seconds(ours_ps)}
            time.sleep(args.idle_seconds)
            for name, process in (("node", node_ps), ("ours", ours_ps)):
                figures[f"{name}_idle_cpu_percent"] = (
                    (cpu_seconds(process) - idle_before[name]) / args.idle_seconds * 100
                )
        finally:
            stop(ours)
            stop(node)
    figures["zip_kb"] = bundle_size(args.wheels, folder / "bundle") / 1024
    figures["rss_ratio"] = figures["ours_rss_mb"] / figures["node_rss_mb"]
    figures["p99_ratio"] = figures["ours_p99_ms"] / figures["node_p99_ms"]
    return figures


def report(figures: dict[str, float]) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    rows = [
        (
            "RSS after the hour-equivalent and scrapes (MB)",
            "ours_rss_mb",
            "node_rss_mb",
            "rss_ratio",
            "≤ 1.2×",
        ),
        ("RSS right after start (MB)", "ours_rss_start_mb", "node_rss_start_mb", None, ""),
        ("USS (unique memory) at the end (MB)", "ours_uss_mb", "node_uss_mb", None, ""),
        ("/metrics p50 (ms)", "ours_p50_ms", "node_p50_ms", None, ""),
        ("/metrics p99 (ms)", "ours_p99_ms", "node_p99_ms", "p99_ratio", "≤ 0.5×"),
        ("CPU per scrape (ms)", "ours_cpu_ms_per_scrape", "node_cpu_ms_per_scrape", None, ""),
        (
            "idle CPU, 1 reading/s, no scrapes (% of a core)",
            "ours_idle_cpu_percent",
            "node_idle_cpu_percent",
            None,
            "≤ 0.2 %",
        ),
        ("/metrics body (bytes)", "ours_metrics_bytes", "node_metrics_bytes", None, ""),
    ]
    lines = ["| figure | millwatch-exporter | node_exporter | ratio | goal |", "|---|---|---|---|---|"]
    for label, ours, node, ratio, goal in rows:
        ratio_text = f"{figures[ratio]:.2f}" if ratio else ""
        if ratio:
            goal += f" {verdict(figures[ratio] <= GOALS[ratio])}"
        elif ours == "ours_idle_cpu_percent":
            goal += f" {verdict(figures[ours] <= GOALS['idle_cpu_percent'])}"
        lines.append(f"| {label} | {figures[ours]:.2f} | {figures[node]:.2f} | {ratio_text} | {goal} |")
    lines.append(
        f"| win_amd64 bundle zip (KB) | {figures['zip_kb']:.0f} | | | ≤ 600 "
        f"{verdict(figures['zip_kb'] <= GOALS['zip_kb'])} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=500, help="sequential scrapes for latency and CPU")
    parser.add_argument("--rss-scrapes", type=int, default=600, help="scrapes before RSS is read")
    parser.add_argument("--readings", type=int, default=3600, help="readings fed before the scrapes")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="length of the idle measurement")
    default_wheels = ROOT / ".cache" / "bundle-wheels" / "win_amd64-cp39"
    parser.add_argument(
        "--wheels",
        type=Path,
        default=default_wheels if default_wheels.is_dir() else None,
        help="wheel folder for the bundle (default: .cache/bundle-wheels/win_amd64-cp39 if present, "
        "else the package index)",
    )
    parser.add_argument(
        "--exporter",
        type=Path,
        default=EXPORTER,
        help="the millwatch-exporter to run (default: this venv's; e.g. .cache/venv-exporter-py39/bin/"
        "millwatch-exporter for the exporter under Python 3.9, as on an old machine PC)",
    )
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = parser.parse_args()
    if not os.access(NODE_EXPORTER, os.X_OK):
        print(f"{NODE_EXPORTER} is missing: apt-get install prometheus-node-exporter", file=sys.stderr)
        return 2
    figures = run(args)
    print(report(figures))
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
