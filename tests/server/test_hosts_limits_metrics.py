"""The Host allow-list (DNS rebinding), the live WebSocket's bounds, and the request metrics."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
import pytest
from auth_helpers import Accounts, bearer
from server_helpers import make_view, metric_samples
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from scraper.state import FleetState
from server.errors import SettingsError
from server.hosts import default_allowed_hosts, host_allowed
from server.settings import load_settings


def raw_get(base: str, path: str, host: str, upgrade: bool = False) -> bytes:
    """The status line and headers the server answers to a request with this exact Host header."""
    port = int(base.rsplit(":", 1)[1])
    extra = (
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        if upgrade
        else b"Connection: close\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode() + extra + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return head


def test_a_foreign_host_name_is_refused_on_http_and_websocket(
    state: FleetState, serve: Callable[..., str]
) -> None:
    state.put([make_view("press_01")])
    base = serve(state)
    assert raw_get(base, "/api/machines", "127.0.0.1").startswith(b"HTTP/1.1 200")
    assert raw_get(base, "/api/machines", "localhost:8000").startswith(b"HTTP/1.1 200")
    # A rebound name reaches the same socket, and gets nothing.
    assert raw_get(base, "/api/machines", "evil.example").startswith(b"HTTP/1.1 400")
    assert raw_get(base, "/healthz", "evil.example:8000").startswith(b"HTTP/1.1 400")
    assert raw_get(base, "/api/live", "evil.example", upgrade=True).startswith(b"HTTP/1.1 403")
    assert raw_get(base, "/api/live", "127.0.0.1", upgrade=True).startswith(b"HTTP/1.1 101")


def test_listed_host_names_replace_the_default(state: FleetState, serve: Callable[..., str]) -> None:
    base = serve(state, allowed_hosts=["plant.example", "*.factory.example"])
    assert raw_get(base, "/healthz", "plant.example").startswith(b"HTTP/1.1 200")
    assert raw_get(base, "/healthz", "map.factory.example:8000").startswith(b"HTTP/1.1 200")
    assert raw_get(base, "/healthz", "factory.example.evil").startswith(b"HTTP/1.1 400")
    assert raw_get(base, "/healthz", "127.0.0.1").startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        ("LOCALHOST", True),
        ("10.0.0.5", False),
        ("", False),
        ("127.0.0.1:notaport", False),
        ("user@127.0.0.1", False),
    ],
)
def test_default_hosts_are_loopback_names(header: str, allowed: bool) -> None:
    assert host_allowed(header, default_allowed_hosts("127.0.0.1")) is allowed


def test_the_listening_address_is_allowed_unless_it_is_every_interface() -> None:
    assert default_allowed_hosts("10.0.0.5") == ["localhost", "127.0.0.1", "::1", "10.0.0.5"]
    assert default_allowed_hosts("0.0.0.0") == ["localhost", "127.0.0.1", "::1"]
    assert host_allowed("anything", ["*"])


def test_allowed_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLWATCH_ALLOWED_HOSTS", "Plant.Example, [::1]")
    assert load_settings().effective_allowed_hosts() == ["plant.example", "::1"]
    monkeypatch.setenv("MILLWATCH_ALLOWED_HOSTS", "https://plant.example")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems[0].startswith("MILLWATCH_ALLOWED_HOSTS: ")
    assert "is not a host name" in caught.value.problems[0]


def test_tls_needs_both_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLWATCH_TLS_CERT_FILE", "/etc/millwatch/cert.pem")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == [
        "MILLWATCH_TLS_CERT_FILE and MILLWATCH_TLS_KEY_FILE (--tls-cert, --tls-key) go together: "
        "set both or neither"
    ]


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/api/live"


def close_of(ws: object) -> tuple[int, str]:
    """The close code and reason the server ends `ws` with (after any messages it sent)."""
    try:
        while True:
            ws.recv(timeout=10)  # type: ignore[attr-defined]
    except ConnectionClosed as e:
        assert e.rcvd is not None
        return e.rcvd.code, e.rcvd.reason


def test_live_clients_are_bounded_in_total_and_per_address(
    state: FleetState, serve: Callable[..., str]
) -> None:
    base = serve(state, live_max_clients=2, live_max_clients_per_address=1)
    with connect(ws_url(base)) as first:
        assert json.loads(first.recv(timeout=10))["type"] == "snapshot"
        with connect(ws_url(base)) as second:
            assert close_of(second) == (1013, "too many clients from your address")
    # The first client left: its place is free again.
    with connect(ws_url(base)) as again:
        assert json.loads(again.recv(timeout=10))["type"] == "snapshot"

    base = serve(state, live_max_clients=1)
    with connect(ws_url(base)) as first:
        assert json.loads(first.recv(timeout=10))["type"] == "snapshot"
        with connect(ws_url(base)) as second:
            assert close_of(second) == (1013, "too many live clients")
        text = httpx.get(f"{base}/metrics").text
    refused = metric_samples(text)
    assert refused[("millwatch_websocket_refused_total", (("reason", "too_many_clients"),))] == 1
    assert refused[("millwatch_websocket_clients", ())] == 1


def test_a_large_inbound_message_closes_the_client(state: FleetState, serve: Callable[..., str]) -> None:
    base = serve(state, live_max_message_bytes=256)
    with connect(ws_url(base)) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        ws.send("hello")  # small chatter is dropped, the connection lives on
        ws.send("x" * 1000)
        assert close_of(ws) == (1009, "message too big")


def test_requests_are_counted_by_route_template_and_status(
    state: FleetState, serve: Callable[..., str], accounts: Accounts
) -> None:
    accounts.store.save_views([make_view("press_01")])
    base = serve(state, store=accounts.store, anonymous_read=False)
    token = bearer(accounts.viewer_token)
    for machine in ("press_01", "press_01", "nope"):
        httpx.get(f"{base}/api/machines/{machine}", headers=token)
    httpx.get(f"{base}/api/machines")
    httpx.get(f"{base}/no/such/path", headers=token)
    samples = metric_samples(httpx.get(f"{base}/metrics", headers=token).text)

    def count(route: str, code: str) -> float:
        key = (
            "millwatch_http_request_duration_seconds_count",
            (("code", code), ("method", "GET"), ("route", route)),
        )
        return samples.get(key, 0)

    assert count("/api/machines/{machine_id}", "200") == 2
    assert count("/api/machines/{machine_id}", "404") == 1
    assert count("/api/machines", "401") == 1
    # An unknown path falls to the page's files: one series for all of them, whatever the path.
    assert count("web page", "404") + count("unmatched", "404") == 1
