"""What every route answers to anonymous, viewer, admin, a bad token and a revoked token (401 vs 403),
over a real uvicorn with users and tokens in a real SQLite file."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_helpers import ADMIN, VIEWER, Accounts, bearer, login
from PIL import Image
from push_helpers import body as push_body
from server_helpers import make_view
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from scraper.alerting.store import AlertStore
from scraper.state import FleetState, Status
from server.auth.principal import Role
from server.machine_keys import KeyStore

BAD_TOKEN = "mwt_" + "x" * 43

# (method, path, who may: "open" | "viewer" | "acting" | "admin" | "machine"). "acting" is a viewer or
# admin who acts under their own name (a user or token, never anonymous read); "machine" is a push
# machine's key. The server holds one firing alert (id 1), one maintenance window (id 1; POST
# /api/maintenance adds another), a floor plan for Berlin, a user "old-op" and a token "old-ci" to
# remove. A route that changes what a later route reads comes after it.
ROUTES = [
    ("GET", "/", "open"),
    ("GET", "/healthz", "open"),
    ("GET", "/api/openapi.json", "open"),
    ("GET", "/api/machines", "viewer"),
    ("GET", "/api/machines/press_01", "viewer"),
    ("GET", "/api/machines/press_01/history?metric=up", "viewer"),
    ("GET", "/api/machines/press_01/history.csv?metric=up", "viewer"),
    ("GET", "/api/config", "viewer"),
    ("GET", "/api/sd", "viewer"),
    ("GET", "/metrics", "viewer"),
    ("GET", "/api/auth/me", "viewer"),
    ("GET", "/api/sites", "viewer"),
    ("GET", "/api/sites/Berlin/plan", "viewer"),
    ("PUT", "/api/sites/Berlin/plan", "admin"),
    ("DELETE", "/api/sites/Berlin/plan", "admin"),
    ("GET", "/api/admin/users", "admin"),
    ("POST", "/api/admin/users", "admin"),
    ("PUT", "/api/admin/users/old-op/password", "admin"),
    ("DELETE", "/api/admin/users/old-op", "admin"),
    ("GET", "/api/admin/tokens", "admin"),
    ("POST", "/api/admin/tokens", "admin"),
    ("DELETE", "/api/admin/tokens/old-ci", "admin"),
    ("GET", "/api/inventory/machines", "admin"),
    ("GET", "/api/inventory/machines/press_01", "admin"),
    ("POST", "/api/inventory/machines", "admin"),
    ("PUT", "/api/inventory/machines/new_01", "admin"),
    ("PATCH", "/api/inventory/machines/new_01", "admin"),
    ("DELETE", "/api/inventory/machines/new_01", "admin"),
    ("POST", "/api/inventory/import", "admin"),
    ("GET", "/api/audit", "admin"),
    ("WS", "/api/live", "viewer"),
    ("GET", "/api/alerts", "viewer"),
    ("GET", "/api/alerts/1", "viewer"),
    ("GET", "/api/alerts/channels", "viewer"),
    ("GET", "/api/alerts/audit", "admin"),
    ("POST", "/api/alerts/1/ack", "acting"),
    ("GET", "/api/maintenance", "viewer"),
    ("POST", "/api/maintenance", "admin"),
    ("DELETE", "/api/maintenance/1", "admin"),
    ("POST", "/api/ingest", "machine"),
    ("POST", "/api/auth/logout", "viewer"),
    ("POST", "/api/auth/login", "open"),  # last: the client keeps the cookie it sets
]
# A success other than 200.
DONE = {
    "POST /api/admin/tokens": 201,
    "POST /api/admin/users": 201,
    "PUT /api/admin/users/old-op/password": 204,
    "DELETE /api/admin/users/old-op": 204,
    "DELETE /api/admin/tokens/old-ci": 204,
    "POST /api/inventory/machines": 201,
    "DELETE /api/inventory/machines/new_01": 204,
    "DELETE /api/sites/Berlin/plan": 204,
    "POST /api/maintenance": 201,
    "DELETE /api/maintenance/1": 204,
    "POST /api/auth/logout": 204,
}
# Who asks, and the status each kind of route gives them (anonymous read off). Only a machine's key
# writes a batch, and a machine's key reads nothing.
CALLERS: dict[str, dict[str, int]] = {
    "anonymous": {"open": 200, "viewer": 401, "acting": 401, "admin": 401, "machine": 401},
    "viewer-token": {"open": 200, "viewer": 200, "acting": 200, "admin": 403, "machine": 401},
    "admin-token": {"open": 200, "viewer": 200, "acting": 200, "admin": 200, "machine": 401},
    "viewer-session": {"open": 200, "viewer": 200, "acting": 200, "admin": 403, "machine": 401},
    "admin-session": {"open": 200, "viewer": 200, "acting": 200, "admin": 200, "machine": 401},
    "bad-token": {"open": 200, "viewer": 401, "acting": 401, "admin": 401, "machine": 401},
    "revoked-token": {"open": 200, "viewer": 401, "acting": 401, "admin": 401, "machine": 401},
    "machine-key": {"open": 200, "viewer": 401, "acting": 401, "admin": 401, "machine": 200},
    "revoked-machine-key": {"open": 200, "viewer": 401, "acting": 401, "admin": 401, "machine": 401},
}
INVENTORY = """\
machines:
  - id: press_01
    url: http://127.0.0.1:9/metrics
    site: Berlin
  - id: press_02
    mode: push
"""


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Server:
    base: str
    machine_key: str
    revoked_machine_key: str


def with_alerts(tmp_path: Path, accounts: Accounts) -> Path:
    """The inventory of press_01, its view in the store (in alarm), one firing alert on it and one
    maintenance window on another machine; returns the inventory for the server's alert engine."""
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(INVENTORY)
    # The server without scraper reads the store; in alarm, the alert below stays firing.
    accounts.store.save_views([make_view("press_01", status=Status.ALARM, reason="overheating")])
    alerts = AlertStore(accounts.store.sqlalchemy_url)
    try:
        now = time.time()
        fired = alerts.fire(
            machine_id="press_01",
            rule="status",
            severity="critical",
            level="alarm",
            reason="overheating",
            site="Berlin",
            labels={},
            started_at=now,
            now=now,
        )
        window = alerts.add_window(
            scope="machine",
            target="lathe_09",
            starts_at=now,
            ends_at=now + 3600,
            weekly=False,
            reason="relining",
            actor="ada",
            now=now,
        )
    finally:
        alerts.close()
    assert (fired.id, window.id) == (1, 1)
    return inventory


def start(
    serve: Callable[..., str], state: FleetState, accounts: Accounts, tmp_path: Path, **settings: Any
) -> Server:
    """The server of these tests, with a built page, what its removing routes remove and one machine
    key (and one revoked) for press_02."""
    (tmp_path / "static" / "index.html").write_text("<!doctype html><title>millwatch</title>")
    inventory = with_alerts(tmp_path, accounts)
    accounts.auth.add_user("old-op", Role.VIEWER, "old-op-password")
    accounts.auth.create_token("old-ci", Role.VIEWER)
    keys = KeyStore(accounts.store.sqlalchemy_url)
    try:
        revoked = keys.create("press_02")
        keys.revoke(key_id=revoked[0].id)
        _, machine_key = keys.create("press_02")
    finally:
        keys.close()
    base = serve(
        state,
        store=accounts.store,
        database_url=str(accounts.store.sqlalchemy_url),  # the machine keys' database
        inventory=inventory,
        data_dir=tmp_path / "data",
        **settings,
    )
    admin = bearer(accounts.admin_token) | {"Content-Type": "image/png"}
    assert httpx.put(f"{base}/api/sites/Berlin/plan", content=png(), headers=admin).status_code == 200
    return Server(base, machine_key, revoked[1])


@pytest.fixture
def keyed(state: FleetState, serve: Callable[..., str], accounts: Accounts, tmp_path: Path) -> Server:
    return start(serve, state, accounts, tmp_path, anonymous_read=False)


@pytest.fixture
def server(keyed: Server) -> str:
    return keyed.base


def client_for(caller: str, server: Server, accounts: Accounts) -> httpx.Client:
    base = server.base
    if caller == "viewer-session":
        return login(base, *VIEWER)
    if caller == "admin-session":
        return login(base, *ADMIN)
    headers = {
        "anonymous": {},
        "viewer-token": bearer(accounts.viewer_token),
        "admin-token": bearer(accounts.admin_token),
        "bad-token": bearer(BAD_TOKEN),
        "revoked-token": bearer(accounts.revoked_token),
        "machine-key": bearer(server.machine_key),
        "revoked-machine-key": bearer(server.revoked_machine_key),
    }[caller]
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def ws_status(base: str, client: httpx.Client) -> int:
    """200 when the live WebSocket sends its snapshot, 401 when it closes with 4401 first."""
    headers = {k: v for k, v in client.headers.items() if k.lower() in ("authorization", "cookie")}
    cookies = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    if cookies:
        headers["Cookie"] = cookies
    with connect(base.replace("http://", "ws://") + "/api/live", additional_headers=headers) as ws:
        try:
            message = json.loads(ws.recv(timeout=10))
        except ConnectionClosed as e:
            assert e.rcvd is not None
            assert e.rcvd.code == 4401, e.rcvd
            return 401
    assert message["type"] == "snapshot"
    return 200


def call(client: httpx.Client, base: str, method: str, path: str) -> int:
    if method == "WS":
        return ws_status(base, client)
    new_machine = {"id": "new_01", "url": "http://127.0.0.1:9/metrics"}
    bodies: dict[str, tuple[str, bytes]] = {
        "/api/admin/tokens": json_body({"name": f"t-{uuid.uuid4().hex[:8]}", "role": "viewer"}),
        "/api/admin/users": json_body(
            {"name": f"u-{uuid.uuid4().hex[:8]}", "role": "viewer", "password": "a-long-password"}
        ),
        "/api/admin/users/old-op/password": json_body({"password": "another-long-one"}),
        "/api/alerts/1/ack": json_body({"reason": "crew on the way"}),
        "/api/auth/login": json_body({"name": VIEWER[0], "password": VIEWER[1]}),
        "/api/maintenance": json_body(
            {"scope": "machine", "target": "press_01", "hours": 1, "reason": "oil change"}
        ),
        "/api/ingest": json_body(push_body("press_02")),
        "/api/sites/Berlin/plan": ("image/png", png()),
        "/api/inventory/machines": json_body(new_machine),
        "/api/inventory/machines/new_01": json_body(new_machine | {"name": "New one"}),
        "/api/inventory/import": ("application/yaml", b"- id: imported_01\n  url: http://127.0.0.1:9/m\n"),
    }
    if method == "PATCH":
        bodies[path] = ("application/merge-patch+json", json.dumps({"name": "Renamed"}).encode())
    content_type, content = bodies.get(path, ("", b""))
    headers = {"Content-Type": content_type} if content_type else {}
    if path.startswith("/api/inventory/") and method != "GET":
        # Edits name the version of the file they change (no ETag for a caller who may not read it).
        etag = client.get("/api/inventory/machines").headers.get("ETag")
        if etag:
            headers["If-Match"] = etag
    if method in ("POST", "PUT", "PATCH", "DELETE") and (content or headers):
        return client.request(method, path, content=content, headers=headers).status_code
    return client.request(method, path).status_code


def json_body(value: object) -> tuple[str, bytes]:
    return "application/json", json.dumps(value).encode()


def expected(caller: str, method: str, path: str, who: str) -> int:
    status = CALLERS[caller][who]
    return DONE.get(f"{method} {path}", 200) if status == 200 else status


@pytest.mark.parametrize("caller", list(CALLERS))
def test_every_route_answers_each_caller_as_its_role_allows(
    keyed: Server, accounts: Accounts, caller: str
) -> None:
    with client_for(caller, keyed, accounts) as client:
        got = {f"{m} {p}": call(client, keyed.base, m, p) for m, p, _ in ROUTES}
    assert got == {f"{m} {p}": expected(caller, m, p, who) for m, p, who in ROUTES}


def test_the_table_above_holds_every_route_the_server_has(server: str) -> None:
    # A route added later without its line in ROUTES fails here, not in production.
    spec = httpx.get(f"{server}/api/openapi.json").json()
    tested = [(m, p) for m, p, _ in ROUTES]

    def covered(method: str, template: str) -> bool:
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        return any(m == method and re.match(pattern, p.split("?")[0]) for m, p in tested)

    untested = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete") and not covered(method.upper(), path)
    ]
    assert untested == []


def test_anonymous_read_opens_reading_and_nothing_else(
    state: FleetState, serve: Callable[..., str], accounts: Accounts, tmp_path: Path
) -> None:
    base = start(serve, state, accounts, tmp_path, anonymous_read=True).base
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/api/auth/me").json() == {"name": None, "role": "viewer", "kind": "anonymous"}
        got = {f"{m} {p}": call(client, base, m, p) for m, p, _ in ROUTES}
    assert got == {
        f"{m} {p}": DONE.get(f"{m} {p}", 200) if who in ("open", "viewer") else 401 for m, p, who in ROUTES
    }
    # A wrong token is refused even so: its script must learn that the token is bad.
    assert httpx.get(f"{base}/api/machines", headers=bearer(BAD_TOKEN)).status_code == 401


def test_who_acknowledges_and_who_changes_windows_is_recorded_by_name(
    server: str, accounts: Accounts
) -> None:
    with login(server, *VIEWER) as vic:
        acked = vic.post("/api/alerts/1/ack", json={"reason": "crew on the way"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged"]["by"] == VIEWER[0]
    admin = bearer(accounts.admin_token)
    assert httpx.delete(f"{server}/api/maintenance/1", headers=admin).status_code == 204
    audit = httpx.get(f"{server}/api/alerts/audit", headers=admin).json()["audit"]
    # A token is recorded as such: a user and a token may share a name.
    assert [(a["actor"], a["action"]) for a in audit[:2]] == [
        ("token:automation", "maintenance.delete"),
        (VIEWER[0], "alert.acknowledge"),
    ]


def test_401_asks_for_credentials_and_403_names_the_missing_role(server: str, accounts: Accounts) -> None:
    anonymous = httpx.get(f"{server}/api/machines")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert anonymous.json() == {"detail": "authentication required"}
    viewer = httpx.get(f"{server}/api/admin/users", headers=bearer(accounts.viewer_token))
    assert viewer.status_code == 403
    assert viewer.json() == {"detail": "admin role required"}


def test_metrics_can_be_opened_by_a_setting(
    state: FleetState, serve: Callable[..., str], accounts: Accounts
) -> None:
    base = serve(state, store=accounts.store, anonymous_read=False, metrics_anonymous=True)
    assert httpx.get(f"{base}/metrics").status_code == 200
    assert httpx.get(f"{base}/api/machines").status_code == 401


def test_the_openapi_description_lists_both_security_schemes(server: str) -> None:
    spec = httpx.get(f"{server}/api/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "API token: `millwatch token create NAME`",
    }
    assert schemes["session"]["type"] == "apiKey"
    assert schemes["session"]["in"] == "cookie" and schemes["session"]["name"] == "millwatch_session"
    assert {"bearer": []} in spec["paths"]["/api/machines"]["get"]["security"]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_a_revoked_token_stops_working_at_once(server: str, accounts: Accounts) -> None:
    token = accounts.auth.create_token("short-lived", Role.VIEWER)
    assert httpx.get(f"{server}/api/machines", headers=bearer(token)).status_code == 200
    with login(server, *ADMIN) as admin:
        assert admin.delete("/api/admin/tokens/short-lived").status_code == 204
        assert admin.delete("/api/admin/tokens/short-lived").status_code == 404
    assert httpx.get(f"{server}/api/machines", headers=bearer(token)).status_code == 401


def test_token_list_shows_use_but_never_the_token(server: str, accounts: Accounts) -> None:
    assert httpx.get(f"{server}/api/machines", headers=bearer(accounts.viewer_token)).status_code == 200
    answer = httpx.get(f"{server}/api/admin/tokens", headers=bearer(accounts.admin_token))
    tokens = {t["name"]: t for t in answer.json()["tokens"]}
    assert set(tokens) == {"grafana", "automation", "old-ci"}
    assert tokens["grafana"]["role"] == "viewer" and tokens["grafana"]["last_used_at"] is not None
    assert accounts.viewer_token not in answer.text and accounts.admin_token not in answer.text
    assert set(tokens["grafana"]) == {"name", "role", "created_at", "last_used_at"}
