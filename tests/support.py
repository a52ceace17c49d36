"""Helpers shared by the test folders: waiting with a deadline, free ports, real exporters on
simulated sensors, and `millwatch` as a subprocess.

tests/exporter also runs under Python 3.9 in a venv holding only the exporter's install (make
test-exporter-py39): this module imports nothing else at import time; httpx (central) is imported
by the helpers that need it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from exporter.app import ExporterApp
from exporter.config import parse_config
from exporter.simulator import SimulatedSensor

T = TypeVar("T")

MILLWATCH = str(Path(sys.executable).with_name("millwatch"))
POSTGRES_ENV = "MILLWATCH_TEST_POSTGRES_URL"


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns a truthy value (returned); AssertionError after `timeout` s.

    A predicate may raise AssertionError to explain what it saw; the last one is in the message.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
        except AssertionError as e:
            last_error = e
        else:
            if result:
                return result
        if time.monotonic() > deadline:
            detail = f": {last_error}" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(0.02)


def write_atomically(path: Path, text: str) -> Path:
    """Replace `path` by `text` in one step (as editors save), so a file watcher never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for subprocesses that bind it themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port_url() -> str:
    """A /metrics URL on 127.0.0.1 where nothing listens (a port that was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}/metrics"


def get_json(url: str) -> Any:
    """The JSON body of GET url, or None when nothing answers there (yet)."""
    import httpx

    try:
        return httpx.get(url, timeout=5).json()
    except httpx.TransportError:
        return None


@contextlib.contextmanager
def exporter_on_sensor(
    machine_id: str, scenario: str, folder: Path, *, stale_after: str = "2s", interval: float = 0.05
) -> Iterator[tuple[SimulatedSensor, str]]:
    """A real exporter on 127.0.0.1:0 reading a simulated sensor; yields (sensor, /metrics URL)."""
    with SimulatedSensor(scenario=scenario, interval=interval, seed=1) as sensor:
        assert sensor.path is not None
        config = parse_config(
            {
                "machine": {"id": machine_id, "name": machine_id},
                "listen": "127.0.0.1:0",
                "serial": {"port": sensor.path, "stale_after": stale_after},
                "buffer": {"path": str(folder / f"{machine_id}.sqlite")},
            },
            "test",
        )
        with ExporterApp(config) as app:
            yield sensor, app.url


class MillwatchProcess:
    """`millwatch ARGS` as a subprocess, its output in files (a full pipe would block it).

    Used as a context manager: on exit a still-running process gets SIGINT, then SIGKILL.
    """

    def __init__(self, args: list[str], folder: Path, env: dict[str, str] | None = None) -> None:
        self.stdout_path = folder / f"millwatch-{args[0]}-{os.getpid()}-{id(self)}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        self._args = args
        # Anonymous read unless `env` says otherwise: most tests run the server as a wall screen
        # reads it; the access-control tests set MILLWATCH_ANONYMOUS_READ=false themselves.
        self._env = {"MILLWATCH_ANONYMOUS_READ": "true", **os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MillwatchProcess:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen([MILLWATCH, *self._args], stdout=out, stderr=err, env=self._env)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop(signal.SIGINT)

    def wait_healthy(self, port: int, timeout: float = 90.0) -> None:
        """Wait until /healthz on 127.0.0.1:port answers 200 (AssertionError, with the log, if it exits)."""

        import httpx

        def healthy() -> bool:
            if not self.running():
                raise AssertionError(f"millwatch exited early:\n{self.stderr}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout, what=f"millwatch {self._args[0]} to answer /healthz")

    def wait_serving(self, timeout: float = 30.0) -> int:
        """The port of a `serve --port 0` once it prints `serving http(s)://host:PORT/` (ready).

        Port 0 lets the kernel choose: no other test can take the port between a choice and the bind.
        """

        def announced() -> int | None:
            if not self.running():
                raise AssertionError(f"millwatch exited early:\n{self.stderr}")
            match = re.search(r"serving https?://[^/]*:(\d+)/", self.stdout)
            return int(match[1]) if match else None

        return wait_until(announced, timeout, what=f"millwatch {self._args[0]} to announce its port")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        """Send `sig` and wait for the exit status (SIGKILL and AssertionError past `timeout`)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"millwatch did not stop within {timeout}s of {sig}") from None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()


def run_millwatch(args: list[str], timeout: float = 60.0, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`millwatch ARGS` to completion, output captured as text."""
    return subprocess.run([MILLWATCH, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def database_url(backend: str, tmp_path: Path) -> str:
    """A SQLite file in tmp_path, or the test PostgreSQL with an empty public schema (skip if unset)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'millwatch.db'}"
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: the PostgreSQL variant of this test did not run")
    import sqlalchemy as sa  # central: the exporter-only 3.9 venv has no SQLAlchemy

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url
