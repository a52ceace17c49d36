"""The inventory editor's API over a real uvicorn: reads with an ETag, changes with If-Match,
validation as `millwatch check`, comments kept, access control, audit."""

from __future__ import annotations

from pathlib import Path

import pytest
from auth_helpers import ADMIN, Accounts, login
from inventory_helpers import COMMENTED, Editing, start_editing

from scraper.state import FleetState
from server.inventory_edit import etag_of

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


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """The lines only in `before` and only in `after` (difflib's - and + lines)."""
    import difflib

    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def test_patch_changes_only_the_lines_of_the_edited_value(editing: Editing) -> None:
    etag = editing.etag()
    with editing.admin() as admin:
        answer = admin.patch(
            "/api/inventory/machines/lathe_02",
            json={"enabled": False, "scrape_interval": "10s", "labels": {"line": "turning"}},
            headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["machine"]["scrape_interval"] == "10s"
    removed, added = _changed_lines(COMMENTED, editing.path.read_text())
    assert removed == ["    scrape_interval: 5s"]
    # The new keys go where the file's order puts them; the end-of-line comment stays on its line.
    assert added == ["    labels: {line: turning}", "    scrape_interval: 10s", "    enabled: false"]
    assert "    url: http://127.0.0.1:9/metrics   # behind the hall switch\n" in editing.path.read_text()


def test_put_replaces_an_entry_keeping_its_own_comments_and_the_next_ones(editing: Editing) -> None:
    etag = editing.etag()
    with editing.admin() as admin:
        current = admin.get("/api/inventory/machines/press_01").json()
        wanted = {**current, "plan_position": {"x": 0.25, "y": 0.75}}
        del wanted["labels"]
        answer = admin.put("/api/inventory/machines/press_01", json=wanted, headers={"If-Match": etag})
        assert answer.status_code == 200, answer.text
        assert answer.json()["machine"] == wanted
    text = editing.path.read_text()
    removed, added = _changed_lines(COMMENTED, text)
    assert removed == ["    labels: {line: pressing, hall: '1'}"]
    assert added == ["    plan_position: {x: 0.25, y: 0.75}"]
    # The quotes, the end-of-line comment, the commented-out key inside and the comment above the
    # next machine are all still there.
    assert '  - id: press_01                      # the old press\n    name: "Press 01"\n' in text
    assert "      # owner: maintenance team A (ask before changing)\n\n  # Hall 2: the lathes" in text


def test_delete_removes_the_entry_and_keeps_the_comments_around_it(editing: Editing) -> None:
    etag = editing.etag()
    with editing.admin() as admin:
        answer = admin.delete("/api/inventory/machines/lathe_02", headers={"If-Match": etag})
        assert answer.status_code == 204, answer.text
        assert answer.headers["etag"] != etag
        assert admin.get("/api/inventory/machines/lathe_02").status_code == 404
        assert (
            admin.delete(
                "/api/inventory/machines/lathe_02", headers={"If-Match": answer.headers["etag"]}
            ).status_code
            == 404
        )
    removed, added = _changed_lines(COMMENTED, editing.path.read_text())
    assert added == []
    assert removed == [
        "  - id: lathe_02",
        "    name: Lathe 02",
        "    url: http://127.0.0.1:9/metrics   # behind the hall switch",
        "    site: Berlin",
        "    scrape_interval: 5s",
        "    auth: {bearer_token_file: /etc/millwatch/lathe_02.token}",
    ]
    # The comment above it stays: it may be about more than this machine (delete it in the file).
    assert "  # Hall 2: the lathes, scraped more often.\n" in editing.path.read_text()


def test_a_change_without_if_match_is_428_and_a_stale_one_412_with_the_other_change(editing: Editing) -> None:
    etag = editing.etag()
    with editing.admin() as admin:
        missing = admin.patch("/api/inventory/machines/mill_03", json={"enabled": True})
        assert missing.status_code == 428
        assert "If-Match" in missing.json()["detail"]
        # Another admin changes the machine first.
        first = admin.patch(
            "/api/inventory/machines/mill_03", json={"name": "Mill 03"}, headers={"If-Match": etag}
        )
        assert first.status_code == 200
        stale = admin.patch(
            "/api/inventory/machines/mill_03", json={"enabled": True}, headers={"If-Match": etag}
        )
        assert stale.status_code == 412
        body = stale.json()
        assert body["current"]["name"] == "Mill 03"
        assert body["etag"] == first.json()["etag"]
        assert stale.headers["etag"] == f'"{first.json()["etag"]}"'
        # Nothing of the stale change reached the file.
        assert "enabled: false" in editing.path.read_text()
        # A wildcard does not stand for "whatever is there".
        assert admin.delete("/api/inventory/machines/mill_03", headers={"If-Match": "*"}).status_code == 412
        assert editing.path.read_text().count("- id:") == 3


def test_an_edit_on_disk_between_read_and_write_is_412(editing: Editing) -> None:
    with editing.admin() as admin:
        read = admin.get("/api/inventory/machines/press_01")
        etag = read.headers["etag"]
        # Someone edits the file on the server meanwhile.
        edited = COMMENTED.replace('name: "Press 01"', 'name: "Press 01 (hall 1)"')
        editing.path.write_text(edited)
        answer = admin.put(
            "/api/inventory/machines/press_01",
            json={**read.json(), "enabled": False},
            headers={"If-Match": etag},
        )
        assert answer.status_code == 412
        assert answer.json()["current"]["name"] == "Press 01 (hall 1)"
        assert editing.path.read_text() == edited
        # With the new ETag the same change goes through, on top of the edit on disk.
        again = admin.patch(
            "/api/inventory/machines/press_01",
            json={"enabled": False},
            headers={"If-Match": answer.json()["etag"]},
        )
        assert again.status_code == 200
        assert again.json()["machine"]["name"] == "Press 01 (hall 1)"


def test_a_taken_id_is_409(editing: Editing) -> None:
    etag = editing.etag()
    with editing.admin() as admin:
        twice = admin.post(
            "/api/inventory/machines", json={**NEW, "id": "press_01"}, headers={"If-Match": etag}
        )
        assert twice.status_code == 409
        assert "press_01" in twice.json()["detail"]
        rename = admin.patch(
            "/api/inventory/machines/mill_03", json={"id": "lathe_02"}, headers={"If-Match": etag}
        )
        assert rename.status_code == 409
    assert editing.path.read_text() == COMMENTED


def test_refusals_are_422_with_the_field_path_in_the_entry_and_change_nothing(editing: Editing) -> None:
    etag = editing.etag()
    bad = {
        **NEW,
        "id": "Drill 04",
        "location": {"lat": 91, "lon": 4.83},
        "colour": "red",
        "scrape_interval": "soon",
        "plan_position": {"x": 1.5, "y": 0.5},
    }
    with editing.admin() as admin:
        answer = admin.post("/api/inventory/machines", json=bad, headers={"If-Match": etag})
        assert answer.status_code == 422, answer.text
        problems = {tuple(p["loc"]): p["msg"] for p in answer.json()["detail"]}
        assert set(problems) == {
            ("id",),
            ("location", "lat"),
            ("colour",),
            ("scrape_interval",),
            ("plan_position", "x"),
        }, problems
        assert "lowercase" in problems[("id",)]
        assert "90" in problems[("location", "lat")]
        assert "unknown key" in problems[("colour",)]
        # A plan position needs a site; a pulled machine needs a url.
        answer = admin.patch(
            "/api/inventory/machines/mill_03",
            json={"site": None, "url": None, "plan_position": {"x": 0.5, "y": 0.5}},
            headers={"If-Match": etag},
        )
        assert answer.status_code == 422
        assert {tuple(p["loc"]) for p in answer.json()["detail"]} == {("plan_position",), ("url",)}
        assert all(p["machine"] == "mill_03" for p in answer.json()["detail"])
        # Not JSON, not an object, too large, the wrong type.
        assert (
            admin.post(
                "/api/inventory/machines",
                content=b"{nope",
                headers={"If-Match": etag, "Content-Type": "application/json"},
            ).status_code
            == 422
        )
        assert admin.post("/api/inventory/machines", json=[1], headers={"If-Match": etag}).status_code == 422
        assert (
            admin.post(
                "/api/inventory/machines", json={"id": "x", "name": "n" * 70_000}, headers={"If-Match": etag}
            ).status_code
            == 413
        )
        assert (
            admin.post(
                "/api/inventory/machines",
                content=b"id: x",
                headers={"If-Match": etag, "Content-Type": "text/plain"},
            ).status_code
            == 415
        )
    assert editing.path.read_text() == COMMENTED


def test_viewers_get_403_and_anonymous_401_on_every_route(editing: Editing) -> None:
    etag = editing.etag()
    calls = [
        ("GET", "/api/inventory/machines", None),
        ("GET", "/api/inventory/machines/press_01", None),
        ("POST", "/api/inventory/machines", NEW),
        ("PUT", "/api/inventory/machines/press_01", NEW),
        ("PATCH", "/api/inventory/machines/press_01", {"enabled": False}),
        ("DELETE", "/api/inventory/machines/press_01", None),
        ("POST", "/api/inventory/import", None),
        ("GET", "/api/audit", None),
    ]
    for client, status in ((editing.viewer(), 403), (editing.anonymous(), 401)):
        with client:
            for method, path, body in calls:
                answer = client.request(method, path, json=body, headers={"If-Match": etag})
                assert answer.status_code == status, (method, path, answer.text)
                assert "etag" not in answer.headers
    assert editing.path.read_text() == COMMENTED


def test_a_session_needs_its_csrf_header_and_is_audited_under_its_login(editing: Editing) -> None:
    etag = editing.etag()
    with login(editing.base, *ADMIN) as session:
        without = session.post(
            "/api/inventory/machines", json=NEW, headers={"If-Match": etag, "X-CSRF-Token": ""}
        )
        assert without.status_code == 403
        answer = session.post("/api/inventory/machines", json=NEW, headers={"If-Match": etag})
        assert answer.status_code == 201, answer.text
        audit = session.get("/api/audit").json()["audit"]
    assert audit[0]["actor"] == ADMIN[0]
    assert audit[0]["action"] == "machine.create"
    assert audit[0]["machine"] == "drill_04"


def test_every_change_is_audited_with_a_diff_and_secrets_masked(
    serve, state, accounts, tmp_path: Path
) -> None:
    # A file on disk with an inline password (not valid: it is refused on reload, but it is there).
    secret = "hunter2-secret"
    text = COMMENTED.replace(
        "  - id: mill_03\n",
        f"  - id: mill_03\n    auth: {{basic: {{username: svc, password: {secret}}}}}\n",
    )
    editing = start_editing(serve, state, accounts, tmp_path, text)
    with editing.admin() as admin:
        listing = admin.get("/api/inventory/machines")
        assert secret not in listing.text
        body = listing.json()
        mill = body["machines"][2]
        assert mill["auth"] == {"basic": {"username": "svc", "password": "***"}}
        assert any(p["machine"] == "mill_03" and "password" in p["msg"] for p in body["problems"])
        etag = listing.headers["etag"]
        # Any other change is refused while the file has that problem ...
        other = admin.patch(
            "/api/inventory/machines/press_01", json={"enabled": False}, headers={"If-Match": etag}
        )
        assert other.status_code == 422
        assert other.json()["detail"][0]["loc"][:3] == ["inventory", "machines", 2]
        assert secret not in other.text
        # ... and repairing it is a change like any other.
        fixed = admin.patch(
            "/api/inventory/machines/mill_03",
            json={"auth": {"basic": {"password": None, "password_file": "mill.pw"}}},
            headers={"If-Match": etag},
        )
        assert fixed.status_code == 200, fixed.text
        etag = fixed.json()["etag"]
        created = admin.post("/api/inventory/machines", json=NEW, headers={"If-Match": etag})
        etag = created.json()["etag"]
        assert admin.delete("/api/inventory/machines/drill_04", headers={"If-Match": etag}).status_code == 204
        audit = admin.get("/api/audit").json()
    assert secret not in str(audit)
    rows = audit["audit"]
    assert [(r["action"], r["machine"], r["actor"]) for r in rows] == [
        ("machine.delete", "drill_04", "token:automation"),
        ("machine.create", "drill_04", "token:automation"),
        ("machine.update", "mill_03", "token:automation"),
    ]
    update = rows[2]["detail"]
    assert "-  basic: {username: svc, password: '***'}\n" in update, update
    assert "+  basic: {username: svc, password_file: mill.pw}\n" in update, update
    assert "\n+id: drill_04\n+name: Drill 04\n" in rows[1]["detail"]
    assert rows[0]["detail"].startswith("--- drill_04 (before)\n+++ drill_04 (after)\n")
    assert all(r["source"] == "inventory" and r["time"] > 0 for r in rows)


def test_a_file_that_is_not_yaml_is_reported_and_not_edited(editing: Editing) -> None:
    broken = COMMENTED.replace("  - id: mill_03\n", "  - id: mill_03\n    name: [unclosed\n")
    editing.path.write_text(broken)
    with editing.admin() as admin:
        answer = admin.get("/api/inventory/machines")
        assert answer.status_code == 409
        assert "machines.yaml:" in answer.json()["detail"] and "repair" in answer.json()["detail"]
        etag = f'"{etag_of(broken.encode())}"'
        patch = admin.patch(
            "/api/inventory/machines/press_01", json={"enabled": False}, headers={"If-Match": etag}
        )
        assert patch.status_code == 409
    assert editing.path.read_text() == broken


def test_of_admins_writing_at_once_against_one_etag_exactly_one_wins(editing: Editing) -> None:
    from concurrent.futures import ThreadPoolExecutor

    etag = editing.etag()

    def change(n: int) -> int:
        with editing.admin() as admin:
            answer = admin.patch(
                "/api/inventory/machines/press_01",
                json={"name": f"Press by admin {n}"},
                headers={"If-Match": etag},
            )
            return answer.status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(change, range(6)))
    assert statuses == [200, 412, 412, 412, 412, 412]
    assert editing.path.read_text().count("Press by admin") == 1
