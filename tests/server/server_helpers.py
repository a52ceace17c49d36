"""Helpers of the server tests: polling with a deadline, a real uvicorn on loopback, views."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from scraper.state import LastScrape, Location, MachineView, Status, Threshold

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns a truthy value (returned); AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
        except AssertionError as e:  # a predicate may assert to explain what it saw
            last_error = e
        else:
            if result:
                return result
        if time.monotonic() > deadline:
            detail = f": {last_error}" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(0.02)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, keyed by (name, sorted label pairs)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for subprocesses that bind it themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_app(app: FastAPI) -> Iterator[str]:
    """Run `app` under a real uvicorn on 127.0.0.1:<free port> in a thread; yields the base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)

    def run() -> None:
        with contextlib.suppress(SystemExit):  # uvicorn's way to end after a failed start-up
            server.run(sockets=[sock])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), what="uvicorn to start")
        if not server.started:
            raise RuntimeError("the app failed to start (see the log)")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def make_view(machine_id: str, **changes: Any) -> MachineView:
    """A plausible scraped machine; keyword arguments replace fields."""
    now = time.time()
    view = MachineView(
        id=machine_id,
        name=machine_id.replace("_", " ").title(),
        url=f"http://127.0.0.1:9/{machine_id}/metrics",
        site="Berlin",
        location=Location(lat=52.52, lon=13.405),
        labels={"line": "casting"},
        scrape_interval_seconds=15.0,
        status=Status.UP,
        last_scrape=LastScrape(time=now, duration_seconds=0.01),
        last_success_time=now,
        readings={"machine_temperature_celsius": 65.0, "machine_pressure_bar": 1.01},
        thresholds={"machine_temperature_celsius": Threshold(warn=80, alarm=95)},
    )
    return view.with_changes(**changes)


def read_ws_frames(sock: socket.socket, stop: Callable[[int, bytes], bool], timeout: float = 10.0) -> None:
    """Read server→client WebSocket frames from a raw socket, calling `stop(opcode, payload)` on each
    until it returns True. Server frames are never masked."""
    sock.settimeout(timeout)
    buffer = b""

    def need(n: int) -> bytes:
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            buffer += chunk
        data, buffer = buffer[:n], buffer[n:]
        return data

    while True:
        b0, b1 = need(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(need(2), "big")
        elif length == 127:
            length = int.from_bytes(need(8), "big")
        payload = need(length)
        if stop(b0 & 0x0F, payload):
            return


MILLWATCH = str(Path(sys.executable).with_name("millwatch"))


class MillwatchProcess:
    """`millwatch ARGS` as a subprocess, its output in files (a full pipe would block it).

    Used as a context manager: on exit a still-running process gets SIGINT, then SIGKILL.
    """

    def __init__(self, args: list[str], folder: Path, env: dict[str, str] | None = None) -> None:
        self.stdout_path = folder / f"millwatch-{args[0]}-{os.getpid()}-{id(self)}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        self._args = args
        self._env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MillwatchProcess:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen([MILLWATCH, *self._args], stdout=out, stderr=err, env=self._env)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop(signal.SIGINT)

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


def get_json(url: str) -> Any:
    """The JSON body of GET url, or None when nothing answers there (yet)."""
    try:
        return httpx.get(url, timeout=5).json()
    except httpx.TransportError:
        return None
