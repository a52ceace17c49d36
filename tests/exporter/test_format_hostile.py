"""Nothing a device sends stops the exporter, whatever the format: garbage is counted, good lines read."""

from __future__ import annotations

import random
from typing import Any

import pytest
from exporter_helpers import MakeApp, RawPty, scrape, wait_until

from exporter.simulator import VENDOR_PATTERN

FORMATS: list[dict[str, Any]] = [
    {"format": "kv"},
    {"format": "json"},
    {"format": "csv", "fields": ["temperature", "pressure"]},
    {"format": "regex", "pattern": VENDOR_PATTERN},
]
GOOD = {
    "kv": b"temperature=61.5 pressure=1 speed=1400\n",
    "json": b'{"temperature": 61.5, "pressure": 1, "speed": 1400}\n',
    "csv": b"61.5,1\n",
    "regex": b"ACME-7 T:061.5C P:1.000bar N:01400rpm ST:OK\n",
}
HOSTILE = [
    b"\x00\xff\xfe" * 50 + b"\n",
    b"[" * 900 + b"\n",  # deep JSON nesting, within max_line_bytes
    b'{"a": ' * 300 + b"1" + b"}" * 300 + b"\n",
    b"1e999,NaN\n",
    b'{"temperature": 1e999}\n',
    b'{"temperature": ' + b"9" * 400 + b"}\n",  # an integer too large for a float
    b"temperature=1e999\n",
    b"T:NaNC P:infbar N:-rpm\n",
    b"\r\r\r\n\n\n",
    b"x" * 5000,  # no end for a long time ...
    b"\n",  # ... then one
]


@pytest.mark.parametrize("serial", FORMATS, ids=[f["format"] for f in FORMATS])
def test_hostile_bytes_are_counted_and_the_next_good_line_is_read(
    raw_pty: RawPty, make_app: MakeApp, serial: dict[str, Any]
) -> None:
    app = make_app(raw_pty.path, **serial)
    wait_until(lambda: app.reader.connected)
    rnd = random.Random(6)
    for chunk in HOSTILE:
        raw_pty.write(chunk)
    raw_pty.write(bytes(rnd.randrange(256) for _ in range(4000)) + b"\n")
    raw_pty.write(GOOD[serial["format"]])
    got = wait_until(lambda: (g := scrape(app.url)).get("machine_temperature_celsius") == 61.5 and g)
    errors = sum(v for k, v in got.items() if k.startswith("millwatch_serial_errors_total"))
    assert errors >= 5
    assert got["millwatch_serial_readings_total"] == 1
    assert app.reader.connected
