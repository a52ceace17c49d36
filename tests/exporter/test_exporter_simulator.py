"""The simulated sensor: believable lines per scenario, on a real pseudo-terminal, and its command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import serial
from exporter_helpers import wait_until

from exporter.config import DEFAULT_ALIASES
from exporter.errors import LineParseError
from exporter.formats.kv import parse_kv
from exporter.simulator import OVERHEAT_CEILING, SimulatedSensor


def values(sensor: SimulatedSensor, count: int) -> list[dict[str, float]]:
    lines = [sensor.next_line() for _ in range(count)]
    return [parse_kv(line.decode("ascii"), DEFAULT_ALIASES) for line in lines if line is not None]


def test_normal_values_drift_around_believable_means() -> None:
    readings = values(SimulatedSensor(seed=3), 500)
    assert len(readings) == 500
    temperatures = [r["temperature"] for r in readings]
    assert all(55 < t < 75 for t in temperatures)
    assert 62 < sum(temperatures) / len(temperatures) < 68
    assert len(set(temperatures)) > 20, "the values move"
    assert all(0.9 < r["pressure"] < 1.1 for r in readings)
    assert all(1420 < r["speed"] < 1540 for r in readings)


def test_same_seed_same_lines() -> None:
    assert values(SimulatedSensor(seed=5), 20) == values(SimulatedSensor(seed=5), 20)


def test_overheat_climbs_then_holds_near_105() -> None:
    sensor = SimulatedSensor(seed=1)
    start = values(sensor, 1)[0]["temperature"]
    sensor.scenario = "overheat"
    climb = [r["temperature"] for r in values(sensor, 60)]
    steps = [b - a for a, b in zip(climb, climb[1:10])]
    assert all(0.8 < step < 2.2 for step in steps), steps
    assert climb[0] > start
    assert all(OVERHEAT_CEILING - 2 < t < OVERHEAT_CEILING + 2 for t in climb[-20:])
    sensor.scenario = "normal"
    cooling = [r["temperature"] for r in values(sensor, 200)]
    assert cooling[0] > 95 and cooling[-1] < 75, "back to normal, gradually"


def test_silent_writes_nothing_and_garbage_never_parses() -> None:
    sensor = SimulatedSensor(scenario="silent", seed=2)
    assert [sensor.next_line() for _ in range(10)] == [None] * 10
    sensor.scenario = "garbage"
    lines = [sensor.next_line() for _ in range(400)]
    decode_errors = parse_errors = 0
    for line in lines:
        assert line is not None and line.endswith(b"\n")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            decode_errors += 1
            continue
        with pytest.raises(LineParseError):
            parse_kv(text.strip(), DEFAULT_ALIASES)
        parse_errors += 1
    assert decode_errors > 50 and parse_errors > 50


def test_unknown_scenarios_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'boom'"):
        SimulatedSensor(scenario="boom")
    sensor = SimulatedSensor()
    with pytest.raises(ValueError):
        sensor.scenario = "boom"
    assert sensor.scenario == "normal"
    with pytest.raises(ValueError):
        SimulatedSensor(interval=0)


def test_lines_arrive_on_the_pty_and_the_link(tmp_path: Path) -> None:
    link = tmp_path / "ttySIM"
    sensor = SimulatedSensor(interval=0.02, seed=4, link=link)
    path = sensor.start()
    try:
        assert os.readlink(link) == path and path.startswith("/dev/")
        with serial.serial_for_url(str(link), timeout=2) as port:
            port.readline()  # maybe a partial line from before we opened
            for _ in range(3):
                line = port.readline()
                assert line.endswith(b"\r\n")
                assert set(parse_kv(line.decode(), DEFAULT_ALIASES)) == {"temperature", "pressure", "speed"}
        # the port was closed and reopened: the simulator keeps the terminal alive
        with serial.serial_for_url(str(link), timeout=2) as port:
            port.readline()
            assert port.readline().startswith(b"temperature=")
    finally:
        sensor.stop()
    assert not os.path.lexists(link)


def test_a_full_terminal_drops_lines_instead_of_blocking() -> None:
    sensor = SimulatedSensor(interval=0.001, seed=6)
    sensor.start()
    try:
        wait_until(lambda: sensor.lines_dropped > 0, timeout=15, what="nobody reads: the pty buffer fills up")
        written = sensor.lines_written
        wait_until(lambda: sensor.lines_dropped > 10, timeout=15)
        assert sensor.lines_written <= written + 1
    finally:
        sensor.stop()


def test_a_link_over_a_real_file_is_refused(tmp_path: Path) -> None:
    occupied = tmp_path / "ttyS0"
    occupied.write_text("not a link")
    sensor = SimulatedSensor(link=occupied)
    with pytest.raises(Exception, match="cannot make the link"):
        sensor.start()
    assert occupied.read_text() == "not a link"


def test_the_command_prints_the_path_switches_scenario_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    link = tmp_path / "ttyCMD"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.simulator",
            "--interval",
            "0.05",
            "--seed",
            "1",
            "--scenario",
            "overheat",
            "--after",
            "0.3",
            "--link",
            str(link),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        path = process.stdout.readline().strip()
        assert path.startswith("/dev/")
        wait_until(lambda: os.path.islink(link))
        assert os.readlink(link) == path
        highest: list[float] = []
        with serial.serial_for_url(path, timeout=2) as port:

            def hot() -> bool:
                line = port.readline().decode("ascii", "replace").strip()
                if line.startswith("temperature="):
                    highest.append(parse_kv(line, DEFAULT_ALIASES)["temperature"])
                return bool(highest) and highest[-1] > 80

            wait_until(hot, timeout=20, what="the overheat scenario after --after")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert "scenario is now overheat" in process.stderr.read()
        assert not os.path.lexists(link)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter.simulator", "--interval", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "expected a positive number of seconds" in result.stderr


def test_scenario_changes_are_safe_from_other_threads() -> None:
    sensor = SimulatedSensor(seed=8)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            for scenario in ("normal", "overheat", "silent", "garbage"):
                sensor.scenario = scenario

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        for _ in range(2000):
            line = sensor.next_line()
            assert line is None or line.endswith(b"\n")
    finally:
        stop.set()
        flipper.join()
