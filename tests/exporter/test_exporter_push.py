"""The push client against a real HTTP server on loopback (stdlib, scripted answers) and a real buffer."""

from __future__ import annotations

import json
import logging
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support import wait_until

from exporter.buffer import ReadingBuffer
from exporter.config import PushConfig
from exporter.errors import PushKeyError
from exporter.push import Acknowledged, PositionFile, PushClient, read_key

KEY = "mwk_" + "k" * 43
T0 = 1_764_480_000.0


@dataclass
class Central:
    """A loopback stand-in for POST /api/ingest: records each batch, answers from a script."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # statuses to answer first, then 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def readings(self) -> list[tuple[float, str, float]]:
        """Every (time, metric, value) of the accepted batches, in arrival order."""
        with self.lock:
            return [
                (r["time"], metric, value)
                for batch in self.received
                for r in batch["readings"]
                for metric, value in r["values"].items()
            ]


def _handler(central: Central) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            with central.lock:
                central.authorizations.append(self.headers.get("Authorization", ""))
                status = central.script.pop(0) if central.script else 200
                if status == 200:
                    batch = json.loads(data)
                    central.received.append(batch)
                    answer = {"sequence": batch["sequence"], "batch_id": batch["batch_id"]}
                else:
                    answer = {"detail": f"scripted {status}"}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def central() -> Iterator[Central]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Central("")))
    central = Central(f"http://127.0.0.1:{server.server_address[1]}/api/ingest")
    server.RequestHandlerClass = _handler(central)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield central
    server.shutdown()
    server.server_close()


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[ReadingBuffer]:
    buffer = ReadingBuffer(str(tmp_path / "buffer.sqlite"), 10 * 365 * 86400.0)
    yield buffer
    buffer.close()


def fill(buffer: ReadingBuffer, start: int, count: int) -> list[tuple[float, str, float]]:
    rows = []
    for i in range(start, start + count):
        rows += [(T0 + i, "machine_temperature_celsius", 60.0 + i), (T0 + i, "machine_speed_rpm", 1000.0 + i)]
    buffer.append_many(rows)
    return rows


def client(url: str, **config: Any) -> PushClient:
    settings = {"every": 0.05, "batch_size": 10, "retry_max": 0.2, "timeout": 5.0, **config}
    return PushClient(
        PushConfig(url=url, api_key_file="unused", **settings),
        "press",
        sensor=lambda: (True, T0),
        system=lambda: {"uptime_seconds": 10.0},
    )


def test_everything_buffered_is_sent_in_batches_and_acknowledged_on_disk(
    central: Central, buffer: ReadingBuffer
) -> None:
    rows = fill(buffer, 0, 25)  # 50 rows, batches of at most 10 rows
    push = client(central.url)
    push.start(buffer, KEY)
    try:
        wait_until(lambda: len(central.readings()) >= 50, timeout=20, what="every reading to be sent")
        wait_until(lambda: push.status().pending == 0, timeout=20, what="the last acknowledgement")
    finally:
        push.stop()
    assert central.readings() == rows  # in order, each once
    assert all(len(b["readings"]) <= 10 for b in central.received)
    assert set(central.authorizations) == {f"Bearer {KEY}"}
    status = push.status()
    assert status.readings_total == 50 and status.last_success_time is not None
    saved = PositionFile(buffer.path + ".push.json").load()
    assert (saved.position, saved.time, saved.metric) == (50, T0 + 24, "machine_speed_rpm")


def test_after_an_outage_the_missed_readings_arrive_once_and_a_restart_resumes(
    central: Central, buffer: ReadingBuffer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rows = fill(buffer, 0, 5)
    central.script = [503, 503, 401]
    push = client(central.url)
    push.start(buffer, KEY)
    try:
        wait_until(lambda: len(central.readings()) >= 10, timeout=20, what="the readings after the outage")
        wait_until(lambda: push.status().pending == 0, timeout=20, what="the acknowledgement")
        errors = push.status().errors_total
        assert (errors["server_error"], errors["unauthorized"]) == (2, 1)
        assert push.status().last_error is not None
    finally:
        push.stop()
    assert central.readings() == rows

    rows += fill(buffer, 5, 3)  # read while the exporter was stopped
    restarted = client(central.url)
    restarted.start(buffer, KEY)
    try:
        wait_until(lambda: len(central.readings()) >= 16, timeout=20, what="the readings since the restart")
        wait_until(lambda: restarted.status().pending == 0, timeout=20, what="the acknowledgement")
    finally:
        restarted.stop()
    assert central.readings() == rows  # nothing lost, nothing twice
    assert KEY not in caplog.text and "k" * 43 not in caplog.text


def test_a_batch_refused_as_too_large_is_split(central: Central, buffer: ReadingBuffer) -> None:
    rows = fill(buffer, 0, 10)
    central.script = [413]
    push = client(central.url, batch_size=20)
    push.start(buffer, KEY)
    try:
        wait_until(lambda: len(central.readings()) >= 20, timeout=20, what="the readings in smaller batches")
    finally:
        push.stop()
    assert central.readings() == rows
    assert max(len(b["readings"]) for b in central.received) == 5  # 20 rows halved: 10 rows, 5 readings
    assert push.status().errors_total["too_large"] == 1


def test_with_nothing_new_a_heartbeat_still_carries_the_sensor_and_system(
    central: Central, buffer: ReadingBuffer
) -> None:
    push = client(central.url)
    push.start(buffer, KEY)
    try:
        wait_until(lambda: len(central.received) >= 2, timeout=20, what="two heartbeats")
    finally:
        push.stop()
    beat = central.received[0]
    assert beat["readings"] == [] and beat["batch_id"].startswith("heartbeat-")
    assert beat["serial"] == {"up": True, "last_reading_time": T0}
    assert beat["system"]["uptime_seconds"] == 10.0


def test_an_unreachable_centre_is_counted_and_nothing_is_acknowledged(buffer: ReadingBuffer) -> None:
    fill(buffer, 0, 2)
    push = client("http://127.0.0.1:9/api/ingest")  # the discard port: nothing listens
    push.start(buffer, KEY)
    try:
        wait_until(lambda: push.status().errors_total["unreachable"] >= 2, timeout=20, what="two failures")
    finally:
        push.stop()
    assert push.status().pending == 4 and push.status().last_success_time is None


def test_a_replaced_buffer_is_sent_again_from_its_start(central: Central, tmp_path: Path) -> None:
    path = str(tmp_path / "buffer.sqlite")
    PositionFile(path + ".push.json").save(Acknowledged(3, T0, "other"))
    buffer = ReadingBuffer(path, 10 * 365 * 86400.0)
    try:
        rows = fill(buffer, 0, 4)  # position 3 holds another reading than the one acknowledged
        push = client(central.url)
        push.start(buffer, KEY)
        try:
            wait_until(lambda: len(central.readings()) >= 8, timeout=20, what="the whole buffer")
        finally:
            push.stop()
    finally:
        buffer.close()
    assert central.readings() == rows


def test_the_key_file_is_checked_without_showing_its_content(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(f"  {KEY}\n")
    assert read_key(str(path)) == KEY
    path.write_text("hunter2-not-a-key")
    with pytest.raises(PushKeyError) as caught:
        read_key(str(path))
    assert "hunter2" not in str(caught.value) and str(path) in str(caught.value)
    with pytest.raises(PushKeyError, match="cannot read it"):
        read_key(str(tmp_path / "missing"))


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_is_verified_unless_the_private_ca_is_given(tmp_path: Path, buffer: ReadingBuffer) -> None:
    cert, key = _self_signed(tmp_path)
    central = Central("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(central))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/api/ingest"
    try:
        fill(buffer, 0, 1)
        untrusting = client(url)
        untrusting.start(buffer, KEY)
        try:
            wait_until(lambda: untrusting.status().errors_total["tls"] >= 1, timeout=20, what="a TLS refusal")
        finally:
            untrusting.stop()
        last = untrusting.status().last_error
        assert last is not None and "certificate" in last.message.lower()
        assert central.received == []

        trusting = client(url, ca_file=str(cert))
        trusting.start(buffer, KEY)
        try:
            wait_until(lambda: len(central.readings()) == 2, timeout=20, what="the batch over verified TLS")
        finally:
            trusting.stop()
    finally:
        server.shutdown()
        server.server_close()
