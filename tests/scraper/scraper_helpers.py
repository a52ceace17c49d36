"""Helpers for the scraper tests: polling with a deadline, a real exporter on loopback, inventories."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from support import write_atomically

from scraper.service import ScraperService
from scraper.state import FleetState, Status
from scraper.store import Store

T = TypeVar("T")


async def async_wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """`wait_until` for code running on an event loop: polls without blocking the loop."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def run(coroutine: Awaitable[T], timeout: float = 60.0) -> T:
    """Run a test scenario on a fresh event loop, failing (not hanging) after `timeout` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def running(
    inventory: Path, store: Store, state: FleetState, **options: Any
) -> AsyncIterator[ScraperService]:
    """A started ScraperService with test-sized intervals (`options` override them); stopped at the end."""
    settings: dict[str, Any] = {
        "reload_interval": 0.1,
        "staleness_interval": 0.2,
        "store_retry_min": 0.05,
        "store_retry_max": 0.2,
    }
    settings.update(options)
    service = ScraperService(inventory, store, state, **settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def status_of(state: FleetState, machine_id: str) -> Status | None:
    view = state.get(machine_id)
    return None if view is None else view.status


class FakeExporter:
    """A real HTTP server on 127.0.0.1 serving a prometheus_client registry like the exporter does.

    Knobs (set any time, the next request sees them): `status`, `delay` (seconds before answering,
    released at once by `close`), `body` (bytes replacing the exposition), `gzip` (compress when
    asked). `requests` records the headers of every request.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.temperature = Gauge("machine_temperature_celsius", "Temperature.", registry=r)
        self.pressure = Gauge("machine_pressure_bar", "Pressure.", registry=r)
        self.speed = Gauge("machine_speed_rpm", "Speed.", registry=r)
        self.serial_up = Gauge("millwatch_serial_up", "Serial sensor reporting.", registry=r)
        self.last_reading = Gauge(
            "millwatch_serial_last_reading_timestamp_seconds", "Time of the last reading.", registry=r
        )
        self.info = Gauge("machine_info", "Identity.", ["machine_id", "name"], registry=r)
        self.boot_time = Gauge("system_boot_time_seconds", "Boot time.", registry=r)
        self.memory_total = Gauge("system_memory_total_bytes", "Memory.", registry=r)
        self.memory_available = Gauge("system_memory_available_bytes", "Memory available.", registry=r)
        self.disk_total = Gauge("system_disk_total_bytes", "Disk size.", ["mountpoint"], registry=r)
        self.disk_free = Gauge("system_disk_free_bytes", "Disk free.", ["mountpoint"], registry=r)
        self.cpu = Gauge("system_cpu_usage_ratio", "CPU.", registry=r)
        self.set_readings(temperature=60.0, pressure=1.02, speed=1480.0)
        self.serial_up.set(1)
        self.last_reading.set(time.time())
        self.info.labels(machine_id="m", name="M").set(1)
        self.boot_time.set(time.time() - 3600)
        self.memory_total.set(8e9)
        self.memory_available.set(6e9)
        self.disk_total.labels(mountpoint="/").set(100e9)
        self.disk_free.labels(mountpoint="/").set(30e9)
        self.disk_total.labels(mountpoint="/data").set(100e9)
        self.disk_free.labels(mountpoint="/data").set(80e9)
        self.cpu.set(0.25)

        self.status = 200
        self.delay = 0.0
        self.body: bytes | None = None
        self.gzip = True
        self.requests: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/metrics"

    def set_readings(self, temperature: float, pressure: float = 1.0, speed: float = 1000.0) -> None:
        self.temperature.set(temperature)
        self.pressure.set(pressure)
        self.speed.set(speed)

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                with exporter._lock:
                    exporter.requests.append({k.lower(): v for k, v in self.headers.items()})
                    exporter.in_flight += 1
                    exporter.max_in_flight = max(exporter.max_in_flight, exporter.in_flight)
                try:
                    if exporter.delay:
                        exporter._released.wait(exporter.delay)
                    self._answer()
                finally:
                    with exporter._lock:
                        exporter.in_flight -= 1

            def _answer(self) -> None:
                body = exporter.body if exporter.body is not None else generate_latest(exporter.registry)
                headers = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
                if exporter.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                try:
                    self.send_response(exporter.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the scraper gave up (timeout): expected in those tests

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def machine_yaml(machine_id: str, url: str, **extra: Any) -> str:
    """One machine entry of an inventory, in YAML flow style."""
    fields = {"id": machine_id, "url": url, **extra}
    return "  - {" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in fields.items()) + "}\n"


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return '"' + value + '"'
    return str(value)


def write_inventory(path: Path, machines: list[str], defaults: str | None = None) -> Path:
    """Write an inventory atomically (like an editor saving), so a watcher never sees half a file."""
    text = (
        defaults
        if defaults is not None
        else (
            "defaults:\n  scrape_interval: 0.3s\n  scrape_timeout: 0.25s\n"
            "  thresholds:\n    machine_temperature_celsius: {warn: 80, alarm: 95}\n"
        )
    )
    text += "machines:\n" + "".join(machines) if machines else "machines: []\n"
    return write_atomically(path, text)


class RawServer:
    """A TCP server on 127.0.0.1 whose every connection is handed to `serve(connection, stop)`.

    For misbehaviour an HTTP library would not produce: a body trickling in, a connection cut
    mid-body. `stop` is set by `close`, so a handler waiting on it ends at once.
    """

    def __init__(self, serve: Callable[[socket.socket, threading.Event], None]) -> None:
        self._serve = serve
        self.stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/metrics"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                connection.recv(65536)  # the request; its content does not matter here
                self._serve(connection, self.stop)
            except OSError:
                pass  # the client went away: what these tests provoke

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


Exporters = Callable[[], FakeExporter]
"""The `exporter_factory` fixture: each call starts one more FakeExporter (closed at the end)."""


def mangled(text: str, rng: random.Random, alphabet: list[str], most_edits: int) -> str:
    """`text` with 1 to `most_edits` random edits: a character replaced, inserted or deleted (the
    parsers' fuzz tests)."""
    chars = list(text)
    for _ in range(rng.randint(1, most_edits)):
        position = rng.randrange(len(chars))
        action = rng.random()
        if action < 0.4:
            chars[position] = rng.choice(alphabet)
        elif action < 0.7:
            chars.insert(position, rng.choice(alphabet))
        else:
            del chars[position]
    return "".join(chars)
