"""Starting a real exporter with a `web:` section, for the HTTP security and bounds tests.

Kept free of the central side's packages (and of httpx): these tests also run in the exporter-only
Python 3.9 venv.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from exporter.app import ExporterApp

T = TypeVar("T")

StartApp = Callable[..., ExporterApp]


def app_config(serial_port: str, buffer: Path, web: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "machine": {"id": "press_01", "name": "Press 01"},
        "listen": "127.0.0.1:0",
        "serial": {"port": serial_port},
        "buffer": {"path": str(buffer)},
    }
    if web is not None:
        data["web"] = web
    return data


def poll(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `predicate` until truthy (returned); AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
