"""`ExporterApp`: one exporter — serial reader, reading buffer, collectors and HTTP server — wired together.

Each app has its own `Registry` (exporter/exposition.py: no default collectors, nothing global),
so several apps run side by side in one process: the demo runs fifty.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import psutil

from exporter import __version__
from exporter.buffer import ReadingBuffer
from exporter.collectors.buffer import BufferCollector
from exporter.collectors.guard import GuardedCollector
from exporter.collectors.http import HttpCollector
from exporter.collectors.info import InfoCollector
from exporter.collectors.push import PushCollector
from exporter.collectors.serial import SerialCollector
from exporter.collectors.summary import SystemSummary
from exporter.collectors.system import system_collectors
from exporter.config import ExporterConfig, ListenAddress, WebConfig
from exporter.errors import BufferStoreError, ExporterError, TLSSetupError
from exporter.exposition import Collector, Registry
from exporter.http import ExporterHttpServer, HttpContext
from exporter.push import PushClient, read_key
from exporter.scrapes import ScrapeTracker
from exporter.serial_reader import SerialReader
from exporter.status_page import BufferSummary, render_status_page
from exporter.tls import TLSFileError, server_context
from exporter.webauth import Authenticator, Credentials
from exporter.webserver import Limits

log = logging.getLogger(__name__)

_WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class ExporterApp:
    """One exporter for one machine.

    Construction does no I/O beyond asking psutil about this process. `start()` opens the
    buffer, binds the HTTP server and starts the serial reader (and, with a `push` section, the
    push client); it raises ListenError when the address is taken, BufferStoreError when the buffer
    file cannot be opened and PushKeyError when push's key file is unusable, leaving nothing
    running. `stop()` stops everything and is safe to call twice. An app runs once: to start
    again after `stop()`, create a new one (with the same buffer file, nothing is lost).
    """

    def __init__(
        self,
        config: ExporterConfig,
        *,
        clock: Callable[[], float] = time.time,
        psutil_module: Any = psutil,
        version: str = __version__,
    ) -> None:
        self.config = config
        self.version = version
        self._clock = clock
        self._lock = threading.Lock()
        self._state = "new"
        self._buffer: ReadingBuffer | None = None
        self._server: ExporterHttpServer | None = None
        self._buffer_problem: str | None = None
        self.scrapes = ScrapeTracker(clock)
        self.reader = SerialReader(config.serial, self._on_reading, clock, channels=config.channels)
        self.registry = Registry()
        collectors: dict[str, Collector] = {
            "info": InfoCollector(config.machine.id, config.machine.name, version),
            "serial": SerialCollector(self.reader, config.channels, clock),
            "buffer": BufferCollector(lambda: self._buffer),
            "http": HttpCollector(lambda: self._server),
            **system_collectors(config.collectors, psutil_module),
        }
        self.push: PushClient | None = None
        if config.push is not None:
            summary = SystemSummary(psutil_module)  # its own CPU baseline, apart from the scrapes'
            self.push = PushClient(
                config.push,
                config.machine.id,
                sensor=self._sensor_state,
                system=lambda: summary(self._clock()),
                clock=clock,
                user_agent=f"millwatch-exporter/{version}",
            )
            collectors["push"] = PushCollector(self.push)
        self.registry.register(GuardedCollector(collectors))

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the buffer, bind the HTTP server, start reading the serial port and serving."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"ExporterApp cannot start: it is {self._state}")
            web = self.config.web
            tls = None
            if web.tls is not None:
                try:
                    tls = server_context(web.tls)
                except TLSFileError as exc:  # checked when the config was read; changed since
                    raise TLSSetupError(f"web.tls_{exc.field}", exc.message) from None
            authenticator = Authenticator(Credentials(web.bearer_token, web.basic_auth_users))
            key = read_key(self.config.push.api_key_file) if self.config.push is not None else ""
            buffer = ReadingBuffer(
                self.config.buffer.path,
                self.config.buffer.retention,
                self._clock,
                max_bytes=self.config.buffer.max_bytes,
            )
            try:
                context = HttpContext(
                    registry=self.registry,
                    machine_id=self.config.machine.id,
                    buffer=buffer,
                    status_page=self._status_page,
                    authenticator=authenticator,
                    scrapes=self.scrapes,
                )
                server = ExporterHttpServer(
                    self.config.listen.host, self.config.listen.port, context, limits=limits(web), tls=tls
                )
            except BaseException:
                buffer.close()
                raise
            self._buffer = buffer
            self._server = server
            self.reader.start()
            server.start()
            if self.push is not None:
                self.push.start(buffer, key)
            self._state = "running"
        warning = open_access_warning(self.config.listen, web)
        if warning:
            log.warning("%s", warning)
        log.debug(
            "exporter for %s serving %s, reading serial port %s",
            self.config.machine.id,
            self.url,
            self.config.serial.port,
        )

    def stop(self) -> None:
        """Stop serving, stop the reader, close the buffer. Idempotent."""
        with self._lock:
            if self._state != "running":
                self._state = "stopped"
                return
            self._state = "stopped"
            server, buffer = self._server, self._buffer
        if self.push is not None:
            self.push.stop()  # before the buffer closes: it reads from it
        if server is not None:
            server.stop()
        self.reader.stop()
        self._buffer = None  # a reading still in flight is dropped rather than written to a closed file
        if buffer is not None:
            buffer.close()

    def __enter__(self) -> ExporterApp:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (the OS's choice when `listen` asked for port 0)."""
        if self._server is not None:
            return self._server.port
        if self.config.listen.port == 0:
            raise RuntimeError("the port is chosen when the ExporterApp starts")
        return self.config.listen.port

    @property
    def url(self) -> str:
        """The /metrics URL that reaches this exporter from this host (a wildcard address → loopback)."""
        host = _WILDCARD_TO_LOOPBACK.get(self.config.listen.host, self.config.listen.host)
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.config.web.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}/metrics"

    @property
    def buffer(self) -> ReadingBuffer | None:
        return self._buffer

    # -- internals ---------------------------------------------------------------------------------

    def _on_reading(self, values: Mapping[str, float], at: float) -> None:
        buffer = self._buffer
        if buffer is None:
            return
        rows = [(at, c.metric, c.apply(values[c.key])) for c in self.config.channels if c.key in values]
        try:
            buffer.append_many(rows)
        except BufferStoreError as exc:
            if str(exc) != self._buffer_problem:  # disk full at every line must not flood the log
                log.warning("%s (readings are still served live on /metrics)", exc)
                self._buffer_problem = str(exc)
        else:
            self._buffer_problem = None

    def _sensor_state(self) -> tuple[bool, float | None]:
        status = self.reader.status()
        return status.up(self._clock()), status.last_reading_time

    def _status_page(self) -> str:
        status = self.reader.status()
        health = None
        buffer = self._buffer
        if buffer is not None:
            try:
                health = buffer.health()
            except ExporterError:
                health = None
        summary = BufferSummary(self.config.buffer.path, health, self.config.buffer.retention)
        push = self.push.status() if self.push is not None else None
        return render_status_page(
            self.config,
            status,
            self._clock(),
            self.version,
            summary,
            last_scrape=self.scrapes.last,
            push=push,
        )


def limits(web: WebConfig) -> Limits:
    """The HTTP server's bounds from the `web:` section."""
    return Limits(
        max_connections=web.max_connections,
        header_read_timeout=web.header_read_timeout,
        idle_timeout=web.idle_timeout,
    )


def open_access_warning(listen: ListenAddress, web: WebConfig) -> str | None:
    """The one line logged at start when anyone on the network may read this exporter, else None."""
    if web.auth_enabled or _is_loopback(listen.host):
        return None
    return (
        f"listening on {listen} without authentication: anyone who reaches this port can read "
        "/metrics, /history and the status page; set web.bearer_token_file or web.basic_auth_users "
        "in the configuration, or listen on 127.0.0.1"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface
