"""`millwatch simulate-serial`: a sensor on a pseudo-terminal, for demos and tests.

The sensor writes lines in one of the formats the exporter reads (`line_format`):

- `kv`: `temperature=65.2 pressure=1.003 speed=1481`,
- `json`: `{"temperature": 65.2, "pressure": 1.003, "speed": 1481}`,
- `csv`: `65.2,1.003,1481` (fields temperature, pressure, speed), with `csv_header` a
  `temperature,pressure,speed` header line first and every `HEADER_EVERY` lines, as loggers
  print one when they start and again from time to time,
- `vendor`: `ACME-7 T:065.2C P:1.003bar N:01481rpm ST:OK`, a vendor's text read with
  `format: regex` and `VENDOR_PATTERN`.

It talks by itself every `interval` seconds, or, with `poll_command`, answers that command (one line
per command received, as a polled sensor does) and says nothing otherwise. It writes to the master
side of a pseudo-terminal; the exporter opens the slave side like any serial port. The slave is put
in raw mode so lines arrive exactly as written, and the simulator keeps its own slave descriptor
open so that an exporter closing and reopening the port does not hang the terminal up. Writes never
block: when nobody reads and the terminal's buffer is full, the line is dropped, as a real device
would.

Scenarios (`scenario` may be changed at any time, from any thread):

- `normal`: realistic drifting values around 65 °C, 1.0 bar and 1480 rpm;
- `overheat`: the temperature climbs about 1.5 °C per line up to about 105 °C and stays there;
- `silent`: nothing is written (a sensor that stopped talking);
- `garbage`: only random bytes and malformed lines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from exporter.errors import SimulatorError

SCENARIOS = ("normal", "overheat", "silent", "garbage")
LINE_FORMATS = ("kv", "json", "csv", "vendor")
CSV_FIELDS = ("temperature", "pressure", "speed")
VENDOR_PATTERN = r"T:(?P<temperature>[-\d.]+)C P:(?P<pressure>[\d.]+)bar N:(?P<speed>\d+)rpm"
"""The `serial.pattern` that reads the `vendor` lines."""
MAX_COMMAND_BYTES = 256
HEADER_EVERY = 10

TEMPERATURE_MEAN = 65.0
PRESSURE_MEAN = 1.0
SPEED_MEAN = 1480.0
OVERHEAT_STEP = 1.5
OVERHEAT_CEILING = 105.0
_REVERSION = 0.08  # share of the distance to the mean recovered per line

# Lines a confused device might send; none of them is a valid kv line.
_MALFORMED = (
    "temperature=",
    "temperature=hot pressure=1.0",
    "=72.5",
    "T=72.5.1 P=1,02",
    "speed=1480rpm",
    "ERR 42 sensor fault",
    "temperature==65 pressure",
    "#$%&*!",
)


class SimulatedSensor:
    """A sensor that writes one line every `interval` seconds to a pseudo-terminal.

    `seed` makes the values reproducible; `link`, when given, is a symlink made to point at the
    slave device (so a config can name a stable path). `start()` returns the slave's path;
    `stop()` stops writing, removes the link and closes the terminal (an exporter reading it then
    sees an I/O error, like an unplugged cable). Raises SimulatorError where pseudo-terminals do
    not exist (Windows) or the link cannot be made, ValueError for an unknown scenario.
    """

    def __init__(
        self,
        scenario: str = "normal",
        interval: float = 1.0,
        seed: int | None = None,
        link: str | os.PathLike[str] | None = None,
        *,
        line_format: str = "kv",
        csv_header: bool = False,
        poll_command: str | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        if line_format not in LINE_FORMATS:
            raise ValueError(f"unknown format {line_format!r} (expected one of {', '.join(LINE_FORMATS)})")
        if poll_command is not None and not poll_command.strip():
            raise ValueError("the poll command must not be empty")
        self.line_format = line_format
        self.csv_header = csv_header
        self.poll_command = None if poll_command is None else poll_command.strip()
        self.commands_received = 0
        self._data_lines = 0
        self._lock = threading.Lock()
        self._scenario = _checked(scenario)
        self.interval = interval
        self.link = None if link is None else os.fspath(link)
        self._random = random.Random(seed)
        self._temperature = TEMPERATURE_MEAN + self._random.uniform(-3, 3)
        self._pressure = PRESSURE_MEAN + self._random.uniform(-0.02, 0.02)
        self._speed = SPEED_MEAN + self._random.uniform(-10, 10)
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lines_written = 0
        self.lines_dropped = 0

    @property
    def scenario(self) -> str:
        with self._lock:
            return self._scenario

    @scenario.setter
    def scenario(self, value: str) -> None:
        checked = _checked(value)
        with self._lock:
            self._scenario = checked

    @property
    def path(self) -> str | None:
        """The slave device's path while running."""
        return self._path

    def start(self) -> str:
        """Open the pseudo-terminal, make the link, start writing. Returns the slave's path."""
        if self._thread is not None:
            raise RuntimeError("SimulatedSensor.start() called twice")
        try:
            import tty  # POSIX only: imported here so the exporter package still imports on Windows

            master, slave = os.openpty()
        except (ImportError, AttributeError, OSError) as exc:
            raise SimulatorError(f"cannot create a pseudo-terminal on this system: {exc}") from exc
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._path = os.ttyname(slave)
        if self.link is not None:
            try:
                _replace_symlink(self._path, self.link)
            except OSError as exc:
                self._close_terminal()
                raise SimulatorError(f"cannot make the link {self.link}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name=f"simulated-sensor {self._path}", daemon=True)
        self._thread.start()
        return self._path

    def stop(self) -> None:
        """Stop writing, remove the link (if it still points here) and close the terminal."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self.link is not None and self._path is not None:
            try:
                if os.path.islink(self.link) and os.readlink(self.link) == self._path:
                    os.unlink(self.link)
            except OSError:
                pass  # someone else already replaced or removed it
        self._close_terminal()

    def __enter__(self) -> SimulatedSensor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- writing -----------------------------------------------------------------------------------

    def next_line(self) -> bytes | None:
        """The next line the sensor sends in its current scenario (None: it says nothing)."""
        scenario = self.scenario
        if scenario == "silent":
            return None
        if scenario == "garbage":
            return self._garbage()
        self._drift(overheating=scenario == "overheat")
        self._data_lines += 1
        line = (self._format() + "\r\n").encode("ascii")
        if self.csv_header and self.line_format == "csv" and self._data_lines % HEADER_EVERY == 1:
            return self.header_line() + line
        return line

    def header_line(self) -> bytes:
        """The CSV header line (`temperature,pressure,speed`)."""
        return (",".join(CSV_FIELDS) + "\r\n").encode("ascii")

    def _format(self) -> str:
        t, p, s = round(self._temperature, 1), round(self._pressure, 3), round(self._speed)
        if self.line_format == "json":
            return json.dumps({"temperature": t, "pressure": p, "speed": s})
        if self.line_format == "csv":
            return f"{t:.1f},{p:.3f},{s:d}"
        if self.line_format == "vendor":
            return f"ACME-7 T:{t:05.1f}C P:{p:.3f}bar N:{s:05d}rpm ST:OK"
        return f"temperature={t:.1f} pressure={p:.3f} speed={s:d}"

    def _drift(self, *, overheating: bool) -> None:
        rnd = self._random
        if overheating:
            if self._temperature < OVERHEAT_CEILING:
                self._temperature = min(
                    OVERHEAT_CEILING, self._temperature + OVERHEAT_STEP + rnd.gauss(0, 0.2)
                )
            else:
                self._temperature = OVERHEAT_CEILING + rnd.gauss(0, 0.3)
        else:
            self._temperature += _REVERSION * (TEMPERATURE_MEAN - self._temperature) + rnd.gauss(0, 0.25)
        self._pressure += _REVERSION * (PRESSURE_MEAN - self._pressure) + rnd.gauss(0, 0.004)
        self._speed += _REVERSION * (SPEED_MEAN - self._speed) + rnd.gauss(0, 3.0)

    def _garbage(self) -> bytes:
        rnd = self._random
        if rnd.random() < 0.5:
            return (rnd.choice(_MALFORMED) + "\r\n").encode("ascii")
        # 0xFF never occurs in UTF-8, so such a line can never be read as text by accident.
        noise = bytes(rnd.choice(range(256)) for _ in range(rnd.randint(4, 60)))
        return b"\xff" + noise.replace(b"\n", b"").replace(b"\r", b"") + b"\n"

    def _run(self) -> None:
        if self.poll_command is not None:
            self._answer_commands(self.poll_command)
            return
        while not self._stop.is_set():
            line = self.next_line()
            if line is not None:
                self._write(line)
            self._stop.wait(self.interval)

    def _answer_commands(self, command: str) -> None:
        """Poll mode: read what the exporter writes; answer each `command` line with one reading."""
        pending = bytearray()
        while not self._stop.is_set():
            master = self._master
            if master is None:
                return
            try:
                ready, _, _ = select.select([master], [], [], 0.1)
                data = os.read(master, 1024) if ready else b""
            except BlockingIOError:
                continue
            except OSError:
                # EIO while no one holds the slave open on some systems: wait and look again.
                self._stop.wait(0.1)
                continue
            pending += data
            while True:
                ends = [i for i in (pending.find(b"\r"), pending.find(b"\n")) if i >= 0]
                if not ends:
                    if len(pending) > MAX_COMMAND_BYTES:
                        pending.clear()  # not a command this sensor knows
                    break
                end = min(ends)
                received = bytes(pending[:end]).decode("ascii", "replace").strip()
                del pending[: end + 1]
                if not received:
                    continue
                self.commands_received += 1
                if received == command:
                    line = self.next_line()
                    if line is not None:
                        self._write(line)
                elif self.scenario != "silent":
                    self._write(b"ERR unknown command\r\n")

    def _write(self, line: bytes) -> None:
        master = self._master
        if master is None:
            return
        try:
            written = os.write(master, line)
        except BlockingIOError:
            self.lines_dropped += 1  # nobody is reading and the terminal is full
            return
        except OSError:
            self.lines_dropped += 1
            return
        if written == len(line):
            self.lines_written += 1
        else:
            self.lines_dropped += 1

    def _close_terminal(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None


def _checked(scenario: str) -> str:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (expected one of {', '.join(SCENARIOS)})")
    return scenario


def _replace_symlink(target: str, link: str) -> None:
    """Point `link` at `target` atomically, replacing an older link but never a real file."""
    if os.path.lexists(link) and not os.path.islink(link):
        raise FileExistsError(f"{link} exists and is not a symlink")
    temporary = f"{link}.tmp-{os.getpid()}"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def build_parser(prog: str = "millwatch simulate-serial") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a simulated serial sensor on a pseudo-terminal. Prints the device path on the "
        "first line, then writes lines (or answers a poll command) until Ctrl-C.",
    )
    parser.add_argument(
        "--format",
        dest="line_format",
        choices=LINE_FORMATS,
        default="kv",
        help="the line format: kv, json, csv (temperature,pressure,speed) or vendor (read with "
        f"format regex and the pattern {VENDOR_PATTERN}) (default: kv)",
    )
    parser.add_argument(
        "--csv-header", action="store_true", help="with --format csv: first write a header line"
    )
    parser.add_argument(
        "--poll",
        metavar="COMMAND",
        default=None,
        help="act as a polled sensor: say nothing by itself, answer each COMMAND line with one reading",
    )
    parser.add_argument(
        "--scenario", choices=SCENARIOS, default="normal", help="what the sensor does (default: normal)"
    )
    parser.add_argument(
        "--interval", type=_positive_float, default=1.0, help="seconds between lines (default: 1)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed, for reproducible values")
    parser.add_argument("--link", default=None, help="also make this symlink to the device (a stable path)")
    parser.add_argument(
        "--after",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="start normal and switch to --scenario after this many seconds",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `millwatch simulate-serial`. Returns the exit status (0 after Ctrl-C or SIGTERM)."""
    args = build_parser().parse_args(argv)
    first = "normal" if args.after is not None else args.scenario
    sensor = SimulatedSensor(
        scenario=first,
        interval=args.interval,
        seed=args.seed,
        link=args.link,
        line_format=args.line_format,
        csv_header=args.csv_header,
        poll_command=args.poll,
    )
    try:
        path = sensor.start()
    except SimulatorError as exc:
        print(f"millwatch simulate-serial: error: {exc}", file=sys.stderr)
        return 1
    print(path, flush=True)
    if args.link:
        print(f"linked {args.link} -> {path}", file=sys.stderr, flush=True)

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.after is not None and not done.wait(args.after):
            sensor.scenario = args.scenario
            print(f"scenario is now {args.scenario}", file=sys.stderr, flush=True)
        while not done.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sensor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
