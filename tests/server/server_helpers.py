"""Helpers of the server tests: polling with a deadline, a real uvicorn on loopback, views."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from support import wait_until

from scraper.state import LastScrape, Location, MachineView, Status, Threshold

T = TypeVar("T")


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, keyed by (name, sorted label pairs)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


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
