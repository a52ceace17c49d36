"""A small HTTP/1.1 connection manager with hard bounds, on the standard library alone.

One thread (the "reactor") accepts connections, runs their TLS handshakes and reads request heads,
all non-blocking through `selectors`; a request whose head is complete is handed to a worker
thread, which answers it and gives the connection back for keep-alive. What a client can cost is
bounded whatever it does:

- at most `max_connections` connections are open. When a new one arrives and all are taken, the
  connection that has waited longest without a request in progress (silent, slow, or idle
  between keep-alive requests) is closed to make room; when every one is in the middle of a
  request, the newcomer is answered `503` with `Retry-After` at once. Nothing queues.
- a request head (and the TLS handshake before it) must arrive in full within
  `header_read_timeout` of the connection's first byte or acceptance: a total deadline, not
  per read, so a client trickling one byte a second is cut off.
- a connection idle between requests is closed after `idle_timeout`.
- a head is at most `max_head_bytes`; longer is `431`.
- worker threads exist while requests are answered, at most `max_connections` per server; two
  of them stay, blocked, for the next requests (up to 5 minutes), so a scrape starts no thread.

The worker calls `handle(sock, client_address, head)`, which writes the whole answer on the
socket (blocking, with `write_timeout`) and returns whether the connection may stay open.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `ssl` is imported only when TLS is configured: 1.1 MB of RSS otherwise
    import ssl

log = logging.getLogger(__name__)

Handler = Callable[[socket.socket, Any, bytes], bool]
AnySocket = socket.socket  # or an ssl.SSLSocket (a subclass) when TLS is configured

_HANDSHAKE, _HEAD, _IDLE, _BUSY, _CLOSING = "handshake", "head", "idle", "busy", "closing"
_RECV_BYTES = 65536
_MAX_ACCEPTS_PER_ROUND = 256
_CLOSING_SECONDS = 1.0  # how long an answered-and-refused client gets to read its 503 before the close
_LISTEN_BACKLOG = 128
MAX_IDLE_WORKERS = 2
IDLE_WORKER_SECONDS = 300.0


@dataclass(frozen=True)
class Limits:
    """The bounds of one server (see the module docstring)."""

    max_connections: int = 16
    header_read_timeout: float = 10.0
    idle_timeout: float = 120.0
    max_head_bytes: int = 16384
    write_timeout: float = 30.0
    retry_after_seconds: int = 1


@dataclass
class ServerCounters:
    """What the bounds turned away since the start, for the status page and the logs."""

    accepted: int = 0
    rejected_busy: int = 0
    evicted_waiting: int = 0
    head_timeouts: int = 0
    heads_too_large: int = 0
    handshake_failures: int = 0


class _Connection:
    __slots__ = ("sock", "address", "state", "buffer", "deadline", "since", "want_write")

    def __init__(self, sock: AnySocket, address: Any, state: str, deadline: float, now: float) -> None:
        self.sock = sock
        self.address = address
        self.state = state
        self.buffer = bytearray()
        self.deadline = deadline
        self.since = now
        self.want_write = False


_Job = tuple[_Connection, bytes]


def _response(status: str, extra: str = "") -> bytes:
    body = status.split(" ", 1)[1].lower().encode("ascii") + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii") + body


class BoundedServer:
    """Listens on `host:port` (bound at construction; port 0 picks one) and serves with `handle`.

    `start()` runs the reactor thread; `stop()` closes the listening socket and every connection,
    including those kept alive by clients and those in the middle of a request.
    Raises OSError from the constructor when the address cannot be bound.
    """

    def __init__(
        self,
        host: str,
        port: int,
        handle: Handler,
        limits: Limits,
        tls: ssl.SSLContext | None = None,
        *,
        name: str = "http",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.counters = ServerCounters()
        self._handle = handle
        self._tls = tls
        # A non-blocking read or write that must be retried later; with TLS also the handshake's.
        self._again: tuple[type[BaseException], ...] = (BlockingIOError, InterruptedError)
        if tls is not None:
            import ssl

            self._again += (ssl.SSLWantReadError, ssl.SSLWantWriteError)
        self._name = name
        self._clock = clock
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # `[::]` takes IPv4 too where the system can, as a plain bind on Linux always did.
        dualstack = host == "::" and socket.has_dualstack_ipv6()
        self._listener = socket.create_server(
            (host, port), family=family, backlog=_LISTEN_BACKLOG, dualstack_ipv6=dualstack
        )
        self._listener.setblocking(False)
        self.server_address: tuple[Any, ...] = self._listener.getsockname()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._lock = threading.Lock()
        self._returned: list[tuple[_Connection, bool]] = []
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle_workers = 0  # workers waiting on _jobs, under _lock
        self._stopping = False
        self._open: dict[int, _Connection] = {}  # by id(); waiting and busy ones, owned by the reactor
        self._closing: dict[int, _Connection] = {}
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def open_connections(self) -> int:
        """Connections open now, waiting or in the middle of a request (read from any thread)."""
        return len(self._open)

    def start(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=f"{self._name} :{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            for _ in range(self._idle_workers):
                self._jobs.put(None)  # idle workers end now
            self._idle_workers = 0
        self._wake()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        else:
            self._close_everything()

    # -- the reactor -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._stopping:
                        break
                events = self._selector.select(self._next_timeout())
                for key, mask in events:
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    elif isinstance(key.data, _Connection):
                        self._guarded_event(key.data, mask)
                self._take_returned()
                self._expire()
        except Exception:  # a bug here must not go unnoticed, yet the process must live on
            log.exception("the HTTP server on port %s stopped", self.port)
        finally:
            self._close_everything()

    def _next_timeout(self) -> float:
        now = self._clock()
        deadlines = [c.deadline for c in self._open.values() if c.state != _BUSY]
        deadlines += [c.deadline for c in self._closing.values()]
        if not deadlines:
            return 1.0
        return max(0.0, min(min(deadlines) - now, 1.0))

    def _accept(self) -> None:
        for _ in range(_MAX_ACCEPTS_PER_ROUND):
            try:
                raw, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: try again at the next event
                log.warning("HTTP server on port %s cannot accept: %s", self.port, exc)
                return
            self.counters.accepted += 1
            try:
                self._admit(raw, address)
            except Exception:  # one connection's trouble (reset at once, say) is not the server's
                log.debug("connection from %s dropped at accept", address, exc_info=True)
                _close_quietly(raw)

    def _admit(self, raw: socket.socket, address: Any) -> None:
        raw.setblocking(False)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        sock: AnySocket = raw
        if self._tls is not None:
            sock = self._tls.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        now = self._clock()
        deadline = now + self.limits.header_read_timeout
        if len(self._open) >= self.limits.max_connections and not self._evict_one():
            self.counters.rejected_busy += 1
            self._refuse(sock, address, now)
            return
        connection = _Connection(sock, address, _HANDSHAKE if self._tls else _HEAD, deadline, now)
        self._selector.register(sock, selectors.EVENT_READ, connection)
        self._open[id(connection)] = connection
        if self._tls is not None:
            self._handshake(connection)
        else:
            # A client sends its request right after connecting: it is often here already, and
            # reading it now saves a turn of the selector (a wake-up that a loaded machine may
            # serve late). Nothing there yet: the selector reports it when it comes.
            self._read(connection)

    def _evict_one(self) -> bool:
        waiting = [c for c in self._open.values() if c.state != _BUSY]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.since)
        self.counters.evicted_waiting += 1
        log.debug("closing waiting connection from %s to make room", oldest.address)
        self._close(oldest)
        return True

    def _refuse(self, sock: AnySocket, address: Any, now: float) -> None:
        """Answer 503 at once; the TLS handshake (if any) runs first, in the closing state."""
        if len(self._closing) >= 4 * self.limits.max_connections:
            _close_quietly(sock)
            return
        connection = _Connection(sock, address, _CLOSING, now + _CLOSING_SECONDS, now)
        connection.buffer += _response(
            "503 Service Unavailable", f"Retry-After: {self.limits.retry_after_seconds}\r\n"
        )
        self._closing[id(connection)] = connection
        self._selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)

    def _guarded_event(self, connection: _Connection, mask: int) -> None:
        """One connection's event; whatever goes wrong with it costs that connection, never the server."""
        try:
            self._on_event(connection, mask)
        except Exception:
            log.exception("HTTP connection from %s failed; closing it", connection.address)
            if connection.state == _BUSY:
                return  # its worker owns it now
            self._close(connection)

    def _on_event(self, connection: _Connection, mask: int) -> None:
        if connection.state == _CLOSING:
            self._on_closing(connection, mask)
        elif connection.state == _HANDSHAKE:
            self._handshake(connection)
        elif connection.state in (_HEAD, _IDLE):
            self._read(connection)

    def _handshake(self, connection: _Connection) -> None:
        import ssl  # loaded already: only a server with TLS has connections in the handshake state

        sock = connection.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(connection, write=False)
            return
        except ssl.SSLWantWriteError:
            self._want(connection, write=True)
            return
        except OSError as exc:  # ssl.SSLError included
            self.counters.handshake_failures += 1
            log.debug("TLS handshake with %s failed: %s", connection.address, exc)
            self._close(connection)
            return
        connection.state = _HEAD
        self._want(connection, write=False)
        self._read(connection)  # the request may have come with the handshake's last flight

    def _want(self, connection: _Connection, *, write: bool) -> None:
        if connection.want_write != write:
            events = selectors.EVENT_WRITE if write else selectors.EVENT_READ
            self._selector.modify(connection.sock, events, connection)
            connection.want_write = write

    def _read(self, connection: _Connection) -> None:
        sock = connection.sock
        limit = self.limits.max_head_bytes
        while True:
            try:
                data = sock.recv(_RECV_BYTES)
            except self._again:
                break
            except OSError:  # ssl.SSLError included
                self._close(connection)
                return
            if not data:
                self._close(connection)  # the client is done
                return
            if connection.state == _IDLE:
                connection.state = _HEAD
                connection.deadline = self._clock() + self.limits.header_read_timeout
            connection.buffer += data
            if self._tls is not None and sock.pending():  # type: ignore[attr-defined]
                continue  # decrypted bytes the selector cannot see
            if len(connection.buffer) > limit or _head_end(connection.buffer) >= 0:
                break
        self._maybe_dispatch(connection)

    def _maybe_dispatch(self, connection: _Connection) -> None:
        end = _head_end(connection.buffer)
        limit = self.limits.max_head_bytes
        if end < 0 or end > limit:
            if len(connection.buffer) > limit:
                self.counters.heads_too_large += 1
                self._answer_and_close(connection, _response("431 Request Header Fields Too Large"))
            return
        head = bytes(connection.buffer[:end])
        del connection.buffer[:end]
        connection.state = _BUSY
        self._selector.unregister(connection.sock)
        connection.want_write = False
        try:
            connection.sock.setblocking(True)
            connection.sock.settimeout(self.limits.write_timeout)
        except OSError:
            self._forget(connection)
            _close_quietly(connection.sock)
            return
        with self._lock:
            if self._idle_workers > 0:  # a worker that answered before takes it: no thread to start
                self._idle_workers -= 1
                self._jobs.put((connection, head))
                return
        worker = threading.Thread(
            target=self._work,
            args=((connection, head),),
            name=f"{self._name} :{self.port} request",
            daemon=True,
        )
        try:
            worker.start()
        except RuntimeError as exc:  # the OS refused another thread: this request is lost, not the server
            log.warning("cannot start a thread for the request from %s: %s", connection.address, exc)
            self._forget(connection)
            _close_quietly(connection.sock)

    def _work(self, job: _Job | None) -> None:
        """A worker: answers `job`, then waits as an idle worker for the next one (or ends).

        Starting a thread per request made the reactor wait for the new thread to run and then
        compete with it for the GIL in the middle of its answer; on a loaded machine each such
        hand-over can wait for an OS time slice. At most MAX_IDLE_WORKERS wait, each for at most
        IDLE_WORKER_SECONDS (blocked, no wake-ups), so workers still never outnumber the
        connections being answered plus those few.
        """
        while job is not None:
            self._serve(*job)
            with self._lock:
                if self._stopping or self._idle_workers >= MAX_IDLE_WORKERS:
                    return
                self._idle_workers += 1
            job = self._next_job()

    def _next_job(self) -> _Job | None:
        while True:
            try:
                return self._jobs.get(timeout=IDLE_WORKER_SECONDS)
            except queue.Empty:
                with self._lock:
                    # Jobs are put under this lock: an empty queue means none is meant for us.
                    if self._jobs.empty():
                        self._idle_workers -= 1
                        return None

    def _serve(self, connection: _Connection, head: bytes) -> None:
        keep_alive = False
        try:
            keep_alive = self._handle(connection.sock, connection.address, head)
        except Exception:
            log.debug("request from %s failed", connection.address, exc_info=True)
        with self._lock:
            stopping = self._stopping
            if not stopping:
                self._returned.append((connection, keep_alive))
        if stopping:
            _close_quietly(connection.sock)
        else:
            self._wake()

    def _take_returned(self) -> None:
        with self._lock:
            returned, self._returned = self._returned, []
        now = self._clock()
        for connection, keep_alive in returned:
            if not keep_alive:
                self._forget(connection)
                _close_quietly(connection.sock)
                continue
            try:
                connection.sock.setblocking(False)
                self._selector.register(connection.sock, selectors.EVENT_READ, connection)
            except (OSError, ValueError):
                self._forget(connection)
                _close_quietly(connection.sock)
                continue
            connection.since = now
            if connection.buffer:  # a pipelined request already read
                connection.state = _HEAD
                connection.deadline = now + self.limits.header_read_timeout
                self._maybe_dispatch(connection)
            else:
                connection.state = _IDLE
                connection.deadline = now + self.limits.idle_timeout

    def _expire(self) -> None:
        now = self._clock()
        for connection in [c for c in self._open.values() if c.state != _BUSY and c.deadline <= now]:
            if connection.state == _IDLE:
                self._close(connection)
            else:
                self.counters.head_timeouts += 1
                log.debug("request head from %s not complete in time", connection.address)
                if connection.state == _HANDSHAKE:
                    self._close(connection)
                else:
                    self._answer_and_close(connection, _response("408 Request Timeout"))
        for connection in [c for c in self._closing.values() if c.deadline <= now]:
            self._close(connection)

    # -- closing -----------------------------------------------------------------------------------

    def _answer_and_close(self, connection: _Connection, response: bytes) -> None:
        """Send a short answer, then let the client read it before the socket goes away."""
        self._forget(connection)
        try:
            self._selector.unregister(connection.sock)
        except (KeyError, ValueError):
            pass
        now = self._clock()
        connection.state = _CLOSING
        connection.deadline = now + _CLOSING_SECONDS
        connection.buffer = bytearray(response)
        self._closing[id(connection)] = connection
        self._selector.register(connection.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)

    def _on_closing(self, connection: _Connection, mask: int) -> None:
        sock = connection.sock
        if self._tls is not None and connection.buffer and not _handshake_done(sock):
            import ssl  # loaded with the TLS context

            try:
                sock.do_handshake()  # type: ignore[attr-defined]
            except ssl.SSLWantReadError:
                self._selector.modify(sock, selectors.EVENT_READ, connection)
                return
            except ssl.SSLWantWriteError:
                self._selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)
                return
            except OSError:  # ssl.SSLError included
                self._close(connection)
                return
        if connection.buffer:
            try:
                sent = sock.send(connection.buffer)
            except self._again:
                return
            except OSError:  # ssl.SSLError included
                self._close(connection)
                return
            del connection.buffer[:sent]
            if connection.buffer:
                self._selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)
                return
            # Closing with unread input would reset the connection and could destroy the answer
            # before the client reads it: half-close, then discard what it still sends.
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(connection)
                return
            self._selector.modify(sock, selectors.EVENT_READ, connection)
            return
        try:
            data = sock.recv(_RECV_BYTES)
        except self._again:
            return
        except OSError:  # ssl.SSLError included
            data = b""
        if not data:
            self._close(connection)

    def _forget(self, connection: _Connection) -> None:
        self._open.pop(id(connection), None)
        self._closing.pop(id(connection), None)

    def _close(self, connection: _Connection) -> None:
        self._forget(connection)
        if connection.state != _BUSY:
            try:
                self._selector.unregister(connection.sock)
            except (KeyError, ValueError):
                pass
        _close_quietly(connection.sock)

    def _close_everything(self) -> None:
        with self._lock:
            self._stopping = True
            returned, self._returned = self._returned, []
        for connection, _ in returned:
            _close_quietly(connection.sock)
        for connection in list(self._open.values()) + list(self._closing.values()):
            if connection.state == _BUSY:
                # The worker is writing: shutting the socket down makes its write fail at once;
                # the worker then closes it.
                try:
                    connection.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            else:
                _close_quietly(connection.sock)
        self._open.clear()
        self._closing.clear()
        try:
            self._selector.close()
        except (OSError, ValueError):
            pass
        for sock in (self._listener, self._wake_r, self._wake_w):
            _close_quietly(sock)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already woken (buffer full) or closed

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass


def _head_end(buffer: bytearray) -> int:
    """The index just past the blank line ending a request head, or -1."""
    crlf = buffer.find(b"\r\n\r\n")
    lf = buffer.find(b"\n\n")
    ends = [i + 4 for i in (crlf,) if i >= 0] + [i + 2 for i in (lf,) if i >= 0]
    return min(ends) if ends else -1


def _handshake_done(sock: socket.socket) -> bool:
    try:
        return sock.version() is not None  # type: ignore[attr-defined]
    except (ValueError, OSError):
        return False


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
