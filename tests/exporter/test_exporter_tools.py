"""The technician's tools: `ports`, `probe` and `init`, run as the technician runs them (subprocesses)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest
from exporter_helpers import MakeSensor, RawPty, scrape, wait_until
from serial.tools.list_ports_common import ListPortInfo

from exporter.app import ExporterApp
from exporter.config import load_config
from exporter.ports import describe

EXPORTER = [sys.executable, "-m", "exporter.cli"]


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPORTER, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


# -- ports -------------------------------------------------------------------------------------------


def test_ports_shows_device_description_and_vid_pid() -> None:
    usb = ListPortInfo("/dev/ttyUSB0", skip_link_detection=True)
    usb.description, usb.vid, usb.pid = "FT232R USB UART", 0x0403, 0x6001
    assert (describe(usb).device, describe(usb).description, describe(usb).hardware_id) == (
        "/dev/ttyUSB0",
        "FT232R USB UART",
        "VID:PID=0403:6001",
    )
    onboard = ListPortInfo("/dev/ttyS0", skip_link_detection=True)
    assert describe(onboard).description == "" and describe(onboard).hardware_id == ""


def test_ports_command_prints_one_line_per_port(tmp_path: Path) -> None:
    result = run(["ports"], tmp_path)
    assert result.returncode == 0
    for line in result.stdout.splitlines():
        assert line.split("\t")[0], line
    if not result.stdout:
        assert result.stderr == "no serial ports found\n"


# -- probe -------------------------------------------------------------------------------------------


def _exporter_from_probe(block: str, tmp_path: Path) -> ExporterApp:
    config = tmp_path / "exporter.yaml"
    config.write_text(
        "machine: {id: press_01}\nlisten: 127.0.0.1:0\nbuffer: {path: buffer.sqlite}\n" + block,
        encoding="utf-8",
    )
    return ExporterApp(load_config(config))


@pytest.mark.parametrize(("line_format", "expected"), [("json", "json"), ("kv", "kv"), ("vendor", "regex")])
def test_probe_guesses_the_format_and_its_block_runs_an_exporter(
    make_sensor: MakeSensor, tmp_path: Path, line_format: str, expected: str
) -> None:
    sensor = make_sensor(line_format=line_format, interval=0.05)
    result = run(["probe", sensor.path or "", "--seconds", "2"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"  format: {expected}\n" in result.stdout
    assert "at 9600 baud" in result.stderr  # auto: the first common rate already reads clean lines
    with _exporter_from_probe(result.stdout, tmp_path) as app:
        got = wait_until(lambda: (g := scrape(app.url)).get("machine_temperature_celsius") and g)
        assert 40 < got["machine_temperature_celsius"] < 110
        assert 0.5 < got["machine_pressure_bar"] < 1.5


def test_probe_reads_csv_field_names_from_a_header(raw_pty: RawPty, tmp_path: Path) -> None:
    stop = threading.Event()

    def talk() -> None:
        lines = [b"Temperature;Pressure;State\r\n"] + [b"65.%d;1.0%d;RUN\r\n" % (i, i) for i in range(9)]
        while not stop.is_set():
            for line in lines:
                raw_pty.write(line)
                if stop.wait(0.03):
                    return

    writer = threading.Thread(target=talk, daemon=True)
    writer.start()
    try:
        result = run(["probe", raw_pty.path, "--baud", "19200", "--seconds", "2"], tmp_path)
    finally:
        stop.set()
        writer.join(5)
    assert result.returncode == 0, result.stderr
    assert "  baudrate: 19200\n" in result.stdout
    assert "  fields: ['temperature', 'pressure', null]\n" in result.stdout
    assert '  separator: ";"\n' in result.stdout
    assert "  temperature: {metric: machine_temperature_celsius}\n" in result.stdout
    load_config_text = "machine: {id: m}\n" + result.stdout
    (tmp_path / "check.yaml").write_text(load_config_text, encoding="utf-8")
    assert load_config(tmp_path / "check.yaml").serial.fields == ("temperature", "pressure", None)


def test_probe_of_a_silent_port_says_so(make_sensor: MakeSensor, tmp_path: Path) -> None:
    sensor = make_sensor(scenario="silent")
    result = run(["probe", sensor.path or "", "--baud", "9600", "--seconds", "0.5"], tmp_path)
    assert result.returncode == 1
    assert "no readable line received" in result.stderr and "poll" in result.stderr
    assert result.stdout == ""


def test_probe_polls_a_sensor_that_only_answers_and_writes_poll_mode(
    make_sensor: MakeSensor, tmp_path: Path
) -> None:
    sensor = make_sensor(poll_command="READ", line_format="csv", csv_header=True)
    silent = run(["probe", sensor.path or "", "--baud", "9600", "--seconds", "0.5"], tmp_path)
    assert silent.returncode == 1 and "try --command" in silent.stderr
    result = run(["probe", sensor.path or "", "--command", "READ", "--seconds", "8"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert '  mode: poll\n  command: "READ"\n' in result.stdout
    assert "  fields: ['temperature', 'pressure', 'speed']\n" in result.stdout
    with _exporter_from_probe(result.stdout, tmp_path) as app:
        assert app.config.serial.mode == "poll"
        got = wait_until(lambda: (g := scrape(app.url)).get("machine_speed_rpm") and g, timeout=30)
        assert 1000 < got["machine_speed_rpm"] < 2000


def test_probe_of_a_port_that_does_not_exist_says_so(tmp_path: Path) -> None:
    result = run(["probe", str(tmp_path / "ttyNOPE"), "--baud", "9600", "--seconds", "0.5"], tmp_path)
    assert result.returncode == 1
    assert f"cannot open {tmp_path / 'ttyNOPE'}" in result.stderr


# -- init --------------------------------------------------------------------------------------------

INIT_FLAGS = [
    "--machine-id",
    "press_01",
    "--name",
    "Press 01 (hall B)",
    "--serial-port",
    "/dev/ttyUSB0",
    "--baudrate",
    "19200",
    "--listen",
    "0.0.0.0:9900",
    "--central-host",
    "central.plant.local",
    "--non-interactive",
]


def test_init_writes_a_valid_config_from_flags(tmp_path: Path) -> None:
    result = run(["init", "--output", "conf/exporter.yaml", *INIT_FLAGS], tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "conf" / "exporter.yaml"
    config = load_config(path)
    assert (config.machine.id, config.machine.name) == ("press_01", "Press 01 (hall B)")
    assert (config.serial.port, config.serial.baudrate) == ("/dev/ttyUSB0", 19200)
    assert (config.listen.host, config.listen.port) == ("0.0.0.0", 9900)
    text = path.read_text(encoding="utf-8")
    assert "# Central host: central.plant.local" in text
    assert (
        "central.plant.local" in result.stdout
        and "url: http://" in result.stdout
        and ":9900/metrics" in result.stdout
    )


def test_init_refuses_to_replace_a_file_without_force(tmp_path: Path) -> None:
    (tmp_path / "exporter.yaml").write_text("# mine\n", encoding="utf-8")
    result = run(["init", *INIT_FLAGS], tmp_path)
    assert result.returncode == 2
    assert "exporter.yaml exists; use --force" in result.stderr
    assert (tmp_path / "exporter.yaml").read_text(encoding="utf-8") == "# mine\n"
    assert run(["init", *INIT_FLAGS, "--force"], tmp_path).returncode == 0
    assert load_config(tmp_path / "exporter.yaml").machine.id == "press_01"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--machine-id", "press_01", "--non-interactive"], "--serial-port required"),
        (["--serial-port", "COM3", "--non-interactive"], "--machine-id required"),
        (["--machine-id", "Press 01", "--serial-port", "COM3", "--non-interactive"], "machine id 'Press 01'"),
        (
            ["--machine-id", "p", "--serial-port", "COM3", "--listen", "nowhere", "--non-interactive"],
            "init: error: --listen: expected host:port",
        ),
    ],
)
def test_init_without_a_required_or_valid_value_exits_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(["init", *args], tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "exporter.yaml").exists()


class Terminal:
    """A child process on a pseudo-terminal: what it prints is read, answers are typed in."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: the test sees exactly what is printed
        self.process = subprocess.Popen(
            args, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, close_fds=True
        )
        os.close(slave)
        self.output = ""

    def expect(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"waited for {text!r}; the program printed {self.output!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"the program ended before printing {text!r}: {self.output!r}"
                self.output += chunk.decode("utf-8", "replace")

    def type(self, answer: str) -> None:
        os.write(self.master, answer.encode() + b"\n")

    def close(self) -> int:
        code = self.process.wait(30)
        os.close(self.master)
        return code


def test_init_asks_what_the_flags_do_not_give_on_a_terminal(tmp_path: Path) -> None:
    terminal = Terminal([*EXPORTER, "init", "--baudrate", "38400"], tmp_path)
    try:
        terminal.expect("Machine id")
        terminal.type("Press 01")
        terminal.expect("use lowercase letters")
        terminal.expect("Machine id (", timeout=30)
        terminal.type("press_01")
        terminal.expect("Machine name [press_01]: ")
        terminal.type("")
        terminal.expect("Serial port")
        terminal.type("/dev/ttyUSB3")
        terminal.expect("Central host")
        terminal.type("central.plant.local")
        terminal.expect("wrote exporter.yaml")
    finally:
        assert terminal.close() == 0
    config = load_config(tmp_path / "exporter.yaml")
    assert (config.machine.id, config.machine.name, config.serial.port) == (
        "press_01",
        "press_01",
        "/dev/ttyUSB3",
    )
    assert config.serial.baudrate == 38400
