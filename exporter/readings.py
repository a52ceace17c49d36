"""The readings kept from the serial input, the reader's counters, and the one freshness rule.

`ReadingStore` is what the reader thread writes and the collectors, the status page and the
buffer read (thread-safe, never touches the port). Memory stays bounded whatever the device
sends: the newest value of every configured channel's key is always kept; of the other keys (shown
on the status page only) at most `MAX_EXTRA_KEYS`. A new such key takes the place of the one read
longest ago if that one is stale, else its value is dropped and counted under `too_many_keys` (a
device that sends `k1=1`, `k2=1`, ... never grows the store). The last raw line is kept cut to
`RAW_LINE_LIMIT` characters for the status page.

Error reasons (`millwatch_serial_errors_total{reason}`), each counted, none fatal:

- `overlong`: a line longer than `max_line_bytes` (dropped up to its end),
- `decode`: a line that is not text in `serial.encoding`,
- `parse`: a line the format rejects, or one with a value that is not finite (NaN, ±Inf) as read
  or after its channel's scale and offset: such a value would reach /metrics as `+Inf` and could
  not be written as JSON in /history, so the line is dropped,
- `skipped_value`: a value the format left out of a good line (a JSON text or true/false),
- `too_many_keys`: a value of a key without a channel that is not kept (see above),
- `no_answer`: in poll mode, no line came back within `answer_timeout` of a command,
- `open`: the port could not be opened (retried with exponential backoff),
- `io`: reading or writing failed (unplugged device): the port is closed and reopened with backoff.

Freshness has one rule, `is_fresh`: the collector, the status page and the key limit all use it;
a channel may have its own `stale_after`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.config import ChannelConfig

log = logging.getLogger(__name__)

REASONS = ("overlong", "decode", "parse", "skipped_value", "too_many_keys", "no_answer", "open", "io")
MAX_EXTRA_KEYS = 64
"""How many reading keys without a channel are kept (channel keys are always kept)."""
RAW_LINE_LIMIT = 200
"""Characters of the last raw line kept for the status page."""

Reading = tuple[float, float]
"""(value, Unix time when its line was read)."""


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
class RawLine:
    """The last non-blank line received, decoded for display (bad bytes replaced) and cut."""

    text: str
    time: float
    truncated: bool


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
    stale_after_by_key: Mapping[str, float] = field(default_factory=dict)
    last_raw_line: RawLine | None = None

    def stale_after_of(self, key: str) -> float:
        """The `stale_after` of `key`: its channel's own, else the serial one."""
        return self.stale_after_by_key.get(key, self.stale_after)

    def is_fresh(self, reading_time: float | None, now: float, key: str | None = None) -> bool:
        """`is_fresh` with this reader's `stale_after` (the channel's own when `key` has one)."""
        limit = self.stale_after if key is None else self.stale_after_of(key)
        return is_fresh(reading_time, now, limit)

    def fresh_value(self, key: str, now: float) -> float | None:
        """The newest raw value of `key` if it is fresh at `now`, else None."""
        reading = self.latest.get(key)
        if reading is None or not self.is_fresh(reading[1], now, key):
            return None
        return reading[0]

    def up(self, now: float) -> bool:
        """The sensor is up: the port is open and the newest reading is fresh at `now`."""
        return self.connected and self.is_fresh(self.last_reading_time, now)


class ReadingStore:
    """Newest value per key, counters, last error and last raw line, under one lock."""

    def __init__(self, port: str, stale_after: float, channels: Sequence[ChannelConfig] = ()) -> None:
        self._port = port
        self._stale_after = stale_after
        self._channels = {channel.key: channel for channel in channels}
        self._stale_by_key = {c.key: c.stale_after for c in channels if c.stale_after is not None}
        self._lock = threading.Lock()
        self._channel_latest: dict[str, Reading] = {}
        # Keys without a channel, the one read longest ago first (the candidate to make room).
        self._extra_latest: OrderedDict[str, Reading] = OrderedDict()
        self._connected = False
        self._readings_total = 0
        self._errors = dict.fromkeys(REASONS, 0)
        self._last_reading_time: float | None = None
        self._last_error: LastError | None = None
        self._raw: RawLine | None = None

    # -- written by the reader thread --------------------------------------------------------------

    def set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected

    def raw_line(self, raw: bytes, encoding: str, now: float) -> None:
        text = raw.decode(encoding, errors="replace").strip()
        with self._lock:
            self._raw = RawLine(text[:RAW_LINE_LIMIT], now, len(text) > RAW_LINE_LIMIT)

    def non_finite(self, values: Mapping[str, float]) -> str | None:
        """Why a line must be dropped: a value not finite as read or after its channel's scaling."""
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

    def keep(self, values: Mapping[str, float], now: float) -> list[str]:
        """Store one line's values; returns the keys whose value was dropped (already counted)."""
        with self._lock:
            dropped = self._keep_locked(values, now)
            self._readings_total += 1
            self._last_reading_time = now
        if dropped:
            self.count(
                "too_many_keys",
                f"{MAX_EXTRA_KEYS} keys without a channel already kept; value of "
                f"{_quote_keys(dropped)} dropped",
                now,
                len(dropped),
            )
        return dropped

    def count(self, reason: str, message: str, now: float, amount: int = 1) -> None:
        with self._lock:
            self._errors[reason] += amount
            self._last_error = LastError(reason, message, now)
        log.debug("%s: %s: %s", self._port, reason, message)

    def _keep_locked(self, values: Mapping[str, float], now: float) -> list[str]:
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
                if is_fresh(oldest_time, now, self._stale_after):
                    dropped.append(key)
                    continue
                del extra[oldest_key]
            extra[key] = (value, now)
        return dropped

    # -- read by anyone ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    @property
    def readings_total(self) -> int:
        with self._lock:
            return self._readings_total

    @property
    def last_reading_time(self) -> float | None:
        with self._lock:
            return self._last_reading_time

    def latest(self) -> dict[str, Reading]:
        with self._lock:
            return self._latest_locked()

    def errors_total(self) -> dict[str, int]:
        with self._lock:
            return dict(self._errors)

    def status(self) -> ReaderStatus:
        with self._lock:
            return ReaderStatus(
                port=self._port,
                connected=self._connected,
                readings_total=self._readings_total,
                errors_total=dict(self._errors),
                last_reading_time=self._last_reading_time,
                latest=self._latest_locked(),
                last_error=self._last_error,
                stale_after=self._stale_after,
                stale_after_by_key=dict(self._stale_by_key),
                last_raw_line=self._raw,
            )

    def _latest_locked(self) -> dict[str, Reading]:
        latest = dict(self._extra_latest)
        latest.update(self._channel_latest)
        return latest


def _quote_keys(keys: Sequence[str], shown: int = 3, width: int = 40) -> str:
    quoted = [repr(key if len(key) <= width else key[: width - 3] + "...") for key in keys[:shown]]
    if len(keys) > shown:
        quoted.append(f"and {len(keys) - shown} more")
    return ", ".join(quoted)
