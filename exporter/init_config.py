"""`millwatch-exporter init`: write a first exporter.yaml, by questions or entirely from flags.

Questions are asked only for what the flags did not give, and only when stdin is a terminal; with
`--non-interactive` (scripts, INSTALL.bat) a missing required value is an error. The file is
checked with the exporter's own validation before it replaces anything, and written atomically.

`--central-host` has no key in exporter.yaml (the exporter never calls the central host in pull
mode): it is written as a comment, with the `machines.yaml` entry the central host needs, which is
also printed, so the technician can pass it on.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TextIO

from exporter.config import SerialConfig, load_config
from exporter.errors import ConfigError
from exporter.ports import PortInfo
from millwatch_common.names import DEFAULT_EXPORTER_PORT, MACHINE_ID


class InitError(Exception):
    """A value is missing or wrong, or the file cannot be written; the message says which."""


@dataclass
class Answers:
    output: str
    machine_id: str | None = None
    name: str | None = None
    serial_port: str | None = None
    baudrate: int = SerialConfig.baudrate
    listen: str = f"0.0.0.0:{DEFAULT_EXPORTER_PORT}"
    central_host: str | None = None


Ask = Callable[[str], str]

# The keys init writes from a flag: a validation problem is reported against the flag.
_FLAGS = {
    "machine.id": "--machine-id",
    "machine.name": "--name",
    "listen": "--listen",
    "serial.port": "--serial-port",
    "serial.baudrate": "--baudrate",
}


def complete(
    answers: Answers, *, interactive: bool, ports: Sequence[PortInfo], ask: Ask, out: TextIO
) -> Answers:
    """Fill what the flags left open, by asking (when `interactive`), or raise InitError."""
    if not interactive:
        missing = [
            flag
            for flag, value in (("--machine-id", answers.machine_id), ("--serial-port", answers.serial_port))
            if not value
        ]
        if missing:
            raise InitError(f"{' and '.join(missing)} required (no terminal to ask, or --non-interactive)")
        _check_id(answers.machine_id or "")
        return answers
    while not answers.machine_id:
        value = ask("Machine id (lowercase letters, digits, _ or -, as in the central inventory): ").strip()
        try:
            answers.machine_id = _check_id(value)
        except InitError as exc:
            print(f"  {exc}", file=out)
    if answers.name is None:
        answers.name = ask(f"Machine name [{answers.machine_id}]: ").strip() or answers.machine_id
    if not answers.serial_port:
        answers.serial_port = _ask_port(ports, ask, out)
    if answers.central_host is None:
        answers.central_host = ask(
            "Central host that reads this machine (name or address, empty to skip): "
        ).strip()
    return answers


def _check_id(value: str) -> str:
    if not MACHINE_ID.match(value):
        raise InitError(f"machine id {value!r}: use lowercase letters, digits, '_' or '-'")
    return value


def _ask_port(ports: Sequence[PortInfo], ask: Ask, out: TextIO) -> str:
    if ports:
        print("Serial ports of this PC:", file=out)
        for number, port in enumerate(ports, 1):
            details = " ".join(part for part in (port.description, port.hardware_id) if part)
            print(f"  {number}) {port.device}  {details}".rstrip(), file=out)
    while True:
        hint = f" [1-{len(ports)} or a name]" if ports else ""
        value = ask(f"Serial port{hint}: ").strip()
        if value.isdigit() and ports and 1 <= int(value) <= len(ports):
            return ports[int(value) - 1].device
        if value and not value.isdigit():
            return value
        print("  give a port name such as COM3 or /dev/ttyUSB0", file=out)


def render(answers: Answers, now: datetime | None = None) -> str:
    """The exporter.yaml text for complete `answers`."""
    now = now or datetime.now(timezone.utc)
    machine_id = answers.machine_id or ""
    port = answers.listen.rsplit(":", 1)[-1]
    lines = [
        f"# exporter.yaml written by `millwatch-exporter init` on {now:%Y-%m-%d %H:%M} UTC.",
        "# Every key is described in docs/exporter.md; `millwatch-exporter probe PORT` suggests the",
        "# serial: and channels: settings for an unknown sensor.",
    ]
    if answers.central_host:
        lines += [
            f"# Central host: {answers.central_host}. It reads this machine (pull); its machines.yaml needs:",
            f"#   - id: {machine_id}",
            f"#     url: http://{socket.gethostname()}:{port}/metrics",
        ]
    lines += [
        "machine:",
        f"  id: {machine_id}",
        f"  name: {json.dumps(answers.name or machine_id, ensure_ascii=False)}",
        f"listen: {json.dumps(answers.listen)}",
        "serial:",
        f"  port: {json.dumps(answers.serial_port or '', ensure_ascii=False)}",
        f"  baudrate: {answers.baudrate}",
        "  format: kv              # kv | json | csv | regex",
        "  mode: stream            # stream | poll",
        "  stale_after: 30s",
        "buffer:",
        "  path: ./millwatch-buffer.sqlite",
        "  retention: 24h",
        "  max_bytes: 200MB",
    ]
    return "\n".join(lines) + "\n"


def write(answers: Answers, *, force: bool) -> None:
    """Validate and write the file atomically. Raises InitError (exists without force, invalid, I/O)."""
    path = answers.output
    if os.path.exists(path) and not force:
        raise InitError(f"{path} exists; use --force to replace it")
    text = render(answers)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".exporter-", suffix=".yaml", dir=folder)
    except OSError as exc:
        raise InitError(f"cannot write in {folder}: {exc}") from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        try:
            load_config(temporary)
        except ConfigError as exc:
            flag = _FLAGS.get(exc.key or "")
            raise InitError(f"{flag}: {exc.message}" if flag else str(exc).replace(temporary, path)) from exc
        os.replace(temporary, path)
    except OSError as exc:
        raise InitError(f"cannot write {path}: {exc}") from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def central_entry(answers: Answers) -> str:
    """The machines.yaml entry for the central host, as printed after writing."""
    port = answers.listen.rsplit(":", 1)[-1]
    return (
        f"  - id: {answers.machine_id}\n"
        f"    name: {json.dumps(answers.name or answers.machine_id, ensure_ascii=False)}\n"
        f"    url: http://{socket.gethostname()}:{port}/metrics\n"
    )


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
