"""The serial reader: a thread that keeps one port open, moves its bytes into lines and never dies.

It does one job — bytes in, lines out — and hands the rest to small modules: the port and its
backoff (`serial_port.py`), the framing (`framing.py`), the line format chosen by `serial.format`
(`formats/`), and the readings with their counters (`readings.py`, where every error reason is
described). The HTTP handlers only look at the store; nothing but this thread touches the port.

Mode `stream`: the device talks by itself; every line is read. Mode `poll`: the thread writes
`serial.command` every `serial.every` and waits up to `serial.answer_timeout` for a line; when none
comes, `no_answer` is counted. The port is read all the time, so lines that arrive outside an
exchange (a late answer) are read all the same. One read waits at most half the answer timeout
(`SerialConfig.port_timeout`), so a missing answer is noticed on time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from exporter.config import ChannelConfig, SerialConfig
from exporter.errors import LineIgnored, LineParseError
from exporter.formats import make_format
from exporter.framing import LineFramer, Overlong
from exporter.readings import (
    MAX_EXTRA_KEYS,
    REASONS,
    LastError,
    ReaderStatus,
    Reading,
    ReadingStore,
    is_fresh,
)
from exporter.serial_port import INITIAL_BACKOFF, MAX_BACKOFF, Backoff, Opener, open_port

__all__ = [
    "MAX_EXTRA_KEYS",
    "REASONS",
    "LastError",
    "Reading",
    "ReaderStatus",
    "ReadingCallback",
    "SerialReader",
    "is_fresh",
]

log = logging.getLogger(__name__)

ReadingCallback = Callable[[Mapping[str, float], float], None]
"""Called in the reader's thread with one line's readings and its Unix time."""


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
        opener: Opener | None = None,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._config = config
        self._on_reading = on_reading
        self._clock = clock
        self._opener = opener
        self._backoff = Backoff(initial_backoff, max_backoff)
        self._store = ReadingStore(config.port, config.stale_after, channels)
        self._format = make_format(config, self._skipped)
        self._framer = LineFramer(config.max_line_bytes, config.line_ending)
        self._lines_seen = 0  # complete non-blank lines: what ends a poll exchange

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: Any = None  # only the reader thread reads or closes it; stop() may cancel a read
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
        return self._store.connected

    @property
    def readings_total(self) -> int:
        """Lines read and parsed successfully since start."""
        return self._store.readings_total

    @property
    def last_reading_time(self) -> float | None:
        return self._store.last_reading_time

    def latest(self) -> dict[str, Reading]:
        """The newest value of each kept reading key with the time it was read.

        Every channel key read so far is there, and at most MAX_EXTRA_KEYS other keys.
        """
        return self._store.latest()

    def errors_total(self) -> dict[str, int]:
        """Errors by reason; every reason of REASONS is present."""
        return self._store.errors_total()

    def status(self) -> ReaderStatus:
        """Everything above as one consistent snapshot."""
        return self._store.status()

    # -- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                port = open_port(self._config, self._opener)
            except Exception as exc:  # pyserial raises SerialException, OSError or ValueError here
                self._problem("open", f"cannot open {self._config.port}: {exc}")
            else:
                self._opened(port)
                try:
                    received = self._poll(port) if self._config.mode == "poll" else self._pump(port)
                except Exception as exc:  # a bug here must not end the thread: reopen like after an I/O error
                    log.exception("reading %s failed unexpectedly", self._config.port)
                    self._count("io", f"reading {self._config.port} failed: {type(exc).__name__}: {exc}")
                    received = False
                finally:
                    self._closed(port)
                if received:
                    self._backoff.reset()
                if self._stop.is_set():
                    break
            if self._stop.wait(self._backoff.next()):
                break

    def _opened(self, port: Any) -> None:
        self._port = port
        self._framer.reset()
        self._store.set_connected(True)
        log.info(
            "serial port %s opened (%d baud, %s, format %s, mode %s)",
            self._config.port,
            self._config.baudrate,
            self._config.framing,
            self._config.format,
            self._config.mode,
        )
        self._problem_logged = None

    def _closed(self, port: Any) -> None:
        self._store.set_connected(False)
        self._port = None
        try:
            port.close()
        except Exception:  # a vanished device may fail to close; the handle is dropped either way
            log.debug("closing %s failed", self._config.port, exc_info=True)

    def _read_once(self, port: Any) -> bytes | None:
        """One read (up to the read timeout); None after an I/O error or stop()."""
        try:
            data = port.read(port.in_waiting or 1)
        except Exception as exc:  # SerialException, OSError, or anything a driver raises
            if not self._stop.is_set():  # else stop() cancelled the read: not a device problem
                self._problem("io", f"reading {self._config.port} failed: {exc}")
            return None
        if data:
            self._feed(bytes(data))
        return bytes(data)

    def _pump(self, port: Any) -> bool:
        """Stream mode: read until an I/O error or stop(). Returns whether any byte arrived."""
        received = False
        while not self._stop.is_set():
            data = self._read_once(port)
            if data is None:
                break
            received = received or bool(data)
        return received

    def _poll(self, port: Any) -> bool:
        """Poll mode: until an I/O error or stop(), send the command every `every` and count a
        missing answer; the port is read all the time, so nothing the device sends is left behind.
        Returns whether any answer came."""
        answered = False
        command = self._config.command_bytes
        next_command = time.monotonic()
        waiting_since: int | None = None  # self._lines_seen when the pending command was sent
        deadline = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if waiting_since is not None and self._lines_seen != waiting_since:
                answered, waiting_since = True, None
            elif waiting_since is not None and now >= deadline:
                self._count(
                    "no_answer",
                    f"no answer to {self._config.command!r} within {self._config.answer_timeout:g}s",
                )
                waiting_since = None
            if waiting_since is None and now >= next_command:
                try:
                    port.write(command)
                    port.flush()
                except Exception as exc:
                    if not self._stop.is_set():
                        self._problem("io", f"writing the poll command to {self._config.port} failed: {exc}")
                    return answered
                waiting_since = self._lines_seen
                deadline = now + self._config.answer_timeout
                next_command = max(next_command + self._config.every, now)
            if self._read_once(port) is None:
                return answered
        return answered

    def _feed(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            if isinstance(frame, Overlong):
                self._count("overlong", f"line longer than {frame.limit} bytes dropped")
            else:
                self._line(frame)

    def _line(self, raw: bytes) -> None:
        if not raw.strip():
            return  # blank lines (and the gap in CR LF) carry nothing
        self._lines_seen += 1
        now = self._clock()
        self._store.raw_line(raw, self._config.encoding, now)
        try:
            text = raw.decode(self._config.encoding)
        except UnicodeDecodeError as exc:
            self._count("decode", f"not {self._config.encoding} at byte {exc.start}: {raw[:40]!r}")
            return
        try:
            values = self._format.parse(text.strip())
        except LineIgnored:
            return
        except LineParseError as exc:
            self._count("parse", str(exc))
            return
        except Exception as exc:  # a format's bug must cost one line, never the reader thread
            log.debug("format %s failed on a line", self._config.format, exc_info=True)
            self._count("parse", f"unreadable line ({type(exc).__name__}: {exc})")
            return
        problem = self._store.non_finite(values)
        if problem is not None:
            self._count("parse", problem)
            return
        self._store.keep(values, now)
        if self._on_reading is not None:
            try:
                self._on_reading(values, now)
            except Exception:  # a failing consumer (the buffer) must not stop the sensor input
                log.exception("handling a reading from %s failed", self._config.port)

    def _skipped(self, key: str, why: str) -> None:
        shown = key if len(key) <= 40 else key[:37] + "..."  # a key is as long as the device makes it
        self._count("skipped_value", f"{shown}: {why}")

    def _count(self, reason: str, message: str) -> None:
        self._store.count(reason, message, self._clock())

    def _problem(self, reason: str, message: str) -> None:
        """Count a port problem; log it loudly once, then quietly while it repeats."""
        self._count(reason, message)
        summary = f"{reason}: {message}"
        if summary != self._problem_logged:
            log.warning("%s (retrying with backoff up to %gs)", message, self._backoff.maximum)
            self._problem_logged = summary
