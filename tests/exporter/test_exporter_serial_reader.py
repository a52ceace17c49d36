"""The serial reader on a real pseudo-terminal: lines in, readings and counted problems out; it never dies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from exporter_helpers import RawPty, wait_until

from exporter.config import DEFAULT_CHANNELS, ChannelConfig, SerialConfig
from exporter.serial_reader import MAX_EXTRA_KEYS, REASONS, SerialReader


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, float], float]] = []
        self.lock = threading.Lock()

    def __call__(self, values: Mapping[str, float], at: float) -> None:
        with self.lock:
            self.calls.append((dict(values), at))


@pytest.fixture
def readers() -> Iterator[list[SerialReader]]:
    started: list[SerialReader] = []
    yield started
    for reader in started:
        reader.stop()


def start_reader(readers: list[SerialReader], port: str, **options: object) -> tuple[SerialReader, Recorder]:
    recorder = Recorder()
    config = SerialConfig(port=port, **options)  # type: ignore[arg-type]
    reader = SerialReader(config, recorder, initial_backoff=0.05, max_backoff=0.2)
    reader.start()
    readers.append(reader)
    wait_until(lambda: reader.connected, what="the port to open")
    return reader, recorder


def test_lines_become_readings_with_aliases_and_any_line_ending(
    raw_pty: RawPty, readers: list[SerialReader]
) -> None:
    reader, recorder = start_reader(readers, raw_pty.path)
    before = time.time()
    raw_pty.write(b"temperature=72.5 pressure=1.02 speed=1480\r\n")
    raw_pty.write(b"T=73;P=1.03\n")
    raw_pty.write(b"RPM=1490\rtemperature=7")  # a bare CR ends a line; the rest waits for its end
    raw_pty.write(b"4.5\n")
    wait_until(lambda: reader.readings_total == 4, what="four readings")
    latest = reader.latest()
    assert {k: v for k, (v, _) in latest.items()} == {"temperature": 74.5, "pressure": 1.03, "speed": 1490.0}
    assert all(before <= t <= time.time() for _, t in latest.values())
    assert [values for values, _ in recorder.calls] == [
        {"temperature": 72.5, "pressure": 1.02, "speed": 1480.0},
        {"temperature": 73.0, "pressure": 1.03},
        {"speed": 1490.0},
        {"temperature": 74.5},
    ]
    assert reader.last_reading_time == recorder.calls[-1][1]
    assert reader.errors_total() == dict.fromkeys(REASONS, 0)


def test_bad_lines_are_counted_by_reason_and_skipped(raw_pty: RawPty, readers: list[SerialReader]) -> None:
    reader, recorder = start_reader(readers, raw_pty.path, max_line_bytes=64)
    raw_pty.write(b"temperature=abc\n")  # parse
    raw_pty.write(b"\xff\xfe\x00garbage\n")  # decode
    raw_pty.write(b"x" * 100 + b"\n")  # overlong, complete in one read
    raw_pty.write(b"y" * 50)  # overlong, spread over several reads ...
    raw_pty.write(b"y" * 50)
    raw_pty.write(b"y" * 50 + b" temperature=1\n")  # ... the rest up to its end is dropped with it
    raw_pty.write(b"\n\r\n  \n")  # blank lines are not errors
    raw_pty.write(b"temperature=61.5\n")
    wait_until(lambda: reader.readings_total == 1, what="the good line")
    assert reader.errors_total() == {
        "overlong": 2,
        "decode": 1,
        "parse": 1,
        "skipped_value": 0,
        "too_many_keys": 0,
        "no_answer": 0,
        "open": 0,
        "io": 0,
    }
    assert [values for values, _ in recorder.calls] == [{"temperature": 61.5}]
    status = reader.status()
    assert status.last_error is not None and status.last_error.reason == "overlong"


def test_a_failing_consumer_does_not_stop_the_reader(raw_pty: RawPty, readers: list[SerialReader]) -> None:
    calls: list[float] = []

    def explode(values: Mapping[str, float], at: float) -> None:
        calls.append(at)
        raise RuntimeError("disk full")

    reader = SerialReader(SerialConfig(port=raw_pty.path), explode)
    reader.start()
    readers.append(reader)
    wait_until(lambda: reader.connected)
    raw_pty.write(b"temperature=1\ntemperature=2\n")
    wait_until(lambda: reader.readings_total == 2 and len(calls) == 2)
    assert reader.latest()["temperature"][0] == 2.0


def test_a_port_that_cannot_open_is_retried_and_counted(tmp_path: Path, readers: list[SerialReader]) -> None:
    reader = SerialReader(
        SerialConfig(port=str(tmp_path / "ttyNOPE")), None, initial_backoff=0.05, max_backoff=0.1
    )
    reader.start()
    readers.append(reader)
    wait_until(lambda: reader.errors_total()["open"] >= 3, what="repeated open attempts")
    assert not reader.connected
    status = reader.status()
    assert status.last_error is not None and "ttyNOPE" in status.last_error.message
    started = time.monotonic()
    reader.stop()
    assert time.monotonic() - started < 1.0


def test_an_unplugged_device_is_an_io_error_then_reopen_attempts(
    raw_pty: RawPty, readers: list[SerialReader]
) -> None:
    reader, _ = start_reader(readers, raw_pty.path)
    raw_pty.write(b"temperature=70\n")
    wait_until(lambda: reader.readings_total == 1)
    raw_pty.close()  # the cable is pulled: the device vanishes
    wait_until(lambda: reader.errors_total()["io"] == 1, what="an io error")
    wait_until(lambda: not reader.connected)
    wait_until(lambda: reader.errors_total()["open"] >= 2, what="reopen attempts")
    assert reader.readings_total == 1


def test_reader_stops_within_a_second_while_reading(raw_pty: RawPty, readers: list[SerialReader]) -> None:
    reader, _ = start_reader(readers, raw_pty.path)
    started = time.monotonic()
    reader.stop()
    assert time.monotonic() - started < 1.0
    assert not any(
        t.name.startswith("serial-reader") and raw_pty.path in t.name for t in threading.enumerate()
    )
    with pytest.raises(RuntimeError):
        reader.start()


def test_serial_urls_work_too(readers: list[SerialReader]) -> None:
    """`loop://` is pyserial's loopback: what is written comes back (any serial_for_url URL is accepted)."""
    recorder = Recorder()

    def opener(url: str, **options: object) -> object:
        import serial

        port = serial.serial_for_url(url, **options)
        port.write(b"temperature=42\n")
        return port

    reader = SerialReader(SerialConfig(port="loop://"), recorder, opener=opener)
    reader.start()
    readers.append(reader)
    wait_until(lambda: reader.readings_total == 1)
    assert recorder.calls[0][0] == {"temperature": 42.0}


TEMPERATURE = "machine_temperature_celsius"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_keys_without_a_channel_are_capped_and_stale_ones_make_room(
    raw_pty: RawPty, readers: list[SerialReader]
) -> None:
    clock = Clock(1000.0)
    reader = SerialReader(
        SerialConfig(port=raw_pty.path, stale_after=5.0), None, clock, channels=DEFAULT_CHANNELS
    )
    reader.start()
    readers.append(reader)
    wait_until(lambda: reader.connected)

    def line(text: str, readings: int) -> None:
        raw_pty.write(text.encode() + b"\n")
        wait_until(lambda: reader.readings_total == readings, what=f"line {readings}")

    line(" ".join(f"k{n}={n}" for n in range(MAX_EXTRA_KEYS)), 1)
    line("extra=1 temperature=70", 2)  # the cap is reached and every kept key is fresh
    assert reader.errors_total()["too_many_keys"] == 1
    assert "extra" not in reader.latest() and reader.latest()["temperature"] == (70.0, 1000.0)
    status = reader.status()
    assert status.last_error is not None and status.last_error.reason == "too_many_keys"
    assert "'extra' dropped" in status.last_error.message

    clock.now = 1010.0  # every k is stale now
    line("k0=5", 3)  # read again: fresh, and the last to make room
    line("late=1 later=2", 4)  # take the places of k1 and k2, the stalest
    latest = reader.latest()
    assert reader.errors_total()["too_many_keys"] == 1
    assert latest["k0"] == (5.0, 1010.0) and latest["late"] == (1.0, 1010.0) and "later" in latest
    assert "k1" not in latest and "k2" not in latest and "k3" in latest
    assert len(latest) == MAX_EXTRA_KEYS + 1, "the channel key comes on top of the cap"


@pytest.mark.parametrize(
    ("channel", "line", "why"),
    [
        (
            ChannelConfig("temperature", "machine_temperature_celsius", scale=1e10),
            b"temperature=1e300",
            "scale",
        ),
        (ChannelConfig("temperature", "machine_temperature_celsius", offset=1e308), b"T=1e308", "offset"),
        (
            ChannelConfig("temperature", "machine_temperature_celsius", scale=-1e10),
            b"T=1e300",
            "scale -1e+10",
        ),
        (ChannelConfig("temperature", "machine_temperature_celsius"), b"temperature=1e999", "out of range"),
    ],
    ids=["scale", "offset", "minus-inf", "raw"],
)
def test_a_value_that_is_not_finite_after_scaling_drops_the_line(
    raw_pty: RawPty, readers: list[SerialReader], channel: ChannelConfig, line: bytes, why: str
) -> None:
    recorder = Recorder()
    reader = SerialReader(SerialConfig(port=raw_pty.path), recorder, channels=[channel])
    reader.start()
    readers.append(reader)
    wait_until(lambda: reader.connected)
    raw_pty.write(line + b" pressure=1\n" + b"temperature=3 pressure=2\n")
    wait_until(lambda: reader.readings_total == 1, what="the good line")
    assert reader.errors_total()["parse"] == 1
    assert [values for values, _ in recorder.calls] == [{"temperature": 3.0, "pressure": 2.0}]
    assert {k: v for k, (v, _) in reader.latest().items()} == {"temperature": 3.0, "pressure": 2.0}
    status = reader.status()
    assert status.last_error is not None and status.last_error.reason == "parse"
    assert why in status.last_error.message


def test_an_unscaled_key_may_hold_any_finite_value(raw_pty: RawPty, readers: list[SerialReader]) -> None:
    reader, _ = start_reader(readers, raw_pty.path)
    raw_pty.write(b"vibration=1e308\n")  # no channel: nothing scales it, nothing overflows
    wait_until(lambda: reader.readings_total == 1)
    assert reader.latest()["vibration"][0] == 1e308
    assert reader.errors_total()["parse"] == 0
