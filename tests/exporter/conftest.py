from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from exporter_helpers import MakeApp, MakeSensor, RawPty
from web_helpers import StartApp, app_config

from exporter.app import ExporterApp
from exporter.config import parse_config
from exporter.simulator import SimulatedSensor


@pytest.fixture
def make_sensor() -> Iterator[MakeSensor]:
    """make_sensor(scenario=..., interval=..., seed=..., link=...) -> a started SimulatedSensor."""
    sensors: list[SimulatedSensor] = []

    def make(**options: Any) -> SimulatedSensor:
        options.setdefault("interval", 0.05)
        options.setdefault("seed", 7)
        sensor = SimulatedSensor(**options)
        sensor.start()
        sensors.append(sensor)
        return sensor

    yield make
    for sensor in sensors:
        sensor.stop()


def exporter_config_data(port: str, buffer_path: Path, **serial: Any) -> dict[str, Any]:
    serial.setdefault("stale_after", "5s")
    return {
        "machine": {"id": "press_01", "name": "Press 01"},
        "listen": "127.0.0.1:0",
        "serial": {"port": port, **serial},
        "buffer": {"path": str(buffer_path)},
    }


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[MakeApp]:
    """make_app(serial_port, buffer_path=None, channels=None, **serial_keys) -> a started ExporterApp."""
    apps: list[ExporterApp] = []

    def make(
        port: str, *, buffer_path: Path | None = None, channels: Any = None, **serial: Any
    ) -> ExporterApp:
        data = exporter_config_data(port, buffer_path or tmp_path / "buffer.sqlite", **serial)
        if channels is not None:
            data["channels"] = channels
        app = ExporterApp(parse_config(data, "test"))
        app.start()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.stop()


@pytest.fixture
def raw_pty() -> Iterator[RawPty]:
    terminal = RawPty()
    yield terminal
    terminal.close()


@pytest.fixture
def start_app(tmp_path: Path, raw_pty: RawPty) -> Iterator[StartApp]:
    """start_app(web={...}, listen=...) -> a started ExporterApp reading a silent pseudo-terminal."""
    apps: list[ExporterApp] = []

    def start(web: dict[str, Any] | None = None, listen: str | None = None) -> ExporterApp:
        data = app_config(raw_pty.path, tmp_path / f"buffer{len(apps)}.sqlite", web)
        if listen is not None:
            data["listen"] = listen
        app = ExporterApp(parse_config(data, "test"))
        app.start()
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.stop()
