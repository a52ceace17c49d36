"""Helpers for the exporter tests: polling with a deadline, raw HTTP, a raw pseudo-terminal."""

from __future__ import annotations

import http.client
import os
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from exporter.app import ExporterApp
    from exporter.simulator import SimulatedSensor

T = TypeVar("T")

MakeSensor = Callable[..., "SimulatedSensor"]
"""The `make_sensor` fixture: make_sensor(scenario=..., interval=..., seed=..., link=...)."""
MakeApp = Callable[..., "ExporterApp"]
"""The `make_app` fixture: make_app(serial_port, buffer_path=None, channels=None, **serial_keys)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def http_get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Response:
    """One request, the body exactly as sent (no automatic gunzip), header names lower-cased."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


def base_url(metrics_url: str) -> str:
    return metrics_url.rsplit("/metrics", 1)[0]


def samples(exposition: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample line of a text exposition (no timestamps expected)."""
    result: dict[str, float] = {}
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        result[name] = float(value)
    return result


class RawPty:
    """A pseudo-terminal whose master side the test writes exact bytes to."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.master, view)
            view = view[written:]

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def scrape(url: str) -> dict[str, float]:
    response = http_get(url)
    assert response.status == 200, response
    return samples(response.text)


def wait_until(predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns a truthy value (returned); AssertionError after `timeout` s.

    The exporter's own copy of tests/support.py's helper: tests/exporter also runs in a venv that
    holds only the exporter (support.py imports httpx, a central dependency).
    """
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    result: T | None = None
    while True:
        try:
            result = predicate()
        except AssertionError as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last_error or result!r}")
        time.sleep(0.02)
