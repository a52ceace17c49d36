"""The FastAPI application: API, live WebSocket, operations endpoints and the web page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI

from scraper.alerting.config_watcher import NotificationsWatcher
from scraper.state import FleetState
from scraper.store import Store
from server.alert_metrics import AlertsCollector
from server.alerting import build_alert_engine
from server.audit import AuditLog
from server.auth.ratelimit import LoginLimiter
from server.auth.store import AuthStore
from server.context import ServerContext
from server.deps import require_admin, require_viewer
from server.floor_plans import PlanStore
from server.follower import StoreFollower
from server.hosts import AllowedHostsMiddleware
from server.http_metrics import HttpMetrics, RequestMetricsMiddleware
from server.ingest import IngestService, InventorySource
from server.inventory_edit import InventoryEditor
from server.live import LiveHub
from server.machine_keys import KeyStore
from server.metrics import ServerCollector, server_registry
from server.openapi import install as install_openapi
from server.routes import (
    admin,
    alerts,
    audit,
    auth,
    config,
    health,
    ingest,
    inventory,
    live,
    machines,
    metrics,
    sd,
    sites,
)
from server.settings import Settings
from server.static_files import WebPage
from server.version import millwatch_version
from server.view_json import ViewJson

if TYPE_CHECKING:  # a type only: the server alone (--no-scrape) never loads the scraper service
    from scraper.service import ScraperService

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    state: FleetState,
    store: Store | None,
    scraper: ScraperService | None,
    keys: KeyStore | None = None,
) -> FastAPI:
    """Build the application around `state`.

    Its lifespan starts the live hub, then the scraper when one is given (its InventoryError or
    other start-up failure aborts the start and is kept in `app.state.millwatch.startup_error`).
    With a store and `settings.alerts`, the alert engine starts first (a bad notifications file or
    an unreadable database aborts the start like the scraper's errors). Without scraper but with a
    store, the machines' views are read from the store every
    `settings.store_poll_interval` seconds (staleness applied), so a server alone shows what
    separate `millwatch scrape` processes write. With a store, `POST /api/ingest` takes push
    machines' batches, their keys checked in `keys` (by default a KeyStore on
    `settings.database_url`, closed with the app). The caller owns `store` and closes it.
    """
    version = millwatch_version()
    # Each machine view is encoded to JSON once, for the list answer and the live messages alike.
    view_json = ViewJson()
    hub = LiveHub(
        state,
        view_json=view_json,
        batch_interval=settings.live_batch_interval,
        queue_size=settings.live_queue_size,
        max_clients=settings.live_max_clients,
        max_clients_per_address=settings.live_max_clients_per_address,
        max_message_bytes=settings.live_max_message_bytes,
    )
    follower = None
    if scraper is None and store is not None:
        follower = StoreFollower(store, state, interval=settings.store_poll_interval)
    ingest_service = None
    own_keys = keys is None and store is not None
    if store is not None:
        if keys is None:
            keys = KeyStore(settings.database_url)
        inventory_source = InventorySource(
            settings.inventory, (lambda: scraper.inventory) if scraper is not None else None
        )
        ingest_service = IngestService(keys, store, state, inventory_source)
    registry = server_registry(
        ServerCollector(
            state,
            hub,
            scraper,
            follower,
            version,
            ingest=ingest_service.counters if ingest_service is not None else None,
        )
    )
    http_metrics = HttpMetrics(registry)
    hub.refusals = http_metrics.websocket_refused
    context = ServerContext(
        view_json=view_json,
        settings=settings,
        state=state,
        store=store,
        scraper=scraper,
        follower=follower,
        hub=hub,
        registry=registry,
        version=version,
        ingest=ingest_service,
        auth=AuthStore(store) if store is not None else None,
        login_limiter=LoginLimiter(settings.login_rate_per_address, settings.login_rate_per_user),
        http_metrics=http_metrics,
    )
    context.registry.register(AlertsCollector(context))
    # The file the scraper of this process watches (a test's or `--inventory`), else the setting.
    inventory_path = scraper.inventory_path if scraper is not None else settings.inventory
    context.plans = PlanStore(settings.effective_data_dir(inventory_path) / "plans")
    if store is not None:
        context.audit = AuditLog(store)
        context.inventory_editor = InventoryEditor(inventory_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        follow_task: asyncio.Task[None] | None = None
        try:
            if settings.alerts and store is not None:
                # Before the scraper: its first views are already followed by the engine.
                try:
                    engine = build_alert_engine(settings, state, store, scraper)
                    await engine.start()
                except Exception as e:
                    context.startup_error = e
                    raise
                context.alerts = engine
                context.notifications_watcher = NotificationsWatcher(
                    settings.notifications_path, engine.notifier
                )
                await context.notifications_watcher.start()
            if scraper is not None:
                try:
                    await scraper.start()
                except Exception as e:
                    context.startup_error = e
                    raise
                context.scraper_running = True
                log.info("scraper started")
            elif follower is not None:
                await follower.reload_once()  # the first requests already see the fleet
                follow_task = asyncio.create_task(follower.run())
            yield
        finally:
            if follow_task is not None:
                follow_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follow_task
            if context.scraper_running and scraper is not None:
                context.scraper_running = False
                await scraper.stop()
                log.info("scraper stopped")
            if context.notifications_watcher is not None:
                await context.notifications_watcher.stop()
                context.notifications_watcher = None
            if context.alerts is not None:
                await context.alerts.stop()
                context.alerts.store.close()
                context.alerts = None
            await hub.stop()
            if own_keys and keys is not None:
                keys.close()

    # No docs pages: they load their scripts from a CDN, and the central host may be air-gapped.
    app = FastAPI(
        title="millwatch",
        version=version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.millwatch = context
    install_openapi(app)
    # Access is declared per router (server/deps.py): what is not listed here decides for itself —
    # /healthz is open, /metrics and the live WebSocket check inside, login is for everyone,
    # and POST /api/ingest takes only a machine's own key (server/ingest.py), never a user's.
    viewer = [Depends(require_viewer)]
    app.include_router(machines.router, dependencies=viewer)
    app.include_router(config.router, dependencies=viewer)
    app.include_router(sd.router, dependencies=viewer)
    # Reading alerts is a viewer's; acknowledging, windows and the audit ask more (routes/alerts.py).
    app.include_router(alerts.router, dependencies=viewer)
    app.include_router(sites.router, dependencies=viewer)
    admin_only = [Depends(require_admin)]
    app.include_router(admin.router, dependencies=admin_only)
    app.include_router(inventory.router, dependencies=admin_only)
    app.include_router(audit.router, dependencies=admin_only)
    for router in (auth.router, live.router, health.router, metrics.router, ingest.router):
        app.include_router(router)
    # The last added is outermost: every request is timed, then its Host checked.
    app.add_middleware(AllowedHostsMiddleware, allowed=settings.effective_allowed_hosts())
    app.add_middleware(RequestMetricsMiddleware, metrics=http_metrics)
    # Last, so that every API route wins over a file of the same name.
    app.mount("/", WebPage(settings.static_dir), name="web")
    return app
