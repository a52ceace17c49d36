"""The live hub: tells every WebSocket client what changed in the fleet.

Changes arrive from `FleetState` listeners in the writer's thread; the hub hands them to its event
loop with `call_soon_threadsafe` and gathers them for `batch_interval` seconds into one message

    {"type": "update", "machines": [views], "removed": [ids], "time": T}

which carries, per machine, the view that is current when the message is built (read back from the
state, so two writers racing cannot leave a client with an older view than the state holds).

Each client has its own bounded queue of messages. A client whose queue is full cannot keep up: it is
disconnected (close code 1013, "try again later") and gets a fresh snapshot when it reconnects. So a
slow client never delays the others and never makes the server hold an unbounded backlog.

Every `ping_interval` seconds each client also gets `{"type": "ping", "time": T}` through the same
queue, and the snapshot names that interval (`"ping_interval"`). A dead connection (server powered
off, network cut) closes no socket on the client's side; hearing nothing for several intervals is
how the page notices and reconnects. Pings change nothing else: no batch, no cached snapshot.

Which pages may connect at all is decided before `serve` (see server/origins.py; and who, see
routes/live.py); a refused one is closed with code 1008 (foreign page) or 4401 (no login) by
`refuse` before anything is sent. Connections are bounded: `max_clients` in total and
`max_clients_per_address` from one address (more are closed with 1013, try again later), and a
client that sends a message longer than `max_message_bytes` is closed with 1009 (message too big).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from scraper.state import FleetState, MachineView
from server.jsonout import dumps
from server.view_json import ViewJson

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
# Application close codes (4000-4999), after the HTTP statuses they stand for: the page shows its
# login form on 4401. A browser cannot read the HTTP status of a refused handshake, only close codes.
CLOSE_UNAUTHENTICATED = 4401


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[str]
    address: str
    # Set when the hub wants this client gone; the code and reason go into the close frame.
    kicked: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = CLOSE_GOING_AWAY
    close_reason: str = ""


class LiveHub:
    """Fan-out of fleet changes to WebSocket clients, in batches, with one bounded queue per client."""

    def __init__(
        self,
        state: FleetState,
        *,
        batch_interval: float = 0.2,
        queue_size: int = 64,
        max_clients: int = 1000,
        max_clients_per_address: int = 50,
        max_message_bytes: int = 4096,
        clock: Callable[[], float] = time.time,
        view_json: ViewJson | None = None,
    ) -> None:
        self._state = state
        self._view_json = view_json if view_json is not None else ViewJson()
        self._max_clients = max_clients
        self._max_per_address = max_clients_per_address
        self._max_message_bytes = max_message_bytes
        self._per_address: Counter[str] = Counter()
        # A prometheus-client Counter with a `reason` label (server.http_metrics), when wired.
        self.refusals: Any = None
        self._batch_interval = batch_interval
        self._queue_size = queue_size
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._touched: set[str] = set()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._clients: set[_Client] = set()
        # The snapshot's machines as JSON text, reused until the next change reaches the loop: after
        # a restart every page reconnects at once, and a large fleet is costly to encode on the loop.
        # Encoded before a change that has not reached the loop yet is fine: that change is touched,
        # so its flush sends the current view to every client registered before it.
        self._snapshot_machines: str | None = None
        self.slow_disconnects_total = 0
        self.updates_total = 0

    @property
    def clients(self) -> int:
        """Number of connected WebSocket clients."""
        return len(self._clients)

    async def start(self) -> None:
        """Bind to the running event loop and start listening to the fleet state."""
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self._state.subscribe(self._on_state_change)

    async def stop(self) -> None:
        """Stop listening and disconnect every client (close code 1001, going away)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for client in list(self._clients):
            self._kick(client, CLOSE_GOING_AWAY, "server shutting down")

    async def serve(self, websocket: WebSocket, *, ping_interval: float) -> None:
        """Run one client: accept, send the snapshot, then the updates and a ping every `ping_interval`
        seconds; return once it is gone.

        The snapshot is built and the client registered in one step of the event loop, so every change
        after the snapshot reaches the client as an update and none is lost in between.
        """
        if self._loop is None:
            raise RuntimeError("LiveHub.serve() called before start()")
        address = websocket.client.host if websocket.client is not None else "unknown"
        if len(self._clients) >= self._max_clients:
            await self._refuse_busy(websocket, "too_many_clients", "too many live clients")
            return
        if self._per_address[address] >= self._max_per_address:
            await self._refuse_busy(websocket, "too_many_from_address", "too many clients from your address")
            return
        await websocket.accept()
        client = _Client(queue=asyncio.Queue(maxsize=self._queue_size), address=address)
        client.queue.put_nowait(self._snapshot_message(ping_interval))
        self._clients.add(client)
        self._per_address[address] += 1
        log.info("live client connected from %s (%d connected)", _peer(websocket), len(self._clients))
        tasks = [
            asyncio.create_task(self._send_loop(websocket, client)),
            asyncio.create_task(self._receive_until_disconnect(websocket, client)),
            asyncio.create_task(client.kicked.wait()),
            asyncio.create_task(self._ping_loop(client, ping_interval)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._clients.discard(client)
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if client.kicked.is_set():
            # A slow client's socket may be full: never wait on it for long.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(client.close_code, client.close_reason), timeout=1.0)
        log.info("live client %s gone (%d connected)", _peer(websocket), len(self._clients))

    async def _refuse_busy(self, websocket: WebSocket, reason: str, text: str) -> None:
        if self.refusals is not None:
            self.refusals.labels(reason).inc()
        log.warning("live connection from %s refused: %s", _peer(websocket), text)
        await websocket.accept()
        await websocket.close(CLOSE_TRY_AGAIN_LATER, text)

    async def _receive_until_disconnect(self, websocket: WebSocket, client: _Client) -> None:
        # Clients have nothing to say; reading is how a closed connection is noticed. Whatever they
        # send is dropped, and a message beyond the bound ends the connection.
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text") or message.get("bytes") or b""
            size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
            if size > self._max_message_bytes:
                log.warning("live client %s sent %d bytes: disconnected", _peer(websocket), size)
                self._kick(client, CLOSE_MESSAGE_TOO_BIG, "message too big")
                return

    def _snapshot_message(self, ping_interval: float) -> str:
        if self._snapshot_machines is None:
            self._snapshot_machines = self._view_json.array(self._state.snapshot())
        # The time is now: the machines are the current state, however long ago they were encoded.
        return (
            f'{{"type":"snapshot","machines":{self._snapshot_machines},"time":{dumps(self._clock())},'
            f'"ping_interval":{dumps(ping_interval)}}}'
        )

    def _on_state_change(self, changed: list[MachineView], removed: list[str]) -> None:
        # Runs in the writer's thread: only hand the ids over to the loop.
        ids = [v.id for v in changed] + list(removed)
        loop = self._loop
        if loop is None or not ids:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            loop.call_soon_threadsafe(self._touch, ids)

    def _touch(self, ids: list[str]) -> None:
        self._snapshot_machines = None
        self._touched.update(ids)
        if self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_later(self._batch_interval, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        touched, self._touched = self._touched, set()
        if not self._clients:
            return  # nobody to tell; a client that comes gets a snapshot
        views = []
        removed = []
        for machine_id in sorted(touched):
            view = self._state.get(machine_id)
            if view is None:
                removed.append(machine_id)
            else:
                views.append(view)
        message = (
            f'{{"type":"update","machines":{self._view_json.array(views)},"removed":{dumps(removed)},'
            f'"time":{dumps(self._clock())}}}'
        )
        self.updates_total += 1
        for client in list(self._clients):
            self._enqueue(client, message)

    def _enqueue(self, client: _Client, message: str) -> None:
        try:
            client.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.slow_disconnects_total += 1
            log.warning("live client too slow (%d messages queued): disconnected", self._queue_size)
            self._kick(client, CLOSE_TRY_AGAIN_LATER, "too slow: reconnect for a fresh snapshot")

    async def _ping_loop(self, client: _Client, interval: float) -> None:
        # Runs until serve() cancels it. A kicked client is on its way out: no ping, no second kick.
        while True:
            await asyncio.sleep(interval)
            if client in self._clients:
                self._enqueue(client, f'{{"type":"ping","time":{dumps(self._clock())}}}')

    def _kick(self, client: _Client, code: int, reason: str) -> None:
        self._clients.discard(client)
        client.close_code = code
        client.close_reason = reason
        client.kicked.set()

    async def _send_loop(self, websocket: WebSocket, client: _Client) -> None:
        try:
            while True:
                text = await client.queue.get()
                await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away while we were sending


async def refuse(websocket: WebSocket, origin: str) -> None:
    """Close a handshake from a page of a foreign `origin` with code 1008 (policy violation), having
    sent nothing; the page's script learns nothing about the fleet."""
    log.warning(
        "live connection from %s refused: origin %r is neither this server nor in MILLWATCH_ALLOWED_ORIGINS",
        _peer(websocket),
        origin[:100],
    )
    # Accepted first so that the client sees the close code; a rejected handshake is only an HTTP 403.
    await websocket.accept()
    await websocket.close(CLOSE_POLICY_VIOLATION, "origin not allowed")


async def refuse_unauthenticated(websocket: WebSocket, reason: str) -> None:
    """Close a handshake without (valid) credentials with code 4401, having sent nothing."""
    log.info("live connection from %s refused: %s", _peer(websocket), reason)
    await websocket.accept()
    await websocket.close(CLOSE_UNAUTHENTICATED, reason)


def _peer(websocket: WebSocket) -> str:
    client = websocket.client
    return "unknown" if client is None else f"{client.host}:{client.port}"
