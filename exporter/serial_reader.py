"""The serial reader: a thread that keeps one port open, turns its bytes into readings and never dies.

The port is opened once with `serial.serial_for_url` and read with a short timeout, so the thread
notices `stop()` quickly and never needs a blocking read elsewhere (the HTTP handlers only look at
the state kept here). Lines are assembled here rather than with `readline()` so that an over-long
line is dropped as soon as it passes `max_line_bytes`, instead of growing without bound.

Every problem is counted by reason and the thread carries on:

- `overlong`: a line longer than `max_line_bytes` (dropped up to its end),
- `decode`: a line that is not UTF-8,
- `parse`: a line the line format rejects,
- `open`: the port could not be opened (retried with exponential backoff),
- `io`: reading failed (unplugged device): the port is closed and reopened with backoff.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import serial

from exporter.config import SerialConfig
from exporter.errors import LineParseError
from exporter.lineformat import parse_kv

log = logging.getLogger(__name__)

REASONS = ("overlong", "decode", "parse", "open", "io")
READ_TIMEOUT = 0.5
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0
_TERMINATORS = re.compile(rb"[\r\n]")

Reading = tuple[float, float]
"""(value, Unix time when its line was read)."""

ReadingCallback = Callable[[Mapping[str, float], float], None]
"""Called in the reader's thread with one line's readings and its Unix time."""


@dataclass(frozen=True)
class LastError:
    reason: str
    message: str
    time: float


@dataclass(frozen=True)
class ReaderStatus:
    """One consistent view of the reader's state (taken under its lock)."""

    port: str
    connected: bool
    readings_total: int
    errors_total: Mapping[str, int]
    last_reading_time: float | None
    latest: Mapping[str, Reading]
    last_error: LastError | None


class SerialReader:
    """Reads sensor lines from one serial port in a background thread.

    `on_reading(values, time)` is called in the reader's thread for each parsed line; an exception
    it raises is logged and does not stop the reader. `clock` gives the Unix time stamped on readings.
    `opener` is `serial.serial_for_url` unless a test hands in another factory with its signature.
    All accessors are thread-safe and never touch the port.
    """

    def __init__(
        self,
        config: SerialConfig,
        on_reading: ReadingCallback | None = None,
        clock: Callable[[], float] = time.time,
        *,
        opener: Callable[..., Any] | None = None,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._config = config
        self._on_reading = on_reading
        self._clock = clock
        self._opener: Callable[..., Any] = opener or serial.serial_for_url
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._aliases = dict(config.aliases)

        self._lock = threading.Lock()
        self._latest: dict[str, Reading] = {}
        self._connected = False
        self._readings_total = 0
        self._errors = dict.fromkeys(REASONS, 0)
        self._last_reading_time: float | None = None
        self._last_error: LastError | None = None

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: Any = None  # only the reader thread reads or closes it; stop() may cancel a read
        self._partial = bytearray()
        self._discarding = False
        self._problem_logged: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader thread. Raises RuntimeError if it was already started."""
        if self._thread is not None:
            raise RuntimeError("SerialReader.start() called twice")
        self._thread = threading.Thread(
            target=self._run, name=f"serial-reader {self._config.port}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and close the port; returns within about `timeout` seconds."""
        self._stop.set()
        port = self._port
        cancel = getattr(port, "cancel_read", None)
        if cancel is not None:
            try:
                cancel()
            except Exception:  # the port may be closing under us; the read timeout ends the read anyway
                log.debug("cancel_read on %s failed", self._config.port, exc_info=True)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- thread-safe accessors ---------------------------------------------------------------------

    @property
    def port_name(self) -> str:
        return self._config.port

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        with self._lock:
            return self._connected

    @property
    def readings_total(self) -> int:
        """Lines read and parsed successfully since start."""
        with self._lock:
            return self._readings_total

    @property
    def last_reading_time(self) -> float | None:
        with self._lock:
            return self._last_reading_time

    def latest(self) -> dict[str, Reading]:
        """The newest value of each reading key with the time it was read."""
        with self._lock:
            return dict(self._latest)

    def errors_total(self) -> dict[str, int]:
        """Errors by reason; every reason of REASONS is present."""
        with self._lock:
            return dict(self._errors)

    def status(self) -> ReaderStatus:
        """Everything above as one consistent snapshot."""
        with self._lock:
            return ReaderStatus(
                port=self._config.port,
                connected=self._connected,
                readings_total=self._readings_total,
                errors_total=dict(self._errors),
                last_reading_time=self._last_reading_time,
                latest=dict(self._latest),
                last_error=self._last_error,
            )

    # -- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._initial_backoff
        while not self._stop.is_set():
            try:
                port = self._opener(
                    self._config.port,
                    baudrate=self._config.baudrate,
                    bytesize=self._config.bytesize,
                    parity=self._config.parity,
                    stopbits=self._config.stopbits,
                    timeout=READ_TIMEOUT,
                )
            except Exception as exc:  # pyserial raises SerialException, OSError or ValueError here
                self._problem("open", f"cannot open {self._config.port}: {exc}")
            else:
                self._opened(port)
                received = self._pump(port)
                self._closed(port)
                if received:
                    delay = self._initial_backoff
                if self._stop.is_set():
                    break
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self._max_backoff)

    def _opened(self, port: Any) -> None:
        self._port = port
        self._partial.clear()
        self._discarding = False
        with self._lock:
            self._connected = True
        log.info(
            "serial port %s opened (%d baud, %s)",
            self._config.port,
            self._config.baudrate,
            self._config.framing,
        )
        self._problem_logged = None

    def _closed(self, port: Any) -> None:
        with self._lock:
            self._connected = False
        self._port = None
        try:
            port.close()
        except Exception:  # a vanished device may fail to close; the handle is dropped either way
            log.debug("closing %s failed", self._config.port, exc_info=True)

    def _pump(self, port: Any) -> bool:
        """Read until an I/O error or stop(). Returns whether any byte arrived."""
        received = False
        while not self._stop.is_set():
            try:
                data = port.read(port.in_waiting or 1)
            except Exception as exc:  # SerialException, OSError, or anything a driver raises
                if self._stop.is_set():
                    break  # stop() cancelled the read: not a device problem
                self._problem("io", f"reading {self._config.port} failed: {exc}")
                return received
            if data:
                received = True
                self._feed(bytes(data))
        return received

    def _feed(self, data: bytes) -> None:
        pieces = _TERMINATORS.split(data)
        last = len(pieces) - 1
        limit = self._config.max_line_bytes
        for index, piece in enumerate(pieces):
            complete = index < last
            if self._discarding:
                if complete:
                    self._discarding = False  # the terminator ends the dropped line
                continue
            if len(self._partial) + len(piece) > limit:
                self._partial.clear()
                self._discarding = not complete
                self._count("overlong", f"line longer than {limit} bytes dropped")
                continue
            self._partial += piece
            if complete:
                line = bytes(self._partial)
                self._partial.clear()
                self._line(line)

    def _line(self, raw: bytes) -> None:
        if not raw.strip():
            return  # blank lines (and the gap in CR LF) carry nothing
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._count("decode", f"not UTF-8 at byte {exc.start}: {raw[:40]!r}")
            return
        try:
            values = parse_kv(text, self._aliases)
        except LineParseError as exc:
            self._count("parse", str(exc))
            return
        now = self._clock()
        with self._lock:
            for key, value in values.items():
                self._latest[key] = (value, now)
            self._readings_total += 1
            self._last_reading_time = now
        if self._on_reading is not None:
            try:
                self._on_reading(values, now)
            except Exception:  # a failing consumer (the buffer) must not stop the sensor input
                log.exception("handling a reading from %s failed", self._config.port)

    def _count(self, reason: str, message: str) -> None:
        now = self._clock()
        with self._lock:
            self._errors[reason] += 1
            self._last_error = LastError(reason, message, now)
        log.debug("%s: %s: %s", self._config.port, reason, message)

    def _problem(self, reason: str, message: str) -> None:
        """Count a port problem; log it loudly once, then quietly while it repeats."""
        self._count(reason, message)
        summary = f"{reason}: {message}"
        if summary != self._problem_logged:
            log.warning("%s (retrying with backoff up to %gs)", message, self._max_backoff)
            self._problem_logged = summary
