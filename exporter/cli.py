"""`millwatch-exporter`: run the exporter, list this PC's serial ports, or hash a password.

    millwatch-exporter [--config exporter.yaml] [--listen HOST:PORT] [--serial-port PORT]
                       [--machine-id ID] [--buffer-path FILE] [--log-level LEVEL]
    millwatch-exporter ports
    millwatch-exporter hash-password [--algorithm scrypt|pbkdf2-sha256|bcrypt]

Exit status: 0 after a clean stop (Ctrl-C, SIGTERM), 2 for a bad configuration or bad flags,
1 when the exporter cannot start (address in use, unusable buffer file).
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
from exporter.passwords import ALGORITHMS, hash_password

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
    commands.add_parser("ports", help="list the serial ports of this PC and exit")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `millwatch-exporter`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "ports":
        return list_ports()
    if args.command == "hash-password":
        return print_password_hash(args.algorithm)
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
    """Print `device<TAB>description` for every serial port pyserial finds."""
    from serial.tools import list_ports as serial_list_ports

    ports = sorted(serial_list_ports.comports(), key=lambda p: p.device)
    if not ports:
        print("no serial ports found", file=sys.stderr)
    for port in ports:
        description = port.description if port.description and port.description != "n/a" else ""
        print(f"{port.device}\t{description}".rstrip())
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
    # A timed wait keeps the main thread responsive to signals on every platform (Windows included).
    while not stop.wait(0.5):
        pass


if __name__ == "__main__":
    sys.exit(main())
