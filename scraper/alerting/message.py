"""One notification: the alerts of one group (one site, one channel) gathered over `group_wait`.

The same message is rendered as a mail (subject + plain text), a chat text (apprise) and the
webhook's JSON body (`payload()`, documented in docs/alerts.md; `version` changes on any
incompatible change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from scraper.alerting.store import AlertRecord

PAYLOAD_VERSION = 1
FIRING = "firing"
REPEAT = "repeat"
RESOLVED = "resolved"


@dataclass(frozen=True)
class Item:
    """One alert in a message, and why it is in it: newly `firing`, a `repeat`, or `resolved`."""

    kind: str
    alert: AlertRecord


@dataclass(frozen=True)
class Message:
    site: str | None
    items: tuple[Item, ...]
    time: float

    @property
    def firing(self) -> list[Item]:
        return [i for i in self.items if i.kind != RESOLVED]

    @property
    def resolved(self) -> list[Item]:
        return [i for i in self.items if i.kind == RESOLVED]

    @property
    def status(self) -> str:
        """`firing` when any alert in it still fires, else `resolved`."""
        return FIRING if self.firing else RESOLVED

    @property
    def title(self) -> str:
        where = self.site or "no site"
        parts = []
        if self.firing:
            worst = min((i.alert.severity for i in self.firing), key=("critical", "warning", "info").index)
            parts.append(f"[FIRING:{len(self.firing)}] {worst}")
        if self.resolved:
            parts.append(f"[RESOLVED:{len(self.resolved)}]")
        return f"millwatch {' '.join(parts)} {where}: {_machines(self.items)}"

    def text(self) -> str:
        lines: list[str] = []
        for heading, items in (("Firing", self.firing), ("Resolved", self.resolved)):
            if not items:
                continue
            lines.append(f"{heading}:")
            for item in items:
                a = item.alert
                since = _time(a.started_at)
                extra = " (repeat)" if item.kind == REPEAT else ""
                if item.kind == RESOLVED and a.resolved_at is not None:
                    extra = f", resolved {_time(a.resolved_at)}"
                lines.append(
                    f"- {a.machine_id} [{a.severity}] {a.reason} — since {since}{extra} (alert {a.id})"
                )
            lines.append("")
        lines.append("Acknowledge with a reason on the map page or POST /api/alerts/{id}/ack.")
        return "\n".join(lines)

    def payload(self, channel: str) -> dict[str, Any]:
        """The webhook body."""
        return {
            "version": PAYLOAD_VERSION,
            "channel": channel,
            "status": self.status,
            "site": self.site,
            "time": self.time,
            "title": self.title,
            "alerts": [{**i.alert.to_dict(), "notification": i.kind} for i in self.items],
        }


def _machines(items: Sequence[Item]) -> str:
    ids = sorted({i.alert.machine_id for i in items})
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
