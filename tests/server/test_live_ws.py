from __future__ import annotations

import json
import socket
import threading
from typing import Any

import httpx
from server_helpers import make_view, metric_samples, read_ws_frames, wait_until
from websockets.sync.client import ClientConnection, connect

from scraper.state import FleetState, Status


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
        b"GET /api/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
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
