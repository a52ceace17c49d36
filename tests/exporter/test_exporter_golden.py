"""End to end, node_exporter style: fixed serial input through a real pty and a real exporter, /metrics
compared with the committed golden file tests/exporter/golden/metrics.txt.

Only what depends on the host or the clock is filtered, by name: the values of the reading and start
timestamps, of collector durations, of the HTTP connection counts and of the buffer's size and
oldest reading, and the system_* /
process_* samples: unlabelled ones are kept as bare names, labelled ones (per mount point,
interface, disk, CPU mode) are left out, since they differ from host to host and a host may have
none. HELP and TYPE lines are compared whole.
Regenerate after an intended change with `MILLWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/exporter`.
"""

from __future__ import annotations

import os
from pathlib import Path

from exporter_helpers import MakeApp, RawPty, http_get, scrape, wait_until

GOLDEN = Path(__file__).with_name("golden") / "metrics.txt"
FIXTURE = [
    b"temperature=72.5 pressure=1.02 speed=1480\r\n",
    b"T=73.0;P=1.05;RPM=1490\r\n",
    b"temperature=abc\r\n",  # parse
    b"\xff\xfe\x00\x01\r\n",  # decode
    b"x" * 2000 + b"\r\n",  # overlong
    b"humidity=40, temperature=74.25\r\n",
]
VALUES_FILTERED = (
    "millwatch_serial_last_reading_timestamp_seconds",
    "millwatch_serial_start_time_seconds",
    "millwatch_collector_duration_seconds",
    # how many connections the waits before the compared scrape made, and how many are still closing
    "millwatch_http_connections_total",
    "millwatch_http_open_connections",
    "millwatch_buffer_size_bytes",
    "millwatch_buffer_oldest_reading_timestamp_seconds",
)
HOST_DEPENDENT = ("system_", "process_")


def normalise(exposition: str) -> str:
    out: list[str] = []
    for line in exposition.splitlines():
        if not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name.startswith(HOST_DEPENDENT) and "{" in line:
                continue  # one sample per disk, interface, mode: a host may have none (a container)
            if name.startswith(HOST_DEPENDENT):
                line = name
            elif name in VALUES_FILTERED:
                line = line.rsplit(" ", 1)[0] + " <filtered>"
        if not out or out[-1] != line:  # one bare name per host-dependent family
            out.append(line)
    return "\n".join(out) + "\n"


def test_metrics_match_the_golden_file(raw_pty: RawPty, make_app: MakeApp) -> None:
    app = make_app(
        raw_pty.path,
        stale_after="1h",
        channels={
            "humidity": {
                "metric": "machine_humidity_ratio",
                "scale": 0.01,
                "help": "Relative humidity (0-1).",
            }
        },
    )
    wait_until(lambda: app.reader.connected)
    for chunk in FIXTURE:
        raw_pty.write(chunk)

    def settled() -> bool:
        got = scrape(app.url)
        errors = sum(v for k, v in got.items() if k.startswith("millwatch_serial_errors_total"))
        return got["millwatch_serial_readings_total"] == 3 and errors == 3

    wait_until(settled, what="all fixture lines read")
    actual = normalise(http_get(app.url).text)
    if os.environ.get("MILLWATCH_UPDATE_GOLDEN"):
        GOLDEN.write_text(actual, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8")
    assert actual == expected
