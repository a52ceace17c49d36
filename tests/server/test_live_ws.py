from __future__ import annotations

import json
import socket
import threading
from typing import Any

import httpx
import pytest
from server_helpers import make_view, metric_samples, read_ws_frames, wait_until
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from scraper.state import FleetState, Status
from server.errors import SettingsError
from server.origins import normalize_origin, origin_allowed
from server.settings import load_settings


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/api/live"


def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=timeout))
    assert isinstance(message, dict)
    return message


def recv_update(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    message = recv_json(ws, timeout)
    assert message["type"] == "update", message
    return message


def test_snapshot_on_connect(state: FleetState, serve) -> None:
    views = [make_view("b_machine"), make_view("a_machine", status=Status.DOWN, reason="connection refused")]
    state.put(views)
    base = serve(state)

    with connect(ws_url(base)) as ws:
        snapshot = recv_json(ws)

    assert snapshot["type"] == "snapshot"
    assert snapshot["machines"] == [views[1].to_dict(), views[0].to_dict()]
    assert isinstance(snapshot["time"], float)
    assert snapshot["ping_interval"] == 10.0  # the default: the page derives its silence limit from it


def test_update_carries_only_the_changed_machine(state: FleetState, serve) -> None:
    a, b = make_view("a"), make_view("b")
    state.put([a, b])
    base = serve(state)

    with connect(ws_url(base)) as ws:
        recv_json(ws)
        hot = b.with_changes(status=Status.ALARM, reason="machine_temperature_celsius 97 ≥ alarm 95")
        state.put([a, hot])  # a is unchanged: not sent again
        update = recv_update(ws)

    assert update["machines"] == [hot.to_dict()]
    assert update["removed"] == []
    assert isinstance(update["time"], float)


def test_rapid_changes_are_coalesced_into_the_latest_view(state: FleetState, serve) -> None:
    state.put([make_view("a")])
    base = serve(state, live_batch_interval=0.3)

    with connect(ws_url(base)) as ws:
        recv_json(ws)
        for temperature in range(70, 80):
            state.put([make_view("a", readings={"machine_temperature_celsius": float(temperature)})])
        update = recv_update(ws)

    assert len(update["machines"]) == 1
    assert update["machines"][0]["readings"] == {"machine_temperature_celsius": 79.0}


def test_changes_from_another_thread_reach_the_client(state: FleetState, serve) -> None:
    base = serve(state)
    with connect(ws_url(base)) as ws:
        assert recv_json(ws)["machines"] == []
        writer = threading.Thread(target=state.put, args=([make_view("from_thread")],))
        writer.start()
        writer.join()
        update = recv_update(ws)
    assert [m["id"] for m in update["machines"]] == ["from_thread"]


def test_removal_after_replace_all(state: FleetState, serve) -> None:
    a, b = make_view("a"), make_view("b")
    state.put([a, b])
    base = serve(state)

    with connect(ws_url(base)) as ws:
        recv_json(ws)
        c = make_view("c")
        state.replace_all([a, c])
        update = recv_update(ws)

    assert update["removed"] == ["b"]
    assert update["machines"] == [c.to_dict()]


def test_two_clients_both_get_the_update(state: FleetState, serve) -> None:
    state.put([make_view("a")])
    base = serve(state)

    with connect(ws_url(base)) as first, connect(ws_url(base)) as second:
        recv_json(first)
        recv_json(second)
        wait_until(lambda: httpx.get(f"{base}/healthz").json()["websocket_clients"] == 2, what="2 clients")
        changed = make_view("a", status=Status.SENSOR_FAULT, reason="serial sensor not reporting")
        state.put([changed])
        got = [recv_update(first), recv_update(second)]

    assert got[0]["machines"] == got[1]["machines"] == [changed.to_dict()]


def test_a_client_that_connects_later_gets_the_current_state(state: FleetState, serve) -> None:
    state.put([make_view("a")])
    base = serve(state)
    changed = make_view("a", status=Status.WARN, reason="machine_temperature_celsius 81 ≥ warn 80")
    state.put([changed])

    with connect(ws_url(base)) as ws:
        assert recv_json(ws)["machines"] == [changed.to_dict()]


def test_a_client_after_a_change_gets_a_snapshot_with_the_change(state: FleetState, serve) -> None:
    state.put([make_view("a"), make_view("b")])
    base = serve(state)
    with connect(ws_url(base)) as first:
        recv_json(first)  # an earlier snapshot, before the change
        changed = make_view("b", status=Status.DOWN, reason="timeout after 5s")
        state.put([changed])
        recv_update(first)
        with connect(ws_url(base)) as second:
            snapshot = recv_json(second)
    assert snapshot["type"] == "snapshot"
    assert snapshot["machines"][1] == changed.to_dict()


def test_a_client_that_leaves_is_forgotten(state: FleetState, serve) -> None:
    base = serve(state)
    with connect(ws_url(base)) as ws:
        recv_json(ws)
        wait_until(lambda: httpx.get(f"{base}/healthz").json()["websocket_clients"] == 1, what="1 client")
    wait_until(lambda: httpx.get(f"{base}/healthz").json()["websocket_clients"] == 0, what="0 clients")
    state.put([make_view("a")])  # nobody to send to: must not fail
    assert httpx.get(f"{base}/api/machines").json()["machines"][0]["id"] == "a"


def _big_fleet(round_no: int, size: int = 200) -> list:
    reason = f"round {round_no} " + "x" * 1000
    return [make_view(f"m{i:04d}", reason=reason) for i in range(size)]


def _open_stalled_client(base: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up quickly
    sock.connect((host, int(port)))
    sock.sendall(
        b"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_stalled_client_is_disconnected_without_holding_up_the_others(state: FleetState, serve) -> None:
    state.put(_big_fleet(0))
    base = serve(state, live_queue_size=2)
    stalled = _open_stalled_client(base)
    try:
        with connect(ws_url(base), max_size=None) as fast:
            recv_json(fast)
            slow_disconnects = 0
            round_no = 0
            while slow_disconnects == 0:
                round_no += 1
                assert round_no < 400, "the stalled client was never disconnected"
                state.put(_big_fleet(round_no))
                # The fast client keeps up with every round, whatever the stalled one does.
                update = recv_update(fast)
                assert update["machines"][0]["reason"].startswith(f"round {round_no} ")
                metrics = metric_samples(httpx.get(f"{base}/metrics").text)
                slow_disconnects = int(metrics[("millwatch_websocket_slow_disconnects_total", ())])
            assert httpx.get(f"{base}/healthz").json()["websocket_clients"] == 1
            # Still served after the other one was dropped.
            state.put([make_view("m0000", reason="after")])
            assert recv_update(fast)["machines"][0]["reason"] == "after"

        # The stalled client, once it reads, finds its connection closed: it reconnects for a snapshot.
        # (A close frame cannot always be queued behind a full socket; then the connection just ends.)
        close_codes: list[int] = []

        def on_frame(opcode: int, payload: bytes) -> bool:
            if opcode == 0x8:
                close_codes.append(int.from_bytes(payload[:2], "big"))
                return True
            return False

        try:
            read_ws_frames(stalled, on_frame, timeout=20)
        except EOFError:
            close_codes.append(1006)
        assert close_codes in ([1013], [1006])
    finally:
        stalled.close()


# --- pings: how a page notices a connection that died without closing --------------------------------


def test_pings_arrive_while_nothing_changes(state: FleetState, serve) -> None:
    state.put([make_view("a")])
    base = serve(state, live_ping_interval=0.1)

    with connect(ws_url(base)) as ws:
        snapshot = recv_json(ws)
        pings = [recv_json(ws, timeout=5), recv_json(ws, timeout=5)]

    assert snapshot["ping_interval"] == 0.1
    assert [p["type"] for p in pings] == ["ping", "ping"]
    assert all(set(p) == {"type", "time"} and isinstance(p["time"], float) for p in pings)
    assert pings[0]["time"] < pings[1]["time"]


def test_pings_do_not_disturb_updates(state: FleetState, serve) -> None:
    state.put([make_view("a")])
    # Pings much more often than batches: a ping must neither flush nor postpone the batch.
    base = serve(state, live_batch_interval=0.3, live_ping_interval=0.02)

    with connect(ws_url(base)) as ws:
        recv_json(ws)
        for temperature in range(70, 80):
            state.put([make_view("a", readings={"machine_temperature_celsius": float(temperature)})])
        pings_before = 0
        while (message := recv_json(ws))["type"] == "ping":
            pings_before += 1
        after = [recv_json(ws)["type"] for _ in range(3)]

    assert message["type"] == "update"
    assert message["machines"][0]["readings"] == {"machine_temperature_celsius": 79.0}
    assert pings_before >= 1
    assert after == ["ping", "ping", "ping"]  # the ten changes made one update, and pings go on


# --- Origin: pages of other sites must not read the fleet --------------------------------------------


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def assert_refused(base: str, origin: str) -> None:
    """The handshake completes, then the server closes with 1008 without having sent anything."""
    with connect(ws_url(base), origin=Origin(origin)) as ws, pytest.raises(ConnectionClosedError) as caught:
        ws.recv(timeout=10)  # a snapshot sent before the close would be returned here
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (1008, "origin not allowed")


def test_the_servers_own_page_is_served(state: FleetState, serve) -> None:
    state.put([make_view("a")])
    base = serve(state)
    with connect(ws_url(base), origin=Origin(f"http://127.0.0.1:{_port(base)}")) as ws:
        assert recv_json(ws)["type"] == "snapshot"


def test_a_page_of_another_site_is_refused(state: FleetState, serve) -> None:
    state.put([make_view("a")])
    base = serve(state)

    assert_refused(base, "http://evil.example")
    assert_refused(base, f"http://127.0.0.1:{_port(base) + 1}")  # same host, another port: another site
    assert_refused(base, f"https://127.0.0.1:{_port(base)}x")  # malformed
    assert_refused(base, "null")  # a sandboxed frame or a file:// page

    assert httpx.get(f"{base}/healthz").json()["websocket_clients"] == 0
    with connect(ws_url(base)) as ws:  # no Origin: not a browser page, still served
        assert recv_json(ws)["type"] == "snapshot"


def test_a_listed_origin_is_served(state: FleetState, serve) -> None:
    state.put([make_view("a")])
    base = serve(state, allowed_origins=["https://Dashboard.Plant.example:443/"])

    with connect(ws_url(base), origin=Origin("https://dashboard.plant.example")) as ws:
        assert recv_json(ws)["type"] == "snapshot"
    assert_refused(base, "http://dashboard.plant.example")  # another scheme is another origin


def test_allowed_origins_from_the_environment(
    state: FleetState, serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLWATCH_ALLOWED_ORIGINS", " https://a.example , http://plant.example:8080")
    assert load_settings().allowed_origins == ["https://a.example", "http://plant.example:8080"]
    monkeypatch.setenv("MILLWATCH_ALLOWED_ORIGINS", '["http://plant.example:8080"]')
    assert load_settings().allowed_origins == ["http://plant.example:8080"]

    base = serve(state)  # the app's settings read the same environment
    with connect(ws_url(base), origin=Origin("http://plant.example:8080")) as ws:
        assert recv_json(ws)["type"] == "snapshot"
    assert_refused(base, "http://plant.example:8081")


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("plant.example", "'plant.example' is not an origin"),
        ("https://plant.example/map", "is not an origin"),
        ("ws://plant.example", "is not an origin"),
        ("https://user@plant.example", "is not an origin"),
        ("https://plant.example:99999", "is not an origin"),
        ("[https://a.example", "not a JSON list of origins"),
    ],
)
def test_a_bad_allowed_origin_is_named_at_start(
    value: str, complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLWATCH_ALLOWED_ORIGINS", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith("MILLWATCH_ALLOWED_ORIGINS: ")
    assert complaint in problem


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "127.0.0.1:8000", True),
        (None, None, True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://Millwatch.Plant", "millwatch.plant", True),
        ("https://millwatch.plant", "millwatch.plant", True),
        ("https://millwatch.plant", "millwatch.plant:443", True),
        ("http://millwatch.plant:80", "millwatch.plant", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("http://millwatch.plant", "millwatch.plant:443", False),
        ("https://millwatch.plant", "millwatch.plant:8443", False),
        ("http://evil.example", "millwatch.plant", False),
        ("http://millwatch.plant.evil.example", "millwatch.plant", False),
        ("http://millwatch.plant", None, False),
        ("http://millwatch.plant", "millwatch.plant:port", False),
        ("http://millwatch.plant:port", "millwatch.plant", False),
        ("null", "millwatch.plant", False),
        ("", "millwatch.plant", False),
    ],
)
def test_same_origin_rule(origin: str | None, host: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, host, []) is allowed


def test_listed_origins_match_after_normalizing() -> None:
    listed = [normalize_origin("HTTPS://Grafana.Plant:443/"), normalize_origin("http://[::1]:3000")]
    assert listed == ["https://grafana.plant", "http://[::1]:3000"]
    assert origin_allowed("https://grafana.plant", "millwatch.plant", listed)
    assert origin_allowed("http://[::1]:3000", "millwatch.plant", listed)
    assert not origin_allowed("http://grafana.plant", "millwatch.plant", listed)
