"""The serial ports of this PC as a technician needs to tell them apart: device, description, VID:PID."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    hardware_id: str
    """`VID:PID=0403:6001` for a USB adapter, else pyserial's hardware id (`PNP0501`, ...), or ''."""


def list_serial_ports() -> list[PortInfo]:
    """Every port pyserial's `list_ports` finds, sorted by device name."""
    from serial.tools import list_ports

    return sorted((describe(port) for port in list_ports.comports()), key=lambda p: p.device)


def describe(port: Any) -> PortInfo:
    """A PortInfo from one pyserial ListPortInfo (or anything with its attributes)."""
    description = str(port.description or "")
    if description == "n/a":
        description = ""
    vid, pid = getattr(port, "vid", None), getattr(port, "pid", None)
    if vid is not None and pid is not None:
        hardware_id = f"VID:PID={vid:04X}:{pid:04X}"
    else:
        hardware_id = str(getattr(port, "hwid", "") or "")
        if hardware_id == "n/a":
            hardware_id = ""
    return PortInfo(str(port.device), description, hardware_id)
