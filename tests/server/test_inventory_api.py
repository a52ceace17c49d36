"""The inventory editor's API over a real uvicorn: reads with an ETag, changes with If-Match,
validation as `millwatch check`, comments kept, access control, audit."""

from __future__ import annotations

from pathlib import Path

import pytest
from auth_helpers import Accounts
from inventory_helpers import COMMENTED, Editing, start_editing

from scraper.state import FleetState

NEW = {
    "id": "drill_04",
    "name": "Drill 04",
    "url": "http://127.0.0.1:9/metrics",
    "site": "Lyon",
    "location": {"lat": 45.76, "lon": 4.83},
    "labels": {"line": "drilling"},
}


@pytest.fixture
def editing(serve, state: FleetState, accounts: Accounts, tmp_path: Path) -> Editing:
    return start_editing(serve, state, accounts, tmp_path)


def test_list_and_one_machine_as_written_with_the_files_etag(editing: Editing) -> None:
    with editing.admin() as admin:
        answer = admin.get("/api/inventory/machines")
        assert answer.status_code == 200
        body = answer.json()
        assert answer.headers["etag"] == f'"{body["etag"]}"'
        assert [m["id"] for m in body["machines"]] == ["press_01", "lathe_02", "mill_03"]
        # As written: durations as text, no defaults filled in, file paths shown.
        lathe = body["machines"][1]
        assert lathe["scrape_interval"] == "5s"
        assert lathe["auth"] == {"bearer_token_file": "/etc/millwatch/lathe_02.token"}
        assert "thresholds" not in lathe
        assert body["problems"] == []
        one = admin.get("/api/inventory/machines/mill_03")
        assert one.status_code == 200
        assert one.json() == {
            "id": "mill_03",
            "url": "http://127.0.0.1:9/metrics",
            "site": "Lyon",
            "enabled": False,
        }
        assert one.headers["etag"] == answer.headers["etag"]
        assert admin.get("/api/inventory/machines/nope").status_code == 404


def test_create_keeps_every_comment_and_byte_of_the_file(editing: Editing) -> None:
    etag = editing.etag()
    with editing.admin() as admin:
        answer = admin.post("/api/inventory/machines", json=NEW, headers={"If-Match": etag})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["machine"]["id"] == "drill_04"
        assert answer.headers["etag"] == f'"{body["etag"]}"' != etag
    text = editing.path.read_text()
    # Everything before is unchanged byte for byte; the new entry follows the last one, before the
    # comment that ends the list.
    head, _, tail = COMMENTED.partition("# end of the list")
    assert text.startswith(head.rstrip("\n") + "\n")
    assert text.endswith("# end of the list" + tail)
    added = text[len(head.rstrip("\n")) + 1 : -len("# end of the list" + tail)]
    assert added == (
        "\n"
        "  - id: drill_04\n"
        "    name: Drill 04\n"
        "    url: http://127.0.0.1:9/metrics\n"
        "    site: Lyon\n"
        "    location: {lat: 45.76, lon: 4.83}\n"
        "    labels: {line: drilling}\n"
    )
