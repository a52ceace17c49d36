"""Sites and floor plans over the API: counts per status, upload, serving, and what is refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from auth_helpers import Accounts
from inventory_helpers import Editing, start_editing
from PIL import Image
from server_helpers import make_view

from scraper.state import FleetState, Status

ODD_SITE = "../../Hall 2/East <b>"


def image(kind: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, format=kind)
    return out.getvalue()


@pytest.fixture
def editing(serve, state: FleetState, accounts: Accounts, tmp_path: Path) -> Editing:
    # The server without a scraper shows what the store holds (as beside `millwatch scrape`).
    accounts.store.save_views(
        [
            make_view("press_01", site="Berlin", status=Status.UP),
            make_view("lathe_02", site="Berlin", status=Status.ALARM),
            make_view("mill_03", site=ODD_SITE, status=Status.DOWN),
            make_view("loose_04", site=None),
        ]
    )
    return start_editing(serve, state, accounts, tmp_path)


def _plan_path(site: str) -> str:
    from urllib.parse import quote

    return f"/api/sites/{quote(site, safe='')}/plan"


def test_sites_list_counts_and_plans(editing: Editing) -> None:
    with editing.viewer() as viewer:
        answer = viewer.get("/api/sites")
    assert answer.status_code == 200
    sites = {s["name"]: s for s in answer.json()["sites"]}
    assert set(sites) == {"Berlin", ODD_SITE}
    berlin = sites["Berlin"]
    assert berlin["machines"] == 2
    assert berlin["counts"]["up"] == 1 and berlin["counts"]["alarm"] == 1 and berlin["counts"]["down"] == 0
    assert set(berlin["counts"]) == {s.value for s in Status}
    assert berlin["plan"] is None
    with editing.anonymous() as anonymous:
        assert anonymous.get("/api/sites").status_code == 401


@pytest.mark.parametrize(
    ("kind", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
def test_a_plan_is_uploaded_served_listed_and_deleted(editing: Editing, kind: str, content_type: str) -> None:
    data = image(kind, (64, 48))
    with editing.admin() as admin:
        put = admin.put(_plan_path(ODD_SITE), content=data, headers={"Content-Type": content_type})
        assert put.status_code == 200, put.text
        plan = put.json()
        assert (plan["width"], plan["height"]) == (64, 48)
        audit = admin.get("/api/audit").json()["audit"][0]
    assert (audit["action"], audit["target"], audit["actor"]) == (
        "plan.upload",
        f"site:{ODD_SITE}",
        "token:automation",
    )
    # The site's name never became a path: the files are named by a hash, inside the plans folder.
    files = sorted(p.name for p in (editing.data_dir / "plans").iterdir())
    assert len(files) == 2 and all(len(name.split(".")[0]) >= 40 for name in files), files
    with editing.viewer() as viewer:
        got = viewer.get(_plan_path(ODD_SITE))
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == content_type
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["etag"] == f'"{plan["etag"]}"'
        cached = viewer.get(_plan_path(ODD_SITE), headers={"If-None-Match": got.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b""
        listed = {s["name"]: s for s in viewer.get("/api/sites").json()["sites"]}
        assert listed[ODD_SITE]["plan"] == plan
        # A viewer may look, not change.
        assert (
            viewer.put(_plan_path(ODD_SITE), content=data, headers={"Content-Type": content_type}).status_code
            == 403
        )
        assert viewer.delete(_plan_path(ODD_SITE)).status_code == 403
    with editing.admin() as admin:
        assert admin.delete(_plan_path(ODD_SITE)).status_code == 204
        assert admin.get(_plan_path(ODD_SITE)).status_code == 404
        assert admin.delete(_plan_path(ODD_SITE)).status_code == 404
        assert admin.get("/api/audit").json()["audit"][0]["action"] == "plan.delete"
    assert list((editing.data_dir / "plans").iterdir()) == []


def test_a_new_plan_replaces_the_old_one(editing: Editing) -> None:
    with editing.admin() as admin:
        first = admin.put(
            _plan_path("Berlin"), content=image("PNG"), headers={"Content-Type": "image/png"}
        ).json()
        second = admin.put(
            _plan_path("Berlin"), content=image("JPEG", (80, 20)), headers={"Content-Type": "image/jpeg"}
        ).json()
        assert first["etag"] != second["etag"]
        got = admin.get(_plan_path("Berlin"))
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["etag"] == f'"{second["etag"]}"'
    assert len(list((editing.data_dir / "plans").iterdir())) == 2


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (SVG, "image/svg+xml", 415),
        (SVG, "image/png", 415),  # an SVG that says it is a PNG
        (b"<html><script>alert(1)</script></html>", "image/png", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png", 422),  # a PNG's signature, no image
        (image("PNG"), "text/plain", 415),
        (image("GIF"), "image/png", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024), "image/png", 413),
    ],
)
def test_anything_but_a_png_jpeg_or_webp_of_at_most_5_mib_is_refused(
    editing: Editing, body: bytes, content_type: str, status: int
) -> None:
    with editing.admin() as admin:
        answer = admin.put(_plan_path("Berlin"), content=body, headers={"Content-Type": content_type})
        assert answer.status_code == status, answer.text
        assert admin.get(_plan_path("Berlin")).status_code == 404
        assert admin.get("/api/audit").json()["audit"] == []


def test_a_plan_larger_than_a_browser_can_draw_is_refused(editing: Editing) -> None:
    # A few KiB of PNG that would decode to 81 million pixels; one 20,001 pixels wide; one that
    # Pillow itself calls a decompression bomb.
    for size in ((9_000, 9_000), (20_001, 1), (20_000, 20_000)):
        out = io.BytesIO()
        Image.new("1", size).save(out, format="PNG")
        with editing.admin() as admin:
            answer = admin.put(
                _plan_path("Berlin"), content=out.getvalue(), headers={"Content-Type": "image/png"}
            )
        assert answer.status_code == 422, size
        assert "pixels" in answer.json()["detail"]


def test_unknown_sites_are_404(editing: Editing) -> None:
    with editing.admin() as admin:
        answer = admin.put(
            _plan_path("Atlantis"), content=image("PNG"), headers={"Content-Type": "image/png"}
        )
        assert answer.status_code == 404
        assert admin.get(_plan_path("Atlantis")).status_code == 404
        # A site only in machines.yaml (added, not yet reloaded by a scraper) takes a plan.
        assert (
            admin.put(
                _plan_path("Lyon"), content=image("PNG"), headers={"Content-Type": "image/png"}
            ).status_code
            == 200
        )


def test_the_data_folder_is_beside_the_database_or_the_inventory_unless_set() -> None:
    from server.settings import Settings

    assert Settings(database_url="sqlite:////var/lib/mw/millwatch.db").effective_data_dir() == Path(
        "/var/lib/mw/millwatch-data"
    )
    postgres = Settings(database_url="postgresql+psycopg://u@db/mw", inventory=Path("/etc/mw/machines.yaml"))
    assert postgres.effective_data_dir() == Path("/etc/mw/millwatch-data")
    assert Settings(data_dir=Path("/srv/plans")).effective_data_dir() == Path("/srv/plans")
