"""What the routes of one application share: settings, fleet state, store, scraper, live hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from scraper.state import FleetState
from scraper.store import Store
from server.audit import AuditLog
from server.auth.ratelimit import LoginLimiter
from server.auth.store import AuthStore
from server.floor_plans import PlanStore
from server.follower import StoreFollower
from server.http_metrics import HttpMetrics
from server.ingest import IngestService
from server.inventory_edit import InventoryEditor
from server.list_cache import ListCache
from server.live import LiveHub
from server.settings import Settings
from server.view_json import ViewJson

if TYPE_CHECKING:  # a type only: the server alone (--no-scrape) never loads the scraper service
    from scraper.alerting.config_watcher import NotificationsWatcher
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
    # Users, tokens and sessions; None without a database (then only anonymous read can work).
    auth: AuthStore | None
    login_limiter: LoginLimiter
    http_metrics: HttpMetrics
    # Push mode (POST /api/ingest); None without a database.
    ingest: IngestService | None = None
    scraper_running: bool = False
    # Why the lifespan failed to start (for the CLI to report it in one line), if it did.
    startup_error: BaseException | None = None
    # The alert engine (None when alerts are off or there is no database); set by the lifespan.
    alerts: AlertEngine | None = None
    # Machines' JSON text, encoded once per view (GET /api/machines).
    view_json: ViewJson = field(default_factory=ViewJson)
    # Whole list answers per fleet version and filters, plain and gzip (GET /api/machines).
    list_cache: ListCache = field(default_factory=ListCache)
    # Follows notifications.yaml for the engine's notifier (None without an engine).
    notifications_watcher: NotificationsWatcher | None = None
    # The inventory editor (/api/inventory), floor plans (/api/sites) and the audit of both
    # (None without a database: changes that cannot be audited are not made).
    inventory_editor: InventoryEditor | None = None
    plans: PlanStore | None = None
    audit: AuditLog | None = None
