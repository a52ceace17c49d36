"""One scrape over real HTTP on loopback: headers, auth, gzip, limits, and every failure's text."""

from __future__ import annotations

import base64
import errno
import socket
import threading
import time
from pathlib import Path

import pytest
from scraper_helpers import FakeExporter, RawServer, run
from support import closed_port_url

from scraper.errors import (
    BadExposition,
    BodyTooLarge,
    ConnectFailed,
    CredentialsUnavailable,
    HTTPStatusError,
    ScrapeTimeout,
    TransferFailed,
)
from scraper.exposition import parse_exposition
from scraper.fetch import connect_cause, fetch_metrics
from scraper.http1 import Http1Transport
from scraper.inventory import Auth, BasicAuth, Machine


def machine(url: str, timeout: float = 2.0, auth: Auth | None = None) -> Machine:
    return Machine(
        id="m", name="m", url=url, scrape_interval_seconds=10.0, scrape_timeout_seconds=timeout, auth=auth
    )


async def fetch(target: Machine, **kwargs: int) -> tuple[str, float]:
    transport = Http1Transport()
    try:
        return await fetch_metrics(transport, target, **kwargs)
    finally:
        await transport.aclose()


def test_fetch_gets_the_exposition_with_the_prometheus_headers(exporter: FakeExporter) -> None:
    exporter.set_readings(temperature=83.1)
    text, duration = run(fetch(machine(exporter.url)))
    samples = {s.name: s.value for s in parse_exposition(text) if not s.labels}
    assert samples["machine_temperature_celsius"] == 83.1
    assert 0 < duration < 2
    (headers,) = exporter.requests
    assert headers["accept"] == "text/plain;version=0.0.4"
    assert headers["accept-encoding"] == "gzip"
    assert headers["x-prometheus-scrape-timeout-seconds"] == "2"
    assert "authorization" not in headers


def test_uncompressed_answers_are_fine_too(exporter: FakeExporter) -> None:
    exporter.gzip = False
    text, _ = run(fetch(machine(exporter.url)))
    assert "machine_temperature_celsius" in text


def test_bearer_token_is_read_from_its_file_at_scrape_time(exporter: FakeExporter, tmp_path: Path) -> None:
    token = tmp_path / "press.token"
    token.write_text("s3cret-token\n")
    target = machine(exporter.url, auth=Auth(bearer_token_file=str(token)))
    run(fetch(target))
    token.write_text("rotated-token")
    run(fetch(target))
    assert [r["authorization"] for r in exporter.requests] == ["Bearer s3cret-token", "Bearer rotated-token"]


def test_bearer_token_and_basic_password_from_the_environment(
    exporter: FakeExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MW_TEST_TOKEN", "env-token")
    monkeypatch.setenv("MW_TEST_PASSWORD", "pässword")
    run(fetch(machine(exporter.url, auth=Auth(bearer_token_env="MW_TEST_TOKEN"))))
    basic = Auth(basic=BasicAuth(username="scraper", password_env="MW_TEST_PASSWORD"))
    run(fetch(machine(exporter.url, auth=basic)))
    assert exporter.requests[0]["authorization"] == "Bearer env-token"
    encoded = exporter.requests[1]["authorization"].removeprefix("Basic ")
    assert base64.b64decode(encoded).decode() == "scraper:pässword"


def test_missing_secrets_fail_the_scrape_naming_the_source_not_the_secret(
    exporter: FakeExporter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.token"
    with pytest.raises(CredentialsUnavailable) as caught:
        run(fetch(machine(exporter.url, auth=Auth(bearer_token_file=str(missing)))))
    assert str(caught.value) == f"cannot read bearer_token_file {missing}: No such file or directory"
    monkeypatch.delenv("MW_UNSET_TOKEN", raising=False)
    with pytest.raises(CredentialsUnavailable, match="environment variable MW_UNSET_TOKEN is not set"):
        run(fetch(machine(exporter.url, auth=Auth(bearer_token_env="MW_UNSET_TOKEN"))))
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    with pytest.raises(CredentialsUnavailable, match="is empty"):
        run(fetch(machine(exporter.url, auth=Auth(bearer_token_file=str(empty)))))
    assert exporter.requests == []  # nothing was sent without its credentials


def test_http_error_status(exporter: FakeExporter) -> None:
    exporter.status = 503
    with pytest.raises(HTTPStatusError) as caught:
        run(fetch(machine(exporter.url)))
    assert str(caught.value) == "HTTP 503" and caught.value.status_code == 503


def test_connection_refused() -> None:
    with pytest.raises(ConnectFailed) as caught:
        run(fetch(machine(closed_port_url())))
    assert str(caught.value) == "connection refused"


def test_slow_exporter_times_out_at_the_machines_timeout(exporter: FakeExporter) -> None:
    exporter.delay = 10
    started = time.monotonic()
    with pytest.raises(ScrapeTimeout) as caught:
        run(fetch(machine(exporter.url, timeout=0.3)))
    assert str(caught.value) == "timeout after 0.3s"
    assert time.monotonic() - started < 2


def trickle(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
    while not stop.wait(0.05):
        connection.sendall(b"# still coming\n")


def test_a_body_that_trickles_in_is_cut_off_by_the_overall_timeout() -> None:
    server = RawServer(trickle)
    try:
        started = time.monotonic()
        with pytest.raises(ScrapeTimeout, match="timeout after 0.4s"):
            run(fetch(machine(server.url, timeout=0.4)))
        assert time.monotonic() - started < 2
    finally:
        server.close()


def cut_mid_body(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nmachine_temperature_celsius 7")


def test_a_connection_cut_mid_body_is_a_transfer_failure() -> None:
    server = RawServer(cut_mid_body)
    try:
        with pytest.raises(TransferFailed) as caught:
            run(fetch(machine(server.url)))
        assert "peer closed connection" in str(caught.value)
    finally:
        server.close()


def test_oversized_bodies_are_refused(exporter: FakeExporter) -> None:
    exporter.body = b"machine_padding_bytes 1\n" * 1000  # 24 000 bytes
    exporter.gzip = False  # the declared length alone tells
    with pytest.raises(BodyTooLarge) as caught:
        run(fetch(machine(exporter.url), max_body_bytes=10_000))
    assert str(caught.value) == "body larger than 10000 bytes"
    exporter.gzip = True  # compressed: the limit applies to what it unpacks to
    with pytest.raises(BodyTooLarge):
        run(fetch(machine(exporter.url), max_body_bytes=10_000))
    text, _ = run(fetch(machine(exporter.url), max_body_bytes=24_000))
    assert len(text) == 24_000


def test_a_body_that_is_not_utf8_is_a_bad_exposition(exporter: FakeExporter) -> None:
    exporter.body = b'ok 1\nmachine_name{x="\xff"} 1\n'
    with pytest.raises(BadExposition) as caught:
        run(fetch(machine(exporter.url)))
    assert str(caught.value) == "bad exposition at line 2: not valid UTF-8"


def wrapped(cause: OSError) -> Exception:
    """A chain as clients build it: an error <- OSError("All connection attempts failed") <- the cause."""
    middle = OSError("All connection attempts failed")
    middle.__cause__ = cause
    outer = RuntimeError("All connection attempts failed")
    outer.__cause__ = middle
    return outer


def test_connect_causes_are_named_from_the_underlying_os_error() -> None:
    assert connect_cause(wrapped(socket.gaierror(-2, "Name or service not known"))) == "name not resolved"
    assert connect_cause(wrapped(OSError(errno.EHOSTUNREACH, "No route to host"))) == "no route to host"
    assert (
        connect_cause(wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))) == "connection refused"
    )
    assert (
        connect_cause(wrapped(OSError(errno.ENETUNREACH, "Network is unreachable"))) == "network unreachable"
    )
    assert connect_cause(RuntimeError("something else")) == "connection failed"
