"""Nothing one machine sends can hurt the others: real hostile exporters on loopback, a healthy one
beside them, the real scraper, SQLite and PostgreSQL.

Each hostile machine must end `down` with the limit it broke as its reason (or, for labels that
change at every scrape, be held to the store's bound of series), the scraper's memory must not
grow by what the hostile machines send, and the healthy machine's samples must keep arriving.
"""

from __future__ import annotations

import itertools
import resource
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from scraper_helpers import (
    FakeExporter,
    RawServer,
    async_wait_until,
    machine_yaml,
    run,
    running,
    write_inventory,
)

from scraper.fetch import fetch_metrics
from scraper.http1 import Http1Transport
from scraper.inventory import Machine
from scraper.state import FleetState, Status
from scraper.store import Store

BOMB_INFLATED = 512 * 2**20  # what the bomb unpacks to: far more than the test could hold twice


def gzip_bomb() -> bytes:
    """512 MiB of newlines, gzip-compressed to about half a megabyte (built without holding them)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\n" * 2**20
    parts = [packer.compress(chunk) for _ in range(BOMB_INFLATED // len(chunk))]
    parts.append(packer.flush())
    return b"".join(parts)


def answer(body: bytes, *headers: str) -> Callable[[socket.socket, threading.Event], None]:
    head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + "".join(h + "\r\n" for h in headers)
    data = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def serve(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(data)

    return serve


def endless(connection: socket.socket, stop: threading.Event) -> None:
    """A body without a length that never ends (until the client hangs up)."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    line = b"machine_padding_bytes 1\n" * 4096
    while not stop.is_set():
        connection.sendall(line)


def churning() -> Callable[[socket.socket, threading.Event], None]:
    """New label values at every scrape: a new series each time, forever."""
    counter = itertools.count()

    def serve(connection: socket.socket, stop: threading.Event) -> None:
        n = next(counter)
        body = "".join(f'machine_churn{{request="{n}",i="{i}"}} 1\n' for i in range(20)).encode()
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    return serve


@pytest.fixture
def servers() -> Iterator[list[RawServer]]:
    started: list[RawServer] = []
    yield started
    for server in started:
        server.stop.set()
        server._listener.close()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_hostile_machines_are_cut_with_their_reason_and_the_healthy_one_keeps_storing(
    tmp_path: Path, store_url: str, exporter: FakeExporter, servers: list[RawServer]
) -> None:
    bomb = RawServer(answer(gzip_bomb(), "Content-Encoding: gzip"))
    huge = RawServer(endless)
    long_name = RawServer(answer(b"machine_" + b"x" * 292 + b" 1\n"))
    many = RawServer(answer(b"".join(b"machine_s%d 1\n" % i for i in range(600))))
    churn = RawServer(churning())
    servers += [bomb, huge, long_name, many, churn]
    inventory = write_inventory(
        tmp_path / "machines.yaml",
        [
            machine_yaml("healthy", exporter.url),
            machine_yaml("bomb", bomb.url),
            machine_yaml("huge", huge.url, body_size_limit="1MiB"),
            machine_yaml("long_name", long_name.url),
            machine_yaml("many", many.url, sample_limit=500),
            machine_yaml("churn", churn.url),
        ],
        defaults="defaults:\n  scrape_interval: 0.5s\n  scrape_timeout: 0.45s\n  body_size_limit: 4MiB\n",
    )
    store = Store(store_url, max_series_per_machine=100)
    store.migrate()
    state = FleetState()
    rss_before = peak_rss_mib()

    def healthy_count() -> int:
        return len(store.query_samples("healthy", "machine_temperature_celsius", 0, 2e9))

    async def scenario() -> dict[str, str]:
        async with running(inventory, store, state) as service:
            hostile = ("bomb", "huge", "long_name", "many")

            def all_down() -> bool:
                return all((v := state.get(m)) is not None and v.status is Status.DOWN for m in hostile)

            await async_wait_until(all_down, timeout=30, what="every hostile machine down")
            # The healthy machine goes on being stored while the others keep failing.
            stored = healthy_count()
            await async_wait_until(
                lambda: service.pending_samples == 0 and healthy_count() >= stored + 3,
                timeout=30,
                what="three more scrapes of the healthy machine in the database",
            )
            await async_wait_until(lambda: store.series_refused_total > 0, timeout=30, what="churn refused")
            views = {m: state.get(m) for m in (*hostile, "healthy", "churn")}
            return {m: f"{v.status.value}: {v.reason}" for m, v in views.items() if v is not None}

    reasons = run(scenario(), timeout=90)
    try:
        assert reasons["healthy"].startswith("up")
        assert reasons["bomb"] == "down: body larger than 4 MiB"
        assert reasons["huge"] == "down: body larger than 1 MiB"
        assert reasons["long_name"].startswith("down: metric_name_length_limit 200 exceeded by machine_xxx")
        assert reasons["many"] == "down: sample_limit 500 exceeded"
        assert reasons["churn"].startswith("up")  # it is bounded in the store instead:
        engine = sa.create_engine(store_url)
        try:
            with engine.connect() as connection:
                churn_series = connection.execute(
                    sa.text("SELECT count(*) FROM series WHERE machine_id = 'churn'")
                ).scalar_one()
        finally:
            engine.dispose()
        assert churn_series == 100
        # A 512 MiB bomb scraped again and again: the scraper never held it (nor a fraction of it).
        assert peak_rss_mib() - rss_before < 200
    finally:
        store.close()


def keep_alive(limit: int, connections: list[int]) -> Callable[[socket.socket, threading.Event], None]:
    """Answers `limit` requests on one connection, then closes it as an idle-timing-out server does."""
    body = b"machine_temperature_celsius 42\n"
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    def serve(connection: socket.socket, stop: threading.Event) -> None:
        connections.append(1)
        connection.sendall(data)  # RawServer read the first request already
        for _ in range(limit - 1):
            if not connection.recv(65536):
                return
            connection.sendall(data)

    return serve


def test_connections_are_kept_alive_and_a_closed_one_is_replaced(servers: list[RawServer]) -> None:
    connections: list[int] = []
    server = RawServer(keep_alive(3, connections))
    servers.append(server)
    target = Machine(id="m", name="m", url=server.url, scrape_interval_seconds=10, scrape_timeout_seconds=5)

    async def scrape_five_times() -> list[str]:
        transport = Http1Transport()
        try:
            return [(await fetch_metrics(transport, target))[0] for _ in range(5)]
        finally:
            await transport.aclose()

    texts = run(scrape_five_times())
    assert texts == ["machine_temperature_celsius 42\n"] * 5  # no scrape failed when the server hung up
    assert len(connections) == 2  # three scrapes on the first connection, the rest on a second


def redirecting(location: Callable[[], str]) -> Callable[[socket.socket, threading.Event], None]:
    """Every other request is redirected to `location()`; the others get a sample."""
    counter = itertools.count()
    body = b"machine_temperature_celsius 42\n"

    def serve(connection: socket.socket, stop: threading.Event) -> None:
        if next(counter) % 2 == 0:
            head = f"HTTP/1.1 302 Found\r\nLocation: {location()}\r\nContent-Length: 0\r\n\r\n"
            connection.sendall(head.encode())
        else:
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    return serve


def test_redirects_are_refused_unless_same_host_is_allowed(
    servers: list[RawServer], exporter: FakeExporter
) -> None:
    same = RawServer(redirecting(lambda: "/metrics?moved=1"))
    elsewhere = RawServer(redirecting(lambda: exporter.url))  # another port: another origin
    servers += [same, elsewhere]

    async def fetch(url: str, same_host: bool) -> str:
        transport = Http1Transport()
        target = Machine(id="m", name="m", url=url, scrape_interval_seconds=10, scrape_timeout_seconds=5)
        try:
            return (await fetch_metrics(transport, target, same_host_redirects=same_host))[0]
        except Exception as e:
            return f"error: {e}"
        finally:
            await transport.aclose()

    assert run(fetch(same.url, False)) == "error: HTTP 302 redirect refused (follow_redirects is off)"
    assert run(fetch(same.url, True)) == "machine_temperature_celsius 42\n"
    assert run(fetch(elsewhere.url, True)) == "error: HTTP 302 redirect to another host refused"
    assert exporter.requests == []
