"""Runs the application under uvicorn: the process behind `millwatch serve` and `millwatch demo`."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import threading
from collections.abc import Callable, Generator
from types import FrameType

import httpx
import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from scraper.alerting.config import load_notifications
from scraper.inventory import load_inventory
from scraper.runner import StatusLog
from scraper.service import ScraperService
from scraper.state import FleetState
from scraper.store import Store
from server.app import create_app
from server.context import ServerContext
from server.errors import ListenError, ServerError, format_host_port
from server.machine_keys import KeyStore
from server.settings import Settings

log = logging.getLogger(__name__)

# Seconds that open connections (live map clients) get to finish when the server stops.
GRACEFUL_SHUTDOWN_SECONDS = 5
READY_TIMEOUT_SECONDS = 30.0

_ERRNO_TEXT = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied",
    errno.EADDRNOTAVAIL: "address not available on this host",
}


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (port 0: any free port), not yet listening.

    Raises ListenError with the reason in words ("address already in use", ...).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ListenError(host, port, f"cannot resolve host: {e.strerror}") from e
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a restart must not wait for the old connections' TIME_WAIT to expire.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        reason = _ERRNO_TEXT.get(e.errno or 0, (e.strerror or str(e)).lower())
        raise ListenError(host, port, reason) from e
    return sock


def server_url(host: str, port: int, *, tls: bool = False) -> str:
    """The URL of the page for a server listening on host:port (https when it serves TLS)."""
    return f"{'https' if tls else 'http'}://{format_host_port(host, port)}/"


def safe_database_url(url: str) -> str:
    """`url` with its password masked, fit for logs and terminal output."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def run_server(
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    log_level: str = "info",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the application (with the scraper unless `settings.scrape` is false) until SIGINT/SIGTERM.

    Order of the checks, so that a mistake is reported before anything is started: the listening
    socket (`sock`, or bound here: ListenError), the inventory (InventoryError), the notifications
    file (NotificationsError), the database and its migrations (StoreError). `on_ready(url)` is
    called once `/healthz` answers. A start-up failure inside the application raises that failure,
    or ServerError when it has no better name.
    """
    own_sock = sock is None
    if sock is None:
        sock = bind_socket(settings.host, settings.port)
    try:
        if settings.scrape:
            load_inventory(settings.inventory)
        if settings.alerts:
            load_notifications(settings.notifications_path)  # NotificationsError before anything starts
        store = Store(
            settings.database_url,
            rollup_retention=settings.rollup_retention,
            minute_rollup_retention=settings.minute_rollup_retention,
        )
        try:
            store.migrate()
            _serve(settings, store, sock, log_level, on_ready)
        finally:
            store.close()
    finally:
        if own_sock:
            sock.close()


def _serve(
    settings: Settings,
    store: Store,
    sock: socket.socket,
    log_level: str,
    on_ready: Callable[[str], None] | None,
) -> None:
    state = FleetState()
    state.subscribe(StatusLog())  # one log line per status change, as `millwatch scrape` writes
    scraper = None
    if settings.scrape:
        scraper = ScraperService(
            settings.inventory,
            store,
            state,
            max_concurrency=settings.max_concurrency,
            retention_seconds=settings.retention,
        )
    keys = KeyStore(settings.database_url)
    app = create_app(settings, state=state, store=store, scraper=scraper, keys=keys)
    context: ServerContext = app.state.millwatch
    host, port = sock.getsockname()[:2]
    url = server_url(settings.host, port, tls=settings.tls)
    config = uvicorn.Config(
        app,
        log_config=None,  # the CLI configured logging: one line per event, in one format
        log_level=log_level,
        access_log=log_level == "debug",
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # The protocol library refuses a larger frame itself (close 1009) before buffering it.
        ws_max_size=settings.live_max_message_bytes,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    _check_tls_files(settings)
    if settings.host in ("", "0.0.0.0", "::") and not settings.allowed_hosts:
        log.warning(
            "listening on every interface, but only the Host names %s are answered: set "
            "MILLWATCH_ALLOWED_HOSTS to the names clients use (see docs/security.md)",
            ", ".join(settings.effective_allowed_hosts()),
        )
    server = _Server(
        config, ready_probe=_probe_address(host, port, settings.tls), on_ready=lambda: _ready(url, on_ready)
    )
    log.info(
        "serving %s (scraper %s, inventory %s, database %s)",
        url,
        "on" if scraper is not None else "off",
        settings.inventory if scraper is not None else "-",
        safe_database_url(settings.database_url),
    )
    try:
        server.run(sockets=[sock])
    except SystemExit as e:  # uvicorn's way to say the lifespan start-up failed
        if context.startup_error is not None:
            raise context.startup_error from None
        raise ServerError("the server failed to start (see the log above)") from e
    finally:
        keys.close()
    log.info("server stopped")


def _ready(url: str, on_ready: Callable[[str], None] | None) -> None:
    log.info("ready at %s", url)
    if on_ready is not None:
        on_ready(url)


def _probe_address(host: str, port: int, tls: bool) -> str:
    # A server on every interface answers on loopback.
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"{'https' if tls else 'http'}://{format_host_port(host, port)}/healthz"


def _check_tls_files(settings: Settings) -> None:
    """ServerError naming the file when the certificate or key cannot be read (uvicorn would fail
    later, with a traceback)."""
    for label, path in (("certificate", settings.tls_cert_file), ("key", settings.tls_key_file)):
        if path is None:
            continue
        try:
            path.read_bytes()
        except OSError as e:
            raise ServerError(f"cannot read the TLS {label} {path}: {e.strerror or e}") from e


class _Server(uvicorn.Server):
    """uvicorn's server that reports readiness and ends on SIGINT/SIGTERM without re-raising them.

    uvicorn re-raises the captured signal after a graceful shutdown, which would turn an
    operator's Ctrl-C into a KeyboardInterrupt traceback; a stop on request is a normal end here.
    """

    def __init__(self, config: uvicorn.Config, *, ready_probe: str, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._ready_probe = ready_probe
        self._on_ready = on_ready
        self._ready_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._ready_task = asyncio.create_task(self._wait_ready())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._ready_task is not None:
            self._ready_task.cancel()
        await super().shutdown(sockets=sockets)

    async def _wait_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_SECONDS
        delay = 0.05
        # Our own certificate names the public host, not loopback: the probe only asks "answering?".
        async with httpx.AsyncClient(timeout=5.0, trust_env=False, verify=False) as client:
            while True:
                try:
                    await client.get(self._ready_probe)
                except httpx.HTTPError:
                    if asyncio.get_running_loop().time() > deadline:
                        log.error("the server does not answer on %s", self._ready_probe)
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                self._on_ready()
                return

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self._stop_on_signal) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def _stop_on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for connections
        else:
            log.info("stopping on %s", signal.Signals(sig).name)
            self.should_exit = True
