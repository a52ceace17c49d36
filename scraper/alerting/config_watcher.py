"""Reads notifications.yaml again when it changes, so that a new channel or route needs no restart.

A change is taken once the file has stayed the same for one check (an editor that truncates and
then writes must not be read half-way: an empty file would mean "no channels"). A file that turns
invalid keeps the settings in force (as a broken machines.yaml keeps the last good inventory): its
problems are logged with their lines and counted; `GET /api/alerts/channels` and `/metrics` say the
file on disk is not in force until a good file replaces it. A deleted file is no channels, as at
start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from scraper.alerting.config import Notifications, load_notifications
from scraper.alerting.errors import NotificationsError
from scraper.alerting.notifier import Notifier
from scraper.file_signature import FileSignature, signature

log = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 2.0


class NotificationsWatcher:
    """Follows `path` for `notifier`. `start()` notes the file as it was read at start."""

    def __init__(self, path: Path, notifier: Notifier, *, interval: float = CHECK_INTERVAL_SECONDS) -> None:
        self.path = Path(path)
        self._notifier = notifier
        self._interval = interval
        self._signature: FileSignature | None = None  # of the file in force
        self._seen: FileSignature | None = None  # at the last look
        self._task: asyncio.Task[None] | None = None
        self.reloads_total = 0
        self.reload_failures_total = 0
        self.last_reload_successful = True
        self.last_reload_time: float | None = None
        self.error: str | None = None  # the problems of the file on disk while it is refused

    async def start(self) -> None:
        self._signature = self._seen = signature(self.path)
        self._task = asyncio.create_task(self._run(), name="notifications-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def check(self) -> bool:
        """Reload when the file changed and then stayed the same since the last look; True when new
        settings were taken."""
        now_signature = signature(self.path)
        settled, self._seen = now_signature == self._seen, now_signature
        if now_signature == self._signature or not settled:
            return False
        self._signature = now_signature
        try:
            settings: Notifications = await asyncio.to_thread(load_notifications, self.path)
        except NotificationsError as e:
            self.reload_failures_total += 1
            self.last_reload_successful = False
            self.error = str(e)
            log.error("notifications not reloaded, keeping the channels in force:\n%s", e)
            return False
        await self._notifier.reload(settings)
        self.reloads_total += 1
        self.last_reload_successful = True
        self.last_reload_time = time.time()
        self.error = None
        log.info(
            "notifications reloaded from %s: %d channels, %d routes",
            self.path,
            len(settings.channels),
            len(settings.routes),
        )
        return True
