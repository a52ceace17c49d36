"""`millwatch simulate-serial --format ... --poll ...`: the sensors the format tests and the demo use."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest
import serial

from exporter.simulator import CSV_FIELDS, HEADER_EVERY, VENDOR_PATTERN, SimulatedSensor


def test_each_format_writes_lines_its_parser_reads() -> None:
    json_line = SimulatedSensor(seed=1, line_format="json").next_line()
    assert json_line is not None
    assert set(json.loads(json_line)) == set(CSV_FIELDS)
    vendor = SimulatedSensor(seed=1, line_format="vendor").next_line()
    assert vendor is not None
    match = re.search(VENDOR_PATTERN, vendor.decode())
    assert match is not None and 40 < float(match.group("temperature")) < 110
    csv_sensor = SimulatedSensor(seed=1, line_format="csv", csv_header=True)
    lines = [csv_sensor.next_line() for _ in range(HEADER_EVERY + 1)]
    assert lines[0] is not None and lines[0].startswith(b"temperature,pressure,speed\r\n")
    assert lines[HEADER_EVERY] is not None and lines[HEADER_EVERY].startswith(b"temperature,")
    assert all(line is not None and b"temperature" not in line for line in lines[1:HEADER_EVERY])


def test_unknown_formats_and_empty_commands_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        SimulatedSensor(line_format="xml")
    with pytest.raises(ValueError, match="must not be empty"):
        SimulatedSensor(poll_command="  ")


def test_the_command_acts_as_a_polled_sensor() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.simulator", "--format", "json", "--poll", "READ"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        path = process.stdout.readline().strip()
        with serial.serial_for_url(path, timeout=10) as port:
            port.write(b"READ\r\n")
            answer = port.readline()
            assert set(json.loads(answer)) == set(CSV_FIELDS)
            port.write(b"HELLO\n")
            assert port.readline() == b"ERR unknown command\r\n"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
