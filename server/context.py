"""What the routes of one application share: settings, fleet state, store, scraper, live hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from scraper.state import FleetState
from scraper.store import Store
from server.follower import StoreFollower
from server.live import LiveHub
from server.settings import Settings

if TYPE_CHECKING:  # a type only: the server alone (--no-scrape) never loads the scraper service
    from scraper.alerting.engine import AlertEngine
    from scraper.service import ScraperService


@dataclass
class ServerContext:
    """Everything one app instance works with; kept on `app.state.millwatch`."""

    settings: Settings
    state: FleetState
    store: Store | None
    scraper: ScraperService | None
    follower: StoreFollower | None
    hub: LiveHub
    registry: CollectorRegistry
    version: str
    scraper_running: bool = False
    # Why the lifespan failed to start (for the CLI to report it in one line), if it did.
    startup_error: BaseException | None = None
    # The alert engine (None when alerts are off or there is no database); set by the lifespan.
    alerts: AlertEngine | None = None
