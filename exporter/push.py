"""Push mode: a background thread that sends the local buffer to the central host's `POST /api/ingest`.

For machines the central host cannot reach (NAT, a firewall open only outbound, a cellular link).
The client reads the buffer in the order readings were appended (`ReadingBuffer.after_position`),
sends them in batches (the wire format of `millwatch_common.push_wire`) with the machine's key, and
moves its acknowledged position only when the server answered that it stored the batch. The
position is kept on disk next to the buffer (`<buffer>.push.json`, replaced atomically), so a
restart or an outage of either side loses nothing: what was not acknowledged is sent again, and
the server stores a reading it already has only once. A failed send is retried after a delay that
doubles up to `retry_max`, with jitter so a fleet coming back after an outage does not send in step.
With nothing new to send, a batch without readings still goes every `every` seconds: it carries
the sensor state and the system summary, and it keeps the machine from turning stale on the map.

Only the standard library (urllib, ssl): the exporter's install stays small. TLS certificates are
verified (system CAs, or `ca_file`). The key is read once at start and is never logged; neither
is any header. `urllib.request` and `ssl` are imported when a PushClient is made: an exporter
without `push:` does not carry their 2.9 MB of RSS.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exporter.buffer import ReadingBuffer
from exporter.config import PushConfig
from exporter.errors import ExporterError, PushKeyError
from millwatch_common.push_wire import KEY_PREFIX, MAX_BODY_BYTES, MAX_VALUES_PER_READING, batch_body

if TYPE_CHECKING:
    import urllib.error
    import urllib.request

log = logging.getLogger(__name__)

RETRY_MIN_SECONDS = 1.0
STOP_JOIN_SECONDS = 15.0
_ANSWER_BYTES = 64 * 1024
_KEY_FILE_BYTES = 4096

# Why a send failed: the label of millwatch_push_errors_total.
REASONS = (
    "unreachable",
    "timeout",
    "tls",
    "unauthorized",
    "forbidden",
    "too_large",
    "refused",
    "server_error",
    "bad_answer",
    "buffer",
)


class PushFailed(Exception):
    """One send that did not get its batch acknowledged: a reason from REASONS and a one-line text."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


@dataclass(frozen=True)
class Acknowledged:
    """The last reading the server acknowledged: its buffer position, time and metric (0: none)."""

    position: int = 0
    time: float = 0.0
    metric: str = ""


@dataclass(frozen=True)
class PushStatus:
    """The push client's state for the status page and the metrics."""

    url: str
    last_success_time: float | None
    pending: int | None  # readings not acknowledged yet (None: the buffer cannot be read)
    acknowledged_position: int
    batches_total: int
    readings_total: int
    errors_total: Mapping[str, int] = field(default_factory=dict)
    last_error: PushFailed | None = None
    last_error_time: float | None = None


def read_key(path: str) -> str:
    """The machine key in `path` (surrounding white space ignored).

    Raises PushKeyError naming the file and what is wrong, never quoting its content.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise PushKeyError(path, f"cannot read it: {exc.strerror or exc}") from exc
    try:
        key = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PushKeyError(path, "it is not text") from None
    if len(raw) > _KEY_FILE_BYTES or not key.startswith(KEY_PREFIX) or any(c.isspace() for c in key):
        raise PushKeyError(
            path, f"it does not hold one machine key ({KEY_PREFIX}..., from `millwatch key create`)"
        )
    return key


class PositionFile:
    """The acknowledged position, in a small JSON file written atomically (write, fsync, rename)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> Acknowledged:
        """The saved position; none (0) when the file is missing or unreadable (then all is sent again)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            return Acknowledged(int(data["position"]), float(data["time"]), str(data["metric"]))
        except FileNotFoundError:
            return Acknowledged()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "push position file %s unreadable (%s): sending the whole buffer again", self.path, exc
            )
            return Acknowledged()

    def save(self, acknowledged: Acknowledged) -> None:
        """Replace the file by `acknowledged`; raises OSError."""
        temporary = self.path + ".tmp"
        text = json.dumps(
            {"position": acknowledged.position, "time": acknowledged.time, "metric": acknowledged.metric}
        )
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


class PushClient:
    """Sends the buffer of machine `machine_id` to `config.url` from a background thread.

    `sensor()` returns (serial up, time of the last reading or None) and `system()` the system
    summary (`push_wire.SYSTEM_FIELDS`), both asked at each send. `start(buffer, key)` starts the
    thread; `stop()` ends it (a send under way finishes or times out). `run_once()` is one send,
    for tests and for the thread.
    """

    def __init__(
        self,
        config: PushConfig,
        machine_id: str,
        *,
        sensor: Callable[[], tuple[bool, float | None]],
        system: Callable[[], Mapping[str, float | None]],
        clock: Callable[[], float] = time.time,
        user_agent: str = "millwatch-exporter",
    ) -> None:
        self.config = config
        self.machine_id = machine_id
        self._sensor = sensor
        self._system = system
        self._clock = clock
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._buffer: ReadingBuffer | None = None
        self._positions: PositionFile | None = None
        self._key = ""
        self._acknowledged = Acknowledged()
        self._batch_limit = config.batch_size
        self._last_success: float | None = None
        self._batches_total = 0
        self._readings_total = 0
        self._errors: dict[str, int] = dict.fromkeys(REASONS, 0)
        self._last_error: PushFailed | None = None
        self._last_error_time: float | None = None
        self._opener = self._build_opener()

    def _build_opener(self) -> urllib.request.OpenerDirector:
        import ssl
        import urllib.request

        class _NoRedirect(urllib.request.HTTPRedirectHandler):
            # A redirected POST would be resent as a GET (or to another host with the key): refuse.
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        handlers: list[urllib.request.BaseHandler] = [
            # The plant's proxy settings are for browsers; the machine talks to its centre directly.
            urllib.request.ProxyHandler({}),
            _NoRedirect(),
        ]
        if self.config.url.startswith("https:"):
            context = ssl.create_default_context(cafile=self.config.ca_file)  # verification on
            handlers.append(urllib.request.HTTPSHandler(context=context))
        return urllib.request.build_opener(*handlers)

    # -- life cycle --------------------------------------------------------------------------------

    def start(self, buffer: ReadingBuffer, key: str) -> None:
        """Start sending from `buffer` with machine key `key` (from `read_key`)."""
        self._buffer = buffer
        self._key = key
        self._positions = PositionFile(buffer.path + ".push.json")
        self._acknowledged = self._positions.load()
        self._thread = threading.Thread(target=self._run, name=f"push-{self.machine_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_JOIN_SECONDS)

    def status(self) -> PushStatus:
        """The current state; `pending` is read from the buffer."""
        pending: int | None = None
        buffer = self._buffer
        with self._lock:
            acknowledged = self._acknowledged
        if buffer is not None:
            try:
                pending = buffer.positions(acknowledged.position)[1]
            except ExporterError:
                pending = None
        with self._lock:
            return PushStatus(
                url=self.config.url,
                last_success_time=self._last_success,
                pending=pending,
                acknowledged_position=acknowledged.position,
                batches_total=self._batches_total,
                readings_total=self._readings_total,
                errors_total=dict(self._errors),
                last_error=self._last_error,
                last_error_time=self._last_error_time,
            )

    # -- sending -----------------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                more = self.run_once()
            except PushFailed as exc:
                failures += 1
                self._record_failure(exc, failures)
                delay = min(self.config.retry_max, RETRY_MIN_SECONDS * 2 ** min(failures - 1, 30))
                self._stop.wait(delay / 2 + random.uniform(0, delay / 2))
                continue
            except Exception:  # a bug must not end pushing for good: logged, retried like a failure
                failures += 1
                log.exception("push to %s failed unexpectedly", self.config.url)
                self._stop.wait(min(self.config.retry_max, RETRY_MIN_SECONDS * 2 ** min(failures - 1, 30)))
                continue
            if failures:
                log.info("push to %s works again after %d failed attempts", self.config.url, failures)
                failures = 0
            if not more:
                self._stop.wait(self.config.every)

    def run_once(self) -> bool:
        """Send one batch (readings after the acknowledged position, or none); True if more wait.

        Raises PushFailed when the batch was not acknowledged (nothing is marked as sent then).
        """
        buffer = self._buffer
        if buffer is None:
            raise RuntimeError("the push client is not started")
        try:
            self._check_position(buffer)
            rows = buffer.after_position(self._acknowledged.position, self._batch_limit)
        except ExporterError as exc:
            raise PushFailed("buffer", str(exc)) from exc
        sent_at = self._clock()
        sequence = rows[-1][0] if rows else self._acknowledged.position
        batch_id = f"{rows[0][0]}-{rows[-1][0]}" if rows else f"heartbeat-{int(sent_at * 1000)}"
        up, last_reading = self._sensor()
        body = batch_body(
            machine_id=self.machine_id,
            batch_id=batch_id,
            sequence=sequence,
            sent_at=sent_at,
            readings=_group(rows),
            serial_up=up,
            last_reading_time=last_reading,
            system=self._system(),
        )
        data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
        if len(data) > MAX_BODY_BYTES and len(rows) > 1:
            self._batch_limit = max(1, len(rows) // 2)
            return True
        try:
            answer = self._post(data)
        except PushFailed as exc:
            if exc.reason == "too_large" and len(rows) > 1:
                self._batch_limit = max(1, len(rows) // 2)
            raise
        if answer.get("sequence") != sequence or answer.get("batch_id") != batch_id:
            raise PushFailed("bad_answer", "the server's answer does not acknowledge this batch")
        if rows:
            position, at, metric, _ = rows[-1]
            acknowledged = Acknowledged(position, at, metric)
            assert self._positions is not None
            try:
                self._positions.save(acknowledged)
            except OSError as exc:
                # Sent and stored: the next start may send it again, which the server ignores.
                log.warning("cannot save the push position to %s: %s", self._positions.path, exc)
        with self._lock:
            if rows:
                self._acknowledged = acknowledged
            self._last_success = self._clock()
            self._batches_total += 1
            self._readings_total += len(rows)
        full = len(rows) >= self._batch_limit
        self._batch_limit = min(self.config.batch_size, self._batch_limit * 2)
        return full

    def _check_position(self, buffer: ReadingBuffer) -> None:
        """Start again from the beginning when the buffer is not the one the position was taken in.

        SQLite reuses positions once a table was emptied (or the file was replaced): a position past
        the buffer's end, or one whose reading is another, means that. The server stores again only
        what it does not have.
        """
        acknowledged = self._acknowledged
        if acknowledged.position == 0:
            return
        last, _ = buffer.positions(acknowledged.position)
        rows = buffer.after_position(acknowledged.position - 1, 1)
        moved = acknowledged.position > last or (
            bool(rows)
            and rows[0][0] == acknowledged.position
            and (rows[0][1], rows[0][2]) != (acknowledged.time, acknowledged.metric)
        )
        if moved:
            log.warning("the reading buffer %s was replaced or emptied: pushing all of it again", buffer.path)
            with self._lock:
                self._acknowledged = Acknowledged()

    def _post(self, data: bytes) -> dict[str, Any]:
        import urllib.error  # loaded with the opener already
        import urllib.request

        request = urllib.request.Request(
            self.config.url,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._key}",
                "User-Agent": self._user_agent,
            },
        )
        try:
            with self._opener.open(request, timeout=self.config.timeout) as response:
                raw = response.read(_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            raise PushFailed(_reason_of_status(exc.code), f"HTTP {exc.code}: {_detail(exc)}") from None
        except urllib.error.URLError as exc:
            raise _transport_failure(exc.reason) from None
        except (OSError, ValueError) as exc:  # ssl, socket and http.client errors, a reset connection
            raise _transport_failure(exc) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise PushFailed("bad_answer", "the server's answer is not JSON") from None
        if not isinstance(answer, dict):
            raise PushFailed("bad_answer", "the server's answer is not a JSON object")
        return answer

    def _record_failure(self, exc: PushFailed, failures: int) -> None:
        with self._lock:
            self._errors[exc.reason] = self._errors.get(exc.reason, 0) + 1
            previous = self._last_error
            self._last_error = exc
            self._last_error_time = self._clock()
        # The first failure, or a new kind of failure, is worth a line; repeats are not.
        if failures == 1 or previous is None or previous.reason != exc.reason:
            log.warning("push to %s failed (%s); retrying with back-off", self.config.url, exc)
        else:
            log.debug("push to %s failed again (%s)", self.config.url, exc)


def _group(rows: list[tuple[int, float, str, float]]) -> list[tuple[float, dict[str, float]]]:
    """Rows as readings: one entry per time (in order), at most MAX_VALUES_PER_READING values each."""
    readings: list[tuple[float, dict[str, float]]] = []
    index: dict[float, int] = {}
    for _, at, metric, value in rows:
        slot = index.get(at)
        if slot is None or len(readings[slot][1]) >= MAX_VALUES_PER_READING:
            index[at] = len(readings)
            readings.append((at, {}))
            slot = index[at]
        readings[slot][1][metric] = value
    return readings


def _reason_of_status(status: int) -> str:
    if status == 401:
        return "unauthorized"
    if status == 403:
        return "forbidden"
    if status == 413:
        return "too_large"
    if status >= 500:
        return "server_error"
    return "refused"


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(4096))
        detail = body.get("detail") if isinstance(body, dict) else None
    except (OSError, ValueError):
        detail = None
    text = str(detail) if detail else (exc.reason or "")
    return " ".join(str(text).split())[:300]


def _transport_failure(cause: object) -> PushFailed:
    import ssl  # loaded with urllib.request already

    if isinstance(cause, (ssl.SSLError, ssl.CertificateError)):
        return PushFailed("tls", f"TLS: {cause}")
    if isinstance(cause, (socket.timeout, TimeoutError)):
        return PushFailed("timeout", "no answer in time")
    if isinstance(cause, OSError):
        return PushFailed("unreachable", cause.strerror or str(cause) or type(cause).__name__)
    return PushFailed("unreachable", str(cause) or type(cause).__name__)
