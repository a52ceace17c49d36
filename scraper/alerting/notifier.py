"""The notifier: routes alerts to channels, groups them, and delivers in the background.

`submit(kind, alert)` never blocks and never waits on a network: it puts the alert into the group
of each channel its routes pick (one group per channel and site), and a group is sent as one
message `group_wait` seconds after its first alert, so ten machines of one site going down
together make one message. Each channel has its own bounded queue and its own task that delivers
with retries and exponential backoff; a full queue drops the message and counts it. So a slow or
broken channel delays only itself, and never the scraper or the other channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scraper.alerting.channels import deliver
from scraper.alerting.config import Notifications
from scraper.alerting.errors import DeliveryFailed
from scraper.alerting.message import Item, Message
from scraper.alerting.store import AlertRecord, AlertStore
from scraper.errors import StoreError

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
MAX_GROUP_ITEMS = 1000
MAX_BACKOFF = 300.0
RETIRE_SECONDS = 30.0  # how long a channel removed by a reload may take to send what it holds


@dataclass
class ChannelStats:
    """What `GET /api/alerts/channels` shows of one channel (never its settings' secrets)."""

    name: str
    type: str
    sent_total: int = 0
    failures_total: int = 0  # failed attempts, retries included
    dropped_total: int = 0  # messages given up (retries exhausted or queue full)
    last_success: float | None = None
    last_error: str | None = None
    last_error_time: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "sent_total": self.sent_total,
            "failures_total": self.failures_total,
            "dropped_total": self.dropped_total,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "last_error_time": self.last_error_time,
        }


@dataclass
class _Group:
    items: dict[int, Item] = field(default_factory=dict)  # by alert id: the latest kind wins


class Notifier:
    """Delivers alert notifications per `settings`; `store` gets a history row per delivery."""

    def __init__(
        self,
        settings: Notifications,
        store: AlertStore | None,
        *,
        queue_size: int = QUEUE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._store = store
        self._clock = clock
        self._queue_size = queue_size
        self.stats = {name: ChannelStats(name, channel.type) for name, channel in settings.channels.items()}
        self._queues: dict[str, asyncio.Queue[Message]] = {}
        self._groups: dict[tuple[str, str | None], _Group] = {}
        self._timers: dict[tuple[str, str | None], asyncio.TimerHandle] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._retiring: set[asyncio.Task[None]] = set()  # removed channels sending what they hold
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for name in self.settings.channels:
            self._open(name)

    def _open(self, name: str) -> None:
        queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=self._queue_size)
        self._queues[name] = queue
        self._tasks[name] = asyncio.create_task(self._worker(name, queue), name=f"notify-{name}")

    async def reload(self, settings: Notifications) -> None:
        """Take new settings (notifications.yaml changed) without losing what is on its way.

        Channels kept by name keep their queue, their waiting groups and their counters, and send
        their next message with the new settings. New channels start. A removed channel sends
        what it already holds (its waiting groups at once), then stops. Routes apply to the
        alerts submitted from now on.
        """
        removed = [name for name in self._tasks if name not in settings.channels]
        self.settings = settings
        for name in removed:
            for key in [k for k in self._timers if k[0] == name]:
                self._flush(key)
            queue, task = self._queues.pop(name), self._tasks.pop(name)
            retiring = asyncio.create_task(self._retire(name, queue, task), name=f"notify-retire-{name}")
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
        for name, channel in settings.channels.items():
            if name not in self.stats or self.stats[name].type != channel.type:
                self.stats[name] = ChannelStats(name, channel.type)
            if name not in self._tasks and self._loop is not None:
                self._open(name)

    async def _retire(self, name: str, queue: asyncio.Queue[Message], task: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + RETIRE_SECONDS
        while not queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await _cancel(task)
        if name not in self.settings.channels:
            self.stats.pop(name, None)

    async def stop(self) -> None:
        """Send the groups still waiting, give the channels a moment, then stop their tasks."""
        for key in list(self._timers):
            self._flush(key)
        deadline = time.monotonic() + 3.0
        while any(not q.empty() for q in self._queues.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in [*self._tasks.values(), *self._retiring]:
            await _cancel(task)
        self._tasks.clear()
        self._queues.clear()

    def submit(self, kind: str, alert: AlertRecord) -> list[str]:
        """Queue `alert` (`firing`, `repeat` or `resolved`) for the channels its routes pick; returns them.

        Must be called on the notifier's event loop.
        """
        channels = self.settings.channels_for(alert.site, alert.severity, alert.labels)
        for name in channels:
            key = (name, alert.site)
            group = self._groups.setdefault(key, _Group())
            if len(group.items) >= MAX_GROUP_ITEMS and alert.id not in group.items:
                self.stats[name].dropped_total += 1
                continue
            group.items[alert.id] = Item(kind, alert)
            if key not in self._timers and self._loop is not None:
                self._timers[key] = self._loop.call_later(self.settings.group_wait, self._flush, key)
        return channels

    def _flush(self, key: tuple[str, str | None]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        group = self._groups.pop(key, None)
        if group is None or not group.items:
            return
        name, site = key
        message = Message(site=site, items=tuple(group.items.values()), time=self._clock())
        try:
            self._queues[name].put_nowait(message)
        except asyncio.QueueFull:
            stats = self.stats[name]
            stats.dropped_total += 1
            stats.last_error, stats.last_error_time = "queue full: message dropped", self._clock()
            log.warning(
                "notification channel %s is %d messages behind: message dropped", name, self._queue_size
            )

    async def _worker(self, name: str, queue: asyncio.Queue[Message]) -> None:
        channel = self.settings.channels[name]
        while True:
            message = await queue.get()
            # The settings in force now (a reload may have changed them); a removed channel sends
            # what it still holds with its last settings.
            channel = self.settings.channels.get(name, channel)
            stats = self.stats.setdefault(name, ChannelStats(name, channel.type))
            ids = [i.alert.id for i in message.items]
            delay = self.settings.retry_backoff
            for attempt in range(channel.retries + 1):
                try:
                    await deliver(name, channel, message, self.settings.folder)
                except DeliveryFailed as e:
                    stats.failures_total += 1
                    stats.last_error, stats.last_error_time = e.cause, self._clock()
                    log.warning("notification over %s failed (attempt %d): %s", name, attempt + 1, e.cause)
                    if attempt < channel.retries:
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, MAX_BACKOFF)
                        continue
                    stats.dropped_total += 1
                    await self._history(ids, "notify_failed", f"{name}: {e.cause}")
                else:
                    stats.sent_total += 1
                    stats.last_success = self._clock()
                    await self._history(ids, "notified", f"{name}: {message.status}")
                break

    async def _history(self, ids: list[int], kind: str, detail: str) -> None:
        if self._store is None:
            return
        try:
            await asyncio.to_thread(self._store.record_event, ids, self._clock(), kind, detail)
        except StoreError as e:
            log.warning("alert history not written (%s): %s", kind, e)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
