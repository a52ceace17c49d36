"""`millwatch-exporter` as a user runs it: a subprocess, real config files, real signals."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from exporter_helpers import MakeSensor, http_get, scrape, wait_until

EXPORTER = str(Path(sys.executable).with_name("millwatch-exporter"))
BAD_YAML = """\
machine:
  id: ironcast_berlin
  name: IronCast Berlin
listen: 0.0.0.0:9817
serial:
  port: COM3
  baudrate: fast
"""


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXPORTER, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_a_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_YAML)
    result = run(["--config", "bad.yaml"], tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "millwatch-exporter: error: bad.yaml:7: serial.baudrate: expected a positive integer, got 'fast'\n"
    )
    assert result.stdout == ""


def test_the_default_config_file_is_required_without_flags(tmp_path: Path) -> None:
    result = run([], tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "millwatch-exporter: error: exporter.yaml: cannot read the file: No such file or directory\n"
    )


def test_bad_flag_values_are_config_errors(tmp_path: Path) -> None:
    result = run(["--machine-id", "m1", "--serial-port", "COM3", "--listen", "everywhere"], tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "millwatch-exporter: error: command line: listen: expected host:port (for example 0.0.0.0:9817 "
        "or [::]:9817), got 'everywhere'\n"
    )


def test_ports_lists_serial_ports(tmp_path: Path) -> None:
    result = run(["ports"], tmp_path)
    assert result.returncode == 0
    for line in result.stdout.splitlines():
        assert line.split("\t")[0], line
    if not result.stdout:
        assert result.stderr == "no serial ports found\n"


def test_help_names_every_flag(tmp_path: Path) -> None:
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for flag in (
        "--config",
        "--listen",
        "--serial-port",
        "--machine-id",
        "--buffer-path",
        "--log-level",
        "ports",
    ):
        assert flag in result.stdout


class Exporter:
    """A running `millwatch-exporter` whose stderr is collected line by line."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [EXPORTER, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def url(self) -> str:
        def found() -> str | None:
            for line in self.lines:
                match = re.search(r"serving (http://\S+/metrics)", line)
                if match:
                    return match.group(1)
            assert self.process.poll() is None, "".join(self.lines)
            return None

        return wait_until(found, what="the start line")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_runs_serves_and_stops_cleanly_on_a_signal(
    make_sensor: MakeSensor, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    sensor = make_sensor()
    config = tmp_path / "exporter.yaml"
    config.write_text("machine: {id: lathe_7, name: Lathe 7}\nserial: {port: COM99, stale_after: 5s}\n")
    exporter = Exporter(
        ["--listen", "127.0.0.1:0", "--serial-port", sensor.path, "--buffer-path", "buf.sqlite"], tmp_path
    )
    try:
        url = exporter.url()
        start_lines = [line for line in exporter.lines if "serving" in line]
        assert len(start_lines) == 1
        assert sensor.path in start_lines[0] and "lathe_7" in start_lines[0]
        wait_until(lambda: scrape(url).get("millwatch_serial_up") == 1.0, what="readings")
        assert scrape(url)['machine_info{machine_id="lathe_7",name="Lathe 7"}'] == 1.0
        assert (tmp_path / "buf.sqlite").exists()
        exporter.process.send_signal(stop_signal)
        assert exporter.process.wait(timeout=10) == 0
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        exporter.stop()


def test_a_taken_port_exits_1_with_the_reason(make_sensor: MakeSensor, tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        result = run(
            [
                "--machine-id",
                "m1",
                "--serial-port",
                make_sensor().path,
                "--listen",
                f"127.0.0.1:{port}",
                "--buffer-path",
                "b.sqlite",
            ],
            tmp_path,
        )
    finally:
        holder.close()
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"millwatch-exporter: error: cannot listen on 127.0.0.1:{port}: "
    )


def test_the_status_page_of_a_running_exporter(make_sensor: MakeSensor, tmp_path: Path) -> None:
    sensor = make_sensor(scenario="garbage")
    exporter = Exporter(
        [
            "--machine-id",
            "m1",
            "--serial-port",
            sensor.path,
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "debug",
            "--buffer-path",
            "b.sqlite",
        ],
        tmp_path,
    )
    try:
        root = exporter.url().rsplit("/metrics", 1)[0]
        wait_until(lambda: "Last error" in http_get(root + "/").text, what="an error on the status page")
        page = http_get(root + "/").text
        assert "Port open, no fresh readings" in page
    finally:
        exporter.stop()
