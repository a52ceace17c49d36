"""The exporter's HTTP server is bounded: connections, head deadline, idle keep-alive, head size, methods.

Real servers on 127.0.0.1, real sockets. Timing is only ever checked against generous deadlines.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from pathlib import Path

import pytest
from exporter_helpers import RawPty, base_url, http_get, samples
from web_helpers import StartApp, poll

from exporter.buffer import ReadingBuffer
from exporter.exposition import Registry
from exporter.http import ExporterHttpServer, HttpContext
from exporter.webserver import MAX_IDLE_WORKERS, Limits


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closed `sock` (EOF or reset); False while it stays open and silent."""
    sock.setblocking(False)
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)
    return data == b"" or data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5")


def test_two_hundred_silent_clients_do_not_block_a_scrape(start_app: StartApp) -> None:
    app = start_app(web={"max_connections": 16})
    threads_before = threading.active_count()
    silent: list[socket.socket] = []
    try:
        for _ in range(200):
            silent.append(socket.create_connection(("127.0.0.1", app.port), timeout=10))
        started = time.monotonic()
        response = http_get(app.url)
        elapsed = time.monotonic() - started
        assert response.status == 200
        assert b"millwatch_serial_up" in response.body
        # Well under a second on an idle machine; the bound is generous for a loaded CI box. A
        # server that queued the scrape behind the silent clients would wait out their deadline.
        assert elapsed < 5.0, elapsed
        # Bounded: the server keeps at most 16 connections (the silent ones that waited longest were
        # closed to make room) and did not start a thread per connection.
        poll(
            lambda: sum(_closed_by_server(s) for s in silent) >= 200 - 16,
            what="the server to close the silent connections beyond its limit",
        )
        assert threading.active_count() - threads_before <= 16
        got = samples(http_get(app.url).text)
        assert got['millwatch_http_rejected_total{reason="evicted"}'] >= 200 - 16
        assert got["millwatch_http_open_connections"] <= 16
    finally:
        for sock in silent:
            sock.close()


def test_over_the_limit_is_503_at_once(tmp_path: Path) -> None:
    """With every connection in the middle of a request, a new one is refused at once, not queued."""
    release = threading.Event()
    inside = threading.Semaphore(0)

    def slow_page() -> str:  # a handler that takes its time, like a slow disk under /history
        inside.release()
        release.wait(30)
        return "<html>done</html>"

    buffer = ReadingBuffer(str(tmp_path / "b.sqlite"), 3600)
    context = HttpContext(registry=Registry(), machine_id="m", buffer=buffer, status_page=slow_page)
    server = ExporterHttpServer("127.0.0.1", 0, context, limits=Limits(max_connections=2))
    server.start()
    root = f"http://127.0.0.1:{server.port}"
    answers: list[int] = []
    clients = [threading.Thread(target=lambda: answers.append(http_get(root + "/").status)) for _ in range(2)]
    try:
        for client in clients:
            client.start()
        for _ in clients:
            assert inside.acquire(timeout=10), "both slow requests are being answered"
        started = time.monotonic()
        refused = http_get(root + "/metrics")
        assert time.monotonic() - started < 5.0
        assert refused.status == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["connection"] == "close"
        assert server.counters.rejected_busy == 1
        release.set()
        for client in clients:
            client.join(10)
        assert answers == [200, 200]
        assert http_get(root + "/metrics").status == 200, "a free slot serves again"
    finally:
        release.set()
        server.stop()
        buffer.close()


def test_a_slowloris_client_is_cut_off_by_the_head_deadline(start_app: StartApp) -> None:
    app = start_app(web={"header_read_timeout": "2s"})
    request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nAccept: */*\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", app.port), timeout=10)
    started = time.monotonic()
    answer = b""
    sent = 0
    try:
        # One byte a second: each byte alone would reset a per-read timeout forever. The select
        # paces the bytes and notices the server's answer; at most 20 bytes (20 s) are tried.
        for byte in request[:20]:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sent += 1
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable:
                answer = sock.recv(4096)
                break
    finally:
        sock.close()
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert sent < 20 and elapsed < 10.0, (sent, elapsed)
    got = samples(http_get(app.url).text)
    assert got['millwatch_http_rejected_total{reason="head_timeout"}'] == 1.0


def test_keep_alive_two_requests_on_one_connection(start_app: StartApp) -> None:
    app = start_app()
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        first = connection.getresponse()
        assert first.status == 200 and b"millwatch_serial_up" in first.read()
        assert first.getheader("Connection") != "close"
        sock = connection.sock
        assert sock is not None
        local = sock.getsockname()
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        assert (second.status, second.read()) == (200, b"ok")
        assert connection.sock is sock and sock.getsockname() == local, "the same TCP connection"
    finally:
        connection.close()


def test_pipelined_requests_are_answered_in_order(start_app: StartApp) -> None:
    app = start_app()
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        deadline = time.monotonic() + 10
        while b"404 Not Found" not in received and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert received.index(b"200 OK") < received.index(b"404 Not Found")


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(start_app: StartApp) -> None:
    app = start_app(web={"idle_timeout": "1s"})
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"ok"):
            answer += sock.recv(4096)
        assert b"200 OK" in answer
        readable, _, _ = select.select([sock], [], [], 10.0)
        assert readable and sock.recv(4096) == b"", "the server closed the idle connection"


def test_an_oversized_head_is_431_and_other_methods_405(start_app: StartApp) -> None:
    app = start_app()
    huge = http_get(app.url, {"X-Padding": "a" * 20000})
    assert huge.status == 431
    posted = http_get(app.url, method="POST")
    assert posted.status == 405
    assert posted.headers["allow"] == "GET, HEAD"
    assert http_get(base_url(app.url) + "/healthz").status == 200
    assert samples(http_get(app.url).text)['millwatch_http_rejected_total{reason="head_too_large"}'] == 1.0


def test_stop_closes_connections_in_every_state(start_app: StartApp, raw_pty: RawPty) -> None:
    app = start_app()
    silent = socket.create_connection(("127.0.0.1", app.port), timeout=10)
    idle = socket.create_connection(("127.0.0.1", app.port), timeout=10)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    poll(lambda: idle.recv(4096).endswith(b"ok"), what="the first answer")
    app.stop()
    for sock in (silent, idle):
        readable, _, _ = select.select([sock], [], [], 10.0)
        assert readable and _closed_by_server(sock)
        sock.close()


@pytest.mark.parametrize(
    "junk",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello on the plain port
        b"\xff\xfe\xfd garbage \x00\x01\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",  # more headers than the stdlib reads
        b"\r\n\r\n",
    ],
)
def test_junk_heads_are_answered_or_dropped_and_the_server_lives_on(start_app: StartApp, junk: bytes) -> None:
    app = start_app()
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(junk)
        answer = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
    assert answer == b"" or answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ", b"HTTP/1.1 505 ")), answer[
        :100
    ]
    assert b"<html" not in answer.lower(), "one plain line, no HTML page"
    assert b"millwatch_serial_up" not in answer
    assert http_get(app.url).status == 200


def _exchange(port: int, request: bytes) -> tuple[bytes, bool]:
    """Send `request`, read until the answer ends; returns (answer, whether the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            head, _, body = answer.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"Content-Length")
            ]
            if length and (len(body) >= length[0] or request.startswith(b"HEAD")):
                break
            chunk = sock.recv(65536)
            if not chunk:
                return answer, True
            answer += chunk
        readable, _, _ = select.select([sock], [], [], 2.0)
        return answer, bool(readable) and _closed_by_server(sock)


@pytest.mark.parametrize(
    ("request_bytes", "status", "closed"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"200 OK", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"200 OK", True),
        (b"GET /healthz HTTP/1.0\r\n\r\n", b"200 OK", True),
        (b"GET /healthz\r\n\r\n", b"200 OK", True),  # HTTP/0.9 form, answered as 1.1
        (b"GET //healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"200 OK", False),
        (b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"200 OK", True),  # unread body
        (b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"405 Method Not Allowed", True),
        (b"POST /healthz\r\n\r\n", b"400 Bad Request", True),
        (b"GET /healthz HTTP/1.x\r\n\r\n", b"400 Bad Request", True),
        (b"GET /healthz HTTP/2.0\r\n\r\n", b"505 HTTP Version Not Supported", True),
        (b"GET /a /b HTTP/1.1 extra\r\n\r\n", b"400 Bad Request", True),
    ],
)
def test_the_request_head_decides_the_answer_and_keep_alive(
    start_app: StartApp, request_bytes: bytes, status: bytes, closed: bool
) -> None:
    app = start_app()
    answer, was_closed = _exchange(app.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status + b"\r\n"), answer[:200]
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1")
    assert "\r\nServer: millwatch-exporter/" in head
    date = next(line for line in head.split("\r\n") if line.startswith("Date: "))
    assert time.strptime(date[6:], "%a, %d %b %Y %H:%M:%S GMT")
    assert was_closed is closed


def test_head_answers_the_headers_of_get_without_the_body(start_app: StartApp) -> None:
    app = start_app()
    answer, _ = _exchange(app.port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.startswith(b"Content-Length")).split(b":")[1]
    )
    assert head.startswith(b"HTTP/1.1 200 OK") and length > 1000 and body == b""


def test_workers_are_reused_between_scrapes_and_end_with_the_server(start_app: StartApp) -> None:
    app = start_app()

    def request_threads() -> int:
        return sum(t.name.endswith(f":{app.port} request") for t in threading.enumerate())

    for _ in range(5):
        assert http_get(app.url).status == 200
    assert 1 <= request_threads() <= MAX_IDLE_WORKERS, "sequential scrapes share the waiting workers"
    app.stop()
    poll(lambda: request_threads() == 0, what="the idle workers to end with the server")
