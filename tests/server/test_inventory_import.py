"""The bulk import over the API: YAML and CSV, all or nothing, refusals with row and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from auth_helpers import Accounts
from inventory_helpers import COMMENTED, Editing, start_editing

from scraper.inventory import parse_inventory
from scraper.state import FleetState


@pytest.fixture
def editing(serve, state: FleetState, accounts: Accounts, tmp_path: Path) -> Editing:
    return start_editing(serve, state, accounts, tmp_path)


def _import(editing: Editing, body: str, content_type: str, etag: str | None = None):
    with editing.admin() as admin:
        headers = {"Content-Type": content_type}
        if etag is not False:
            headers["If-Match"] = etag or editing.etag()
        return admin.post("/api/inventory/import", content=body.encode(), headers=headers)


def test_yaml_import_adds_and_replaces_by_id(editing: Editing) -> None:
    body = (
        "machines:\n"
        "  - id: mill_03          # replaced whole: enabled again, a name\n"
        "    name: Mill 03\n"
        "    url: http://127.0.0.1:9/metrics\n"
        "    site: Lyon\n"
        "  - id: saw_05\n"
        "    url: http://127.0.0.1:9/metrics\n"
        "    location: {lat: 48.1, lon: 11.6}\n"
    )
    answer = _import(editing, body, "application/yaml")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["created"], result["updated"]) == (["saw_05"], ["mill_03"])
    assert answer.headers["etag"] == f'"{result["etag"]}"'
    inventory = parse_inventory(editing.path.read_text())
    assert [m.id for m in inventory.machines] == ["press_01", "lathe_02", "mill_03", "saw_05"]
    assert inventory.get("mill_03").enabled is True  # type: ignore[union-attr]
    # Untouched machines kept their text; a bare list is accepted too.
    assert COMMENTED.split("  - id: mill_03")[0] in editing.path.read_text()
    again = _import(editing, "- id: saw_05\n  url: http://127.0.0.1:9/metrics\n  site: Munich\n", "text/yaml")
    assert again.json()["updated"] == ["saw_05"]
    with editing.admin() as admin:
        audit = admin.get("/api/audit").json()["audit"]
    assert [(r["action"], r["machine"]) for r in audit] == [
        ("machine.import", "saw_05"),
        ("machine.import", "saw_05"),
        ("machine.import", "mill_03"),
    ]


def test_csv_import_updates_only_its_columns(editing: Editing) -> None:
    body = (
        "id,name,url,site,lat,lon,labels,enabled,plan_x,plan_y\r\n"
        "lathe_02,Lathe 2,http://127.0.0.1:9/metrics,Berlin,52.5,13.4,line=turning;hall=2,yes,0.1,0.9\r\n"
        "saw_05,,http://127.0.0.1:9/metrics,Munich,,,,false,,\r\n"
    )
    answer = _import(editing, body, "text/csv; charset=utf-8")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["created"], answer.json()["updated"]) == (["saw_05"], ["lathe_02"])
    inventory = parse_inventory(editing.path.read_text())
    lathe = inventory.get("lathe_02")
    assert lathe is not None
    assert (lathe.name, lathe.labels, lathe.enabled) == ("Lathe 2", {"line": "turning", "hall": "2"}, True)
    assert lathe.plan_position is not None and (lathe.plan_position.x, lathe.plan_position.y) == (0.1, 0.9)
    # What CSV cannot say is kept: the token file and the interval.
    assert lathe.auth is not None and lathe.auth.bearer_token_file == "/etc/millwatch/lathe_02.token"
    assert lathe.scrape_interval_seconds == 5.0
    saw = inventory.get("saw_05")
    assert saw is not None and (saw.name, saw.site, saw.enabled, saw.location) == (
        "saw_05",
        "Munich",
        False,
        None,
    )


@pytest.mark.parametrize(
    ("body", "content_type", "row", "loc", "words"),
    [
        (
            "id,url,lat,lon\nok_1,http://127.0.0.1:9/m,1,2\nbad_2,http://127.0.0.1:9/m,north,2\n",
            "text/csv",
            3,
            ["location", "lat"],
            "number",
        ),
        ("id,colour\nx,red\n", "text/csv", 1, ["colour"], "unknown column"),
        ("id,url\na,http://127.0.0.1:9/m\na,http://127.0.0.1:9/m\n", "text/csv", 3, ["id"], "duplicate"),
        ("id,url,labels\na,http://127.0.0.1:9/m,line\n", "text/csv", 2, ["labels"], "key=value"),
        ("id,url,enabled\na,http://127.0.0.1:9/m,perhaps\n", "text/csv", 2, ["enabled"], "true or false"),
        # Valid shape, refused by the inventory's rules: the row and the field path are given.
        (
            "id,url\nok_1,http://127.0.0.1:9/m\nBad Id,http://127.0.0.1:9/m\n",
            "text/csv",
            3,
            ["id"],
            "lowercase",
        ),
        (
            "- id: ok_1\n  url: http://127.0.0.1:9/m\n- id: x\n  url: ftp://x\n",
            "application/yaml",
            2,
            ["url"],
            "http",
        ),
        ("- id: x\n  url: http://127.0.0.1:9/m\n- name: no id\n", "application/yaml", 2, ["id"], "required"),
    ],
)
def test_bad_rows_refuse_the_whole_import_with_row_and_field(
    editing: Editing, body: str, content_type: str, row: int, loc: list[str], words: str
) -> None:
    answer = _import(editing, body, content_type)
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert (problem["row"], problem["loc"]) == (row, loc), problem
    assert words in problem["msg"]
    assert editing.path.read_text() == COMMENTED


def test_import_needs_if_match_a_known_type_and_a_bounded_body(editing: Editing) -> None:
    body = "- id: a\n  url: http://127.0.0.1:9/m\n"
    assert _import(editing, body, "application/yaml", etag=False).status_code == 428
    assert _import(editing, body, "application/yaml", etag='"0000"').status_code == 412
    assert _import(editing, body, "application/json").status_code == 415
    assert _import(editing, "x" * (2 * 1024 * 1024 + 1), "text/csv").status_code == 413
    assert _import(editing, "defaults: {}\nmachines: []\n", "application/yaml").status_code == 422
    assert editing.path.read_text() == COMMENTED
