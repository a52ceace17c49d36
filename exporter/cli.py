"""`millwatch-exporter`: run the exporter, and the technician's tools (ports, probe, init, hash-password).

    millwatch-exporter [--config exporter.yaml] [--listen HOST:PORT] [--serial-port PORT]
                       [--machine-id ID] [--buffer-path FILE] [--log-level LEVEL]
    millwatch-exporter ports
    millwatch-exporter hash-password [--algorithm scrypt|pbkdf2-sha256|bcrypt]
    millwatch-exporter probe PORT [--baud auto|N] [--seconds N] [--command TEXT]
    millwatch-exporter init [--output PATH] [--machine-id ID] [--name NAME] [--serial-port PORT]
                            [--baudrate N] [--listen HOST:PORT] [--central-host HOST]
                            [--non-interactive] [--force]

Exit status: 0 after a clean stop (Ctrl-C, SIGTERM), 2 for a bad configuration or bad flags,
1 when the exporter cannot start (address in use, unusable buffer file). `probe` exits 1 when
nothing readable was received; `init` exits 2 for a missing or bad value, 1 when it cannot write.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from exporter import __version__
from exporter.app import ExporterApp
from exporter.config import load_config
from exporter.errors import ConfigError, ExporterError
from exporter.init_config import Answers, InitError, central_entry, complete, stdin_is_terminal, write
from exporter.passwords import ALGORITHMS, hash_password
from exporter.ports import list_serial_ports
from exporter.probe import COMMON_BAUD_RATES, ProbeError, check_block, config_block, probe
from millwatch_common.names import DEFAULT_EXPORTER_PORT

PROG = "millwatch-exporter"
DEFAULT_CONFIG = "exporter.yaml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

log = logging.getLogger("exporter")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a machine's serial sensor readings and system figures in the Prometheus format.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help=f"the configuration file (default: ./{DEFAULT_CONFIG}; without it, the flags below must "
        "give at least --machine-id and --serial-port)",
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (overrides listen)")
    parser.add_argument(
        "--serial-port", metavar="PORT", help="serial port or pyserial URL (overrides serial.port)"
    )
    parser.add_argument("--machine-id", metavar="ID", help="the machine's id (overrides machine.id)")
    parser.add_argument(
        "--buffer-path", metavar="FILE", help="the reading buffer file (overrides buffer.path)"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="logging level (default: INFO)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "ports", help="list the serial ports of this PC (device, description, VID:PID) and exit"
    )
    hashing = commands.add_parser(
        "hash-password",
        help="print a password hash for web.basic_auth_users and exit",
        description="Print a salted hash of a password, for web.basic_auth_users in exporter.yaml. "
        "The password is asked twice without echo on a terminal, or read as one line from stdin "
        '(for scripts: echo "$PASSWORD" | millwatch-exporter hash-password).',
    )
    hashing.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default="scrypt",
        help="scrypt (default) and pbkdf2-sha256 need nothing but Python; bcrypt needs millwatch[bcrypt]",
    )
    probe = commands.add_parser(
        "probe",
        help="listen to a serial port, guess the format and channels, print a serial:/channels: block",
        description="Listen to PORT for a few seconds, guess the baud rate (with --baud auto), the line "
        "format and the reading keys, and print a serial: / channels: block for exporter.yaml. "
        "Stop the exporter first if it holds the port.",
    )
    probe.add_argument("port", metavar="PORT", help="serial port or pyserial URL (COM3, /dev/ttyUSB0, ...)")
    probe.add_argument(
        "--baud",
        default="auto",
        type=_baud,
        metavar="auto|N",
        help="baud rate, or auto to try 9600, 19200, 38400, 57600, 115200, 4800, 2400, 1200 in turn "
        "(default: auto)",
    )
    probe.add_argument(
        "--command",
        dest="poll_command",  # `command` is the subcommand's name
        metavar="TEXT",
        help="for a sensor that only answers when asked: send TEXT (with CR LF) every 0.2s while "
        "listening, and write mode: poll with it",
    )
    probe.add_argument(
        "--seconds",
        type=_positive_seconds,
        default=3.0,
        metavar="N",
        help="how long to listen at each baud rate (default: 3)",
    )
    init = commands.add_parser(
        "init",
        help="write a first exporter.yaml (asks what the flags do not give)",
        description="Write exporter.yaml. Asks for the machine id, name, serial port and central host "
        "when stdin is a terminal and the flags do not give them; with --non-interactive, "
        "--machine-id and --serial-port are required. The file is validated before it is written.",
    )
    init.add_argument(
        "--output", default=DEFAULT_CONFIG, metavar="PATH", help="file to write (default: exporter.yaml)"
    )
    init.add_argument("--machine-id", dest="init_machine_id", metavar="ID", help="the machine's id")
    init.add_argument("--name", metavar="NAME", help="the machine's display name (default: its id)")
    init.add_argument(
        "--serial-port", dest="init_serial_port", metavar="PORT", help="serial port or pyserial URL"
    )
    init.add_argument("--baudrate", type=int, default=9600, metavar="N", help="baud rate (default: 9600)")
    init.add_argument(
        "--listen",
        dest="init_listen",
        default=f"0.0.0.0:{DEFAULT_EXPORTER_PORT}",
        metavar="HOST:PORT",
        help=f"address to serve on (default: 0.0.0.0:{DEFAULT_EXPORTER_PORT})",
    )
    init.add_argument(
        "--central-host",
        metavar="HOST",
        help="the central host that scrapes this machine (written as a comment with its machines.yaml entry)",
    )
    init.add_argument("--non-interactive", action="store_true", help="never ask; a missing value is an error")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    return parser


def _baud(text: str) -> int | None:
    if text == "auto":
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected auto or a baud rate such as 9600, got {text!r}")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"expected 0-60 seconds, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `millwatch-exporter`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "ports":
        return list_ports()
    if args.command == "hash-password":
        return print_password_hash(args.algorithm)
    if args.command == "probe":
        return probe_port(args.port, args.baud, args.seconds, args.poll_command)
    if args.command == "init":
        return init_config(args)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    overrides = {
        key: value
        for key, value in (
            ("listen", args.listen),
            ("serial.port", args.serial_port),
            ("machine.id", args.machine_id),
            ("buffer.path", args.buffer_path),
        )
        if value is not None
    }
    path = args.config
    if path is None:
        # The default file is optional when the flags give everything required.
        path = DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) or not overrides else None
    try:
        config = load_config(path, overrides)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    app = ExporterApp(config)
    try:
        app.start()
    except ExporterError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    log.info(
        "millwatch-exporter %s for machine %s: serving %s (listening on %s), serial port %s",
        __version__,
        config.machine.id,
        app.url,
        config.listen,
        config.serial.port,
    )
    _wait_for_stop_signal()
    log.info("stopping")
    app.stop()
    return 0


def list_ports() -> int:
    """Print `device<TAB>description<TAB>hardware id` for every serial port pyserial finds."""
    ports = list_serial_ports()
    if not ports:
        print("no serial ports found", file=sys.stderr)
    for port in ports:
        print(f"{port.device}\t{port.description}\t{port.hardware_id}".rstrip())
    return 0


def probe_port(port: str, baud: int | None, seconds: float, command: str | None = None) -> int:
    """`probe`: the guessed block on stdout, progress on stderr."""
    rates = COMMON_BAUD_RATES if baud is None else (baud,)
    try:
        guess = probe(
            port,
            rates,
            seconds,
            report=lambda message: print(message, file=sys.stderr, flush=True),
            command=command,
        )
    except ProbeError as exc:
        print(f"{PROG} probe: {exc}", file=sys.stderr)
        return 1
    block = config_block(port, guess)
    check_block(block)  # a block the exporter would refuse is a bug here, not the technician's problem
    print(block, end="")
    return 0


def init_config(args: argparse.Namespace) -> int:
    """`init`: complete the answers, validate, write; the central host's entry printed at the end."""
    answers = Answers(
        output=args.output,
        machine_id=args.init_machine_id,
        name=args.name,
        serial_port=args.init_serial_port,
        baudrate=args.baudrate,
        listen=args.init_listen,
        central_host=args.central_host,
    )
    interactive = not args.non_interactive and stdin_is_terminal()
    try:
        ports = list_serial_ports() if interactive and not answers.serial_port else []
        complete(answers, interactive=interactive, ports=ports, ask=input, out=sys.stdout)
    except (InitError, EOFError) as exc:
        print(f"{PROG} init: error: {exc or 'no answer'}", file=sys.stderr)
        return 2
    if os.path.exists(answers.output) and not args.force and interactive:
        reply = input(f"{answers.output} exists. Replace it? [y/N] ").strip().lower()
        args.force = reply in ("y", "yes")
    try:
        write(answers, force=args.force)
    except InitError as exc:
        print(f"{PROG} init: error: {exc}", file=sys.stderr)
        return 1 if "cannot write" in str(exc) else 2
    print(f"wrote {answers.output}")
    if answers.central_host:
        print(f"On the central host {answers.central_host}, add to machines.yaml:")
        print(central_entry(answers), end="")
    return 0


def print_password_hash(algorithm: str) -> int:
    """Read a password (no echo on a terminal, one line from a pipe) and print its hash."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print(f"{PROG}: error: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print(f"{PROG}: error: the password is empty", file=sys.stderr)
        return 2
    try:
        print(hash_password(password.encode("utf-8"), algorithm))
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _wait_for_stop_signal() -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    # On POSIX a blocking wait is interrupted by the signal and its handler runs at once: no wake-ups
    # while idle. Windows runs Python signal handlers only between waits, so a timed wait there.
    timeout = 0.5 if sys.platform == "win32" else None
    while not stop.wait(timeout):
        pass


if __name__ == "__main__":
    sys.exit(main())
