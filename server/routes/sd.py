"""`GET /api/sd`: the pulled machines as Prometheus HTTP service discovery (`http_sd_configs`).

One target group per enabled machine (their labels differ), in Prometheus' http_sd format:

    [{"targets": ["10.0.1.23:9817"],
      "labels": {"__scheme__": "http", "__metrics_path__": "/metrics", "machine_id": "ironcast_berlin",
                 "__meta_millwatch_machine_id": "ironcast_berlin", "__meta_millwatch_name": "IronCast Berlin",
                 "__meta_millwatch_site": "Berlin", "__meta_millwatch_label_line": "casting"}}]

`machine_id` is a plain label, so every series Prometheus scrapes carries it without relabelling;
the rest are `__meta_millwatch_*` labels, dropped after relabelling unless a rule keeps them (as
Prometheus' own discoveries do). Scheme, path and query parameters come from the machine's URL.
Credentials the inventory holds for a machine are never here: Prometheus needs its own.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter
from starlette.responses import Response

from scraper.state import MachineView
from server.deps import StateDep
from server.jsonout import json_response

router = APIRouter(prefix="/api", tags=["service discovery"])

META = "__meta_millwatch_"
_NOT_LABEL_CHARACTER = re.compile(r"[^a-zA-Z0-9_]")


def target_group(view: MachineView) -> dict[str, object] | None:
    """The http_sd target group of one machine, or None when Prometheus could not scrape it."""
    parts = urlsplit(view.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc.rpartition("@")[2]  # user information is a credential: never passed on
    labels = {
        "__scheme__": parts.scheme,
        "__metrics_path__": parts.path or "/metrics",
        "machine_id": view.id,
        f"{META}machine_id": view.id,
        f"{META}name": view.name,
        f"{META}site": view.site or "",
    }
    for key, value in parse_qsl(parts.query):
        labels[f"__param_{_label_name(key)}"] = value
    for key, value in sorted(view.labels.items()):
        labels[f"{META}label_{_label_name(key)}"] = value
    return {"targets": [host], "labels": labels}


@router.get("/sd")
def service_discovery(state: StateDep) -> Response:
    """Every enabled pulled machine as one target group, sorted by machine id."""
    groups = []
    for view in state.snapshot():
        if not view.enabled:
            continue
        group = target_group(view)
        if group is not None:
            groups.append(group)
    return json_response(groups)


def _label_name(text: str) -> str:
    return _NOT_LABEL_CHARACTER.sub("_", text)
