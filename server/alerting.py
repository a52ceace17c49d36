"""Builds the alert engine of one server process from its settings (see docs/alerts.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scraper.alerting.config import load_notifications
from scraper.alerting.engine import AlertEngine
from scraper.alerting.inventory_source import InventoryFile
from scraper.alerting.notifier import Notifier
from scraper.alerting.store import AlertStore
from scraper.inventory import Inventory
from scraper.state import FleetState
from scraper.store import Store
from server.settings import Settings

if TYPE_CHECKING:
    from scraper.service import ScraperService


def build_alert_engine(
    settings: Settings, state: FleetState, store: Store, scraper: ScraperService | None
) -> AlertEngine:
    """The engine on the database of `store`, following `state` by the rules of the scraper's current
    inventory (or of the inventory file, read again when it changes, for a server without scraper).

    Raises NotificationsError for a notifications file with problems, StoreError for a database URL
    it cannot use.
    """
    notifications = load_notifications(settings.notifications_path)
    alert_store = AlertStore(store.sqlalchemy_url)
    if scraper is not None:
        service = scraper

        def rules() -> Inventory | None:
            return service.inventory

    else:
        rules = InventoryFile(settings.inventory)
    return AlertEngine(state, rules, alert_store, Notifier(notifications, alert_store))
