"""The FastAPI application: API, live WebSocket, operations endpoints and the web page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI

from scraper.state import FleetState
from scraper.store import Store
from server.alert_metrics import AlertsCollector
from server.alerting import build_alert_engine
from server.context import ServerContext
from server.follower import StoreFollower
from server.live import LiveHub
from server.metrics import ServerCollector, server_registry
from server.routes import alerts, config, health, live, machines, metrics
from server.settings import Settings
from server.static_files import WebPage
from server.version import millwatch_version

if TYPE_CHECKING:  # a type only: the server alone (--no-scrape) never loads the scraper service
    from scraper.service import ScraperService

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    state: FleetState,
    store: Store | None,
    scraper: ScraperService | None,
) -> FastAPI:
    """Build the application around `state`.

    Its lifespan starts the live hub, then the scraper when one is given (its InventoryError or
    other start-up failure aborts the start and is kept in `app.state.millwatch.startup_error`).
    With a store and `settings.alerts`, the alert engine starts first (a bad notifications file or
    an unreadable database aborts the start like the scraper's errors). Without scraper but with a
    `settings.store_poll_interval` seconds (staleness applied), so a server alone shows what
    separate `millwatch scrape` processes write. The caller owns `store` and closes it.
    """
    version = millwatch_version()
    hub = LiveHub(state, batch_interval=settings.live_batch_interval, queue_size=settings.live_queue_size)
    follower = None
    if scraper is None and store is not None:
        follower = StoreFollower(store, state, interval=settings.store_poll_interval)
    context = ServerContext(
        settings=settings,
        state=state,
        store=store,
        scraper=scraper,
        follower=follower,
        hub=hub,
        registry=server_registry(ServerCollector(state, hub, scraper, follower, version)),
        version=version,
    )
    context.registry.register(AlertsCollector(context))

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
            if context.alerts is not None:
                await context.alerts.stop()
                context.alerts.store.close()
                context.alerts = None
            await hub.stop()

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
    for router in (machines.router, live.router, config.router, health.router, metrics.router, alerts.router):
        app.include_router(router)
    # Last, so that every API route wins over a file of the same name.
    app.mount("/", WebPage(settings.static_dir), name="web")
    return app
