"""The serial reader: a thread that keeps one port open, turns its bytes into readings and never dies.

The port is opened once with `serial.serial_for_url` and read with a short timeout, so the thread
notices `stop()` quickly and never needs a blocking read elsewhere (the HTTP handlers only look at
the state kept here). Lines are assembled here rather than with `readline()` so that an over-long
line is dropped as soon as it passes `max_line_bytes`, instead of growing without bound.

Every problem is counted by reason and the thread carries on:

- `overlong`: a line longer than `max_line_bytes` (dropped up to its end),
- `decode`: a line that is not UTF-8,
- `parse`: a line the line format rejects, or one with a value that is not finite (NaN, ±Inf) as
  read or after its channel's scale and offset (`1e300` scaled by `1e10`): such a value would
  reach /metrics as `+Inf` and could not be written as JSON in /history, so the line is dropped,
- `too_many_keys`: a value of a key without a channel that is not kept (see below),
- `open`: the port could not be opened (retried with exponential backoff),
- `io`: reading failed (unplugged device): the port is closed and reopened with backoff.

Memory stays bounded whatever the device sends. The newest value of every configured channel's key
is always kept; of the other keys (shown on the status page only) at most `MAX_EXTRA_KEYS`. A new
such key takes the place of the one read longest ago if that one is stale, else its value is
dropped and counted under `too_many_keys` (a device that sends `k1=1`, `k2=1`, ... never grows the
reader).

Freshness has one rule, `is_fresh`: the collector, the status page and the key limit all use it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import serial

from exporter.config import ChannelConfig, SerialConfig
from exporter.errors import LineParseError
from exporter.lineformat import parse_kv

log = logging.getLogger(__name__)

REASONS = ("overlong", "decode", "parse", "too_many_keys", "open", "io")
MAX_EXTRA_KEYS = 64
"""How many reading keys without a channel the reader keeps (channel keys are always kept)."""
READ_TIMEOUT = 0.5
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0
_TERMINATORS = re.compile(rb"[\r\n]")

Reading = tuple[float, float]
"""(value, Unix time when its line was read)."""

ReadingCallback = Callable[[Mapping[str, float], float], None]
"""Called in the reader's thread with one line's readings and its Unix time."""


def is_fresh(reading_time: float | None, now: float, stale_after: float) -> bool:
    """Whether a reading taken at `reading_time` is still current at `now`.

    The one freshness rule of the exporter: a reading is fresh while it is at most `stale_after`
    seconds old; `None` (nothing read yet) is never fresh.
    """
    return reading_time is not None and now - reading_time <= stale_after


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
    stale_after: float

    def is_fresh(self, reading_time: float | None, now: float) -> bool:
        """`is_fresh` with this reader's `stale_after`."""
        return is_fresh(reading_time, now, self.stale_after)

    def fresh_value(self, key: str, now: float) -> float | None:
        """The newest raw value of `key` if it is fresh at `now`, else None."""
        reading = self.latest.get(key)
        if reading is None or not self.is_fresh(reading[1], now):
            return None
        return reading[0]

    def up(self, now: float) -> bool:
        """The sensor is up: the port is open and the newest reading is fresh at `now`."""
        return self.connected and self.is_fresh(self.last_reading_time, now)


class SerialReader:
    """Reads sensor lines from one serial port in a background thread.

    `on_reading(values, time)` is called in the reader's thread for each parsed line; an exception
    it raises is logged and does not stop the reader. `clock` gives the Unix time stamped on readings.
    `channels` are the configured channels: their keys are always kept, and a line whose value is
    not finite after a channel's scale and offset is a `parse` error (never passed to `on_reading`).
    `opener` is `serial.serial_for_url` unless a test hands in another factory with its signature.
    All accessors are thread-safe and never touch the port.
    """

    def __init__(
        self,
        config: SerialConfig,
        on_reading: ReadingCallback | None = None,
        clock: Callable[[], float] = time.time,
        *,
        channels: Sequence[ChannelConfig] = (),
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
        self._channels = {channel.key: channel for channel in channels}

        self._lock = threading.Lock()
        self._channel_latest: dict[str, Reading] = {}
        # Keys without a channel, the one read longest ago first (the candidate to make room).
        self._extra_latest: OrderedDict[str, Reading] = OrderedDict()
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
        """The newest value of each kept reading key with the time it was read.

        Every channel key read so far is there, and at most MAX_EXTRA_KEYS other keys.
        """
        with self._lock:
            return self._latest_locked()

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
                latest=self._latest_locked(),
                last_error=self._last_error,
                stale_after=self._config.stale_after,
            )

    def _latest_locked(self) -> dict[str, Reading]:
        latest = dict(self._extra_latest)
        latest.update(self._channel_latest)
        return latest

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
        problem = self._non_finite(values)
        if problem is not None:
            self._count("parse", problem)
            return
        now = self._clock()
        with self._lock:
            dropped = self._keep(values, now)
            self._readings_total += 1
            self._last_reading_time = now
        if dropped:
            self._count(
                "too_many_keys",
                f"{MAX_EXTRA_KEYS} keys without a channel already kept; value of "
                f"{_quote_keys(dropped)} dropped",
                len(dropped),
            )
        if self._on_reading is not None:
            try:
                self._on_reading(values, now)
            except Exception:  # a failing consumer (the buffer) must not stop the sensor input
                log.exception("handling a reading from %s failed", self._config.port)

    def _non_finite(self, values: Mapping[str, float]) -> str | None:
        """Why the line must be dropped: a value not finite as read or after its channel's scaling."""
        for key, value in values.items():
            if not math.isfinite(value):
                return f"{key}: not a finite number: {value!r}"
            channel = self._channels.get(key)
            if channel is not None and not math.isfinite(channel.apply(value)):
                return (
                    f"{key}={value:g}: out of range after scale {channel.scale:g} "
                    f"and offset {channel.offset:g}"
                )
        return None

    def _keep(self, values: Mapping[str, float], now: float) -> list[str]:
        """Store one line's values (under the lock); returns the keys whose value was dropped."""
        dropped: list[str] = []
        extra = self._extra_latest
        for key, value in values.items():
            if key in self._channels:
                self._channel_latest[key] = (value, now)
                continue
            if key in extra:
                extra.move_to_end(key)
            elif len(extra) >= MAX_EXTRA_KEYS:
                oldest_key, (_, oldest_time) = next(iter(extra.items()))
                if is_fresh(oldest_time, now, self._config.stale_after):
                    dropped.append(key)
                    continue
                del extra[oldest_key]
            extra[key] = (value, now)
        return dropped

    def _count(self, reason: str, message: str, amount: int = 1) -> None:
        now = self._clock()
        with self._lock:
            self._errors[reason] += amount
            self._last_error = LastError(reason, message, now)
        log.debug("%s: %s: %s", self._config.port, reason, message)

    def _problem(self, reason: str, message: str) -> None:
        """Count a port problem; log it loudly once, then quietly while it repeats."""
        self._count(reason, message)
        summary = f"{reason}: {message}"
        if summary != self._problem_logged:
            log.warning("%s (retrying with backoff up to %gs)", message, self._max_backoff)
            self._problem_logged = summary


def _quote_keys(keys: Sequence[str], shown: int = 3, width: int = 40) -> str:
    quoted = [repr(key if len(key) <= width else key[: width - 3] + "...") for key in keys[:shown]]
    if len(keys) > shown:
        quoted.append(f"and {len(keys) - shown} more")
    return ", ".join(quoted)
