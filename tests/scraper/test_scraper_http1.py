"""The scrape client `Http1Transport` against real loopback servers: the connection pool, the
framings of a body, the bounds of a response head, cancellation, TLS and IPv6."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from scraper_helpers import RawServer, run

from exporter.app import ExporterApp
from exporter.config import parse_config
from exporter.simulator import SimulatedSensor
from scraper.errors import ConnectFailed, ScrapeTimeout
from scraper.fetch import fetch_metrics
from scraper.http1 import Http1Transport
from scraper.inventory import Machine

SAMPLE = b"machine_temperature_celsius 42\n"
Serve = Callable[[socket.socket, threading.Event], None]


def machine(url: str, timeout: float = 3.0) -> Machine:
    return Machine(id="m", name="m", url=url, scrape_interval_seconds=10, scrape_timeout_seconds=timeout)


def read_request(connection: socket.socket) -> bytes:
    """The next request head on `connection` (b"" when the client closed it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = connection.recv(65536)
        if not piece:
            return b""
        data += piece
    return data


def answer(body: bytes = SAMPLE, *headers: str) -> bytes:
    head = "HTTP/1.1 200 OK\r\n" + "".join(h + "\r\n" for h in headers)
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.fixture
def serve() -> Iterator[Callable[[Serve], RawServer]]:
    started: list[RawServer] = []

    def start(handler: Serve) -> RawServer:
        server = RawServer(handler)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def scrapes(
    url: str,
    count: int,
    transport: Http1Transport | None = None,
    timeout: float = 3.0,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> list[str]:
    """`count` scrapes of `url` in a row through one transport: each body or error text."""

    async def scenario() -> list[str]:
        client = transport or Http1Transport()
        results = []
        try:
            for _ in range(count):
                try:
                    results.append((await fetch_metrics(client, machine(url, timeout)))[0])
                except Exception as e:
                    results.append(f"{type(e).__name__}: {e}")
        finally:
            await client.aclose()
        return results

    if loop_factory is not None:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(asyncio.wait_for(scenario(), 60))
    return run(scenario())


def test_one_connection_serves_every_scrape(serve: Callable[[Serve], RawServer]) -> None:
    connections: list[int] = []

    def keep_answering(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        connection.sendall(answer())  # RawServer read the first request already
        while read_request(connection):
            connection.sendall(answer())

    server = serve(keep_answering)
    transport = Http1Transport()
    assert scrapes(server.url, 6, transport) == [SAMPLE.decode()] * 6
    assert len(connections) == 1 and transport.connections_opened == 1


def test_a_kept_alive_connection_the_exporter_closes_at_the_next_request_is_replaced(
    serve: Callable[[Serve], RawServer],
) -> None:
    """The exporter's idle timeout fires as the request arrives: no answer byte, the request goes
    again on a new connection, and the scrape succeeds."""
    connections: list[int] = []

    def answer_once_then_hang_up(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        connection.sendall(answer())
        read_request(connection)  # the second request arrives ...
        # ... and the connection is closed without a byte of answer.

    server = serve(answer_once_then_hang_up)
    assert scrapes(server.url, 3) == [SAMPLE.decode()] * 3
    assert len(connections) == 3  # each later scrape: the stale connection, then a new one


def test_a_chunked_gzip_body_is_read_and_its_connection_kept(serve: Callable[[Serve], RawServer]) -> None:
    connections: list[int] = []
    body = b"".join(b"machine_line_%d 1\n" % i for i in range(2000))
    packed = gzip.compress(body)
    pieces = [packed[i : i + 1000] for i in range(0, len(packed), 1000)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"

    def chunks(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        while True:
            connection.sendall(head)
            for start in range(0, len(chunked), 700):  # the chunks arrive in awkward pieces
                connection.sendall(chunked[start : start + 700])
            if not read_request(connection):
                return

    server = serve(chunks)
    assert scrapes(server.url, 2) == [body.decode()] * 2
    assert len(connections) == 1


def test_connection_close_and_http_1_0_answers_end_their_connection(
    serve: Callable[[Serve], RawServer],
) -> None:
    connections: list[int] = []

    def close_after_answer(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        connection.sendall(answer(SAMPLE, "Connection: close"))
        read_request(connection)  # a client that reused it would wait here for nothing

    def http_1_0(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + SAMPLE)
        # No length: the body ends when the connection does.

    for handler in (close_after_answer, http_1_0):
        connections.clear()
        server = serve(handler)
        assert scrapes(server.url, 3, timeout=1.0) == [SAMPLE.decode()] * 3
        assert len(connections) == 3


def test_the_response_head_is_bounded(serve: Callable[[Serve], RawServer]) -> None:
    def sending(data: bytes) -> Serve:
        return lambda connection, stop: connection.sendall(data)

    long_header = answer(SAMPLE, "X-Padding: " + "a" * 9000)
    many_headers = answer(SAMPLE, *(f"X-H{i}: 1" for i in range(200)))
    big_head = answer(SAMPLE, *(f"X-H{i}: {'v' * 8000}" for i in range(12)))

    def endless_head(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nX-Long: ")
        while not stop.is_set():  # one header value that never ends
            connection.sendall(b"v" * 4096)

    expected = "TransferFailed: the exporter broke the HTTP protocol: "
    (text,) = scrapes(serve(sending(long_header)).url, 1)
    assert text.startswith(expected + "got more than 8190 bytes when reading: b'aaaa")
    assert scrapes(serve(sending(many_headers)).url, 1) == [expected + "too many headers received"]
    too_large = expected + "response head larger than 65536 bytes"
    assert scrapes(serve(sending(big_head)).url, 1) == [too_large]
    assert scrapes(serve(endless_head).url, 1) == [too_large]


def test_a_peer_closing_mid_body_or_mid_head_is_named(serve: Callable[[Serve], RawServer]) -> None:
    def cut_chunked(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\nmachine_temp")

    def cut_head(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Ty")

    def garbage(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")

    assert scrapes(serve(cut_chunked).url, 1) == [
        "TransferFailed: peer closed connection without sending complete message body"
    ]
    assert scrapes(serve(cut_head).url, 1) == ["TransferFailed: the exporter closed the connection"]
    assert scrapes(serve(garbage).url, 1) == [
        "TransferFailed: the exporter broke the HTTP protocol: expected HTTP/, RTSP/ or ICE/"
    ]


def test_a_scrape_cancelled_mid_body_closes_its_connection(serve: Callable[[Serve], RawServer]) -> None:
    """The timeout ends the scrape while the body trickles: that connection is closed, never
    handed to the next scrape (which would read the rest of the old body as its answer)."""
    connections: list[int] = []
    closed_by_client = threading.Event()

    def trickle_then_answer(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        if len(connections) == 1:
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nmachine_")
            connection.settimeout(10)
            try:
                if connection.recv(65536) == b"":  # no request follows on it: it was closed
                    closed_by_client.set()
            except ConnectionResetError:
                closed_by_client.set()
            return
        connection.sendall(answer())
        while read_request(connection):
            connection.sendall(answer())

    server = serve(trickle_then_answer)
    assert scrapes(server.url, 3, timeout=0.3) == [
        "ScrapeTimeout: timeout after 0.3s",
        SAMPLE.decode(),
        SAMPLE.decode(),
    ]
    assert closed_by_client.wait(5)
    assert len(connections) == 2


def test_bytes_after_a_complete_answer_retire_the_connection(serve: Callable[[Serve], RawServer]) -> None:
    connections: list[int] = []

    def extra(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        connection.sendall(answer() + b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nsmuggled\n")
        while read_request(connection):
            connection.sendall(answer())

    server = serve(extra)
    assert scrapes(server.url, 2) == [SAMPLE.decode()] * 2
    assert len(connections) == 2


def test_an_ipv6_literal_host_is_scraped_with_its_host_header() -> None:
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    heads: list[bytes] = []

    def accept() -> None:
        connection, _ = listener.accept()
        with connection:
            heads.append(read_request(connection))
            connection.sendall(answer())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        assert scrapes(f"http://[::1]:{port}/metrics", 1) == [SAMPLE.decode()]
    finally:
        thread.join(5)
        listener.close()
    assert heads[0].startswith(b"GET /metrics HTTP/1.1\r\nHost: [::1]:%d\r\n" % port)


@pytest.fixture
def tls_exporter(tmp_path: Path) -> Iterator[tuple[str, trustme.CA]]:
    """The real exporter serving HTTPS with a certificate of a throwaway CA; yields (URL, CA)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "exporter.pem"))
    with SimulatedSensor(interval=0.05, seed=1) as sensor:
        assert sensor.path is not None
        config = parse_config(
            {
                "machine": {"id": "press_01"},
                "listen": "127.0.0.1:0",
                "serial": {"port": sensor.path},
                "buffer": {"path": str(tmp_path / "b.sqlite")},
                "web": {
                    "tls_cert_file": str(tmp_path / "exporter.pem"),
                    "tls_key_file": str(tmp_path / "exporter.pem"),
                },
            },
            "test",
        )
        with ExporterApp(config) as app:
            yield app.url, ca


def test_https_is_verified_against_the_trusted_cas(tls_exporter: tuple[str, trustme.CA]) -> None:
    url, ca = tls_exporter
    assert url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    trusting = Http1Transport(ssl_context=context)
    texts = scrapes(url, 2, trusting)
    assert all("millwatch_serial_up" in text for text in texts), texts
    assert trusting.connections_opened == 1
    # Python's default context (the host's CAs) does not know this CA.
    (refused,) = scrapes(url, 1)
    assert refused.startswith("ConnectFailed: TLS certificate not trusted: ")


def test_connection_failures_are_named() -> None:
    async def failure(url: str) -> str:
        transport = Http1Transport()
        try:
            await fetch_metrics(transport, machine(url, timeout=2.0))
        except (ConnectFailed, ScrapeTimeout) as e:
            return str(e)
        finally:
            await transport.aclose()
        return "no failure"

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert run(failure(f"http://127.0.0.1:{port}/metrics")) == "connection refused"
    assert run(failure("http://name.invalid/metrics")) == "name not resolved"


def test_idle_connections_expire(serve: Callable[[Serve], RawServer]) -> None:
    closed = threading.Event()

    def answer_then_watch(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(answer())
        connection.settimeout(10)
        try:
            if connection.recv(65536) == b"":
                closed.set()
        except ConnectionResetError:
            closed.set()

    server = serve(answer_then_watch)

    async def scenario() -> bool:
        transport = Http1Transport(keepalive_seconds=0.2)
        try:
            await fetch_metrics(transport, machine(server.url))
            # Closed by the transport's sweep after 0.2 s idle, with no scrape to notice it.
            return await asyncio.to_thread(closed.wait, 5)
        finally:
            await transport.aclose()

    assert run(scenario())


def test_uvloop_serves_the_same_scrapes(serve: Callable[[Serve], RawServer]) -> None:
    """`millwatch serve` runs the scraper on uvicorn's loop, uvloop when installed: its transports
    are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")
    connections: list[int] = []

    def answer_twice_then_hang_up(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        connection.sendall(answer())
        if read_request(connection):
            chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SAMPLE), SAMPLE)
            connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
        read_request(connection)  # the third request: closed unanswered, it goes again

    server = serve(answer_twice_then_hang_up)
    body = SAMPLE.decode()
    transport = Http1Transport()
    assert scrapes(server.url, 4, transport, loop_factory=uvloop.new_event_loop) == [body] * 4
    assert len(connections) == 2 and transport.connections_opened == 2
