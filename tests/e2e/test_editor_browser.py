"""The admins' inventory editor in a real browser (Debian's Chromium through Playwright) against a
real `millwatch serve` whose machines.yaml is full of comments: an admin adds a machine from the
page and the file keeps every comment; a second admin's change makes the first one's stale write
a 412 that the page explains; a viewer never sees the editor and the server refuses them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect
from support import MillwatchProcess, closed_port_url, run_millwatch, wait_until

from scraper.inventory import load_inventory

pytestmark = pytest.mark.browser

XSS_NAME = "<img src=x onerror=alert(1)>"
VIEW = "#map=6/50.5/11"
PASSWORDS = {"ada": "ada-password-1", "bob": "bob-password-1", "vic": "vic-password-1"}

INVENTORY = """\
# Fleet of the Berlin plant: kept in Git, reviewed like code.
# Every comment here must survive edits made from the page.

defaults:                 # applied to every machine
  scrape_interval: 1s     # fast, for the test
  scrape_timeout: 0.5s    # shorter than the interval

machines:
  # The big press in hall 2.
  - id: press_14                        # never change an id
    name: Press 14                      # shown on the map
    url: {press_url}  # nothing listens: the press is down
    location: {{lat: 52.52, lon: 13.40}}  # Berlin
    site: Berlin                        # the plant
    labels: {{line: pressing}}            # free labels

  # A machine whose name looks like markup: the page must show it as text.
  - id: odd_name
    name: "{xss}"
    url: {odd_url}
    location: {{lat: 48.14, lon: 11.58}}  # Munich
# The end of the file has a comment too.
"""


def comments(text: str) -> list[str]:
    """Every comment of a YAML text (none of its values contains a '#')."""
    return [line[line.index("#") :].strip() for line in text.splitlines() if "#" in line]


@dataclass
class Server:
    base: str
    inventory: Path
    original: str


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    inventory = tmp_path / "machines.yaml"
    original = INVENTORY.format(press_url=closed_port_url(), odd_url=closed_port_url(), xss=XSS_NAME)
    inventory.write_text(original)
    db = f"sqlite:///{tmp_path / 'millwatch.db'}"
    for name, role in (("ada", "admin"), ("bob", "admin"), ("vic", "viewer")):
        added = run_millwatch(["user", "add", name, "--role", role, "--db", db], input=f"{PASSWORDS[name]}\n")
        assert added.returncode == 0, added.stderr
    args = ["serve", "--inventory", str(inventory), "--db", db, "--port", "0"]
    with MillwatchProcess(args, tmp_path, env={"MILLWATCH_ANONYMOUS_READ": "false"}) as process:
        port = process.wait_serving(timeout=90)
        base = f"http://127.0.0.1:{port}"
        process.wait_healthy(port)
        with httpx.Client(base_url=base) as client:
            login = client.post("/api/auth/login", json={"name": "ada", "password": PASSWORDS["ada"]})
            assert login.is_success, login.text
            if client.get("/api/inventory/machines").status_code == 404:
                pytest.skip("the server has no inventory routes (GET /api/inventory/machines is 404)")
        yield Server(base, inventory, original)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context
    context.close()


def log_in(page: Page, server: Server, name: str) -> None:
    page.goto(f"{server.base}/{VIEW}")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("account")).to_contain_text(f"Signed in as {name}", timeout=20_000)


def open_editor(page: Page) -> None:
    page.get_by_test_id("open-editor").click()
    expect(page.get_by_test_id("editor-list")).to_contain_text("press_14", timeout=20_000)


def csrf_of(page: Page, server: Server) -> str:
    token = page.request.get(f"{server.base}/api/auth/me").json()["csrf_token"]
    assert isinstance(token, str) and token
    return token


def test_admin_adds_a_machine_and_machines_yaml_keeps_every_comment(
    context: BrowserContext, server: Server
) -> None:
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    log_in(page, server, "ada")
    open_editor(page)

    # A name that looks like markup is shown as text, in the list and in the form.
    editor = page.get_by_test_id("editor")
    expect(editor.get_by_text(XSS_NAME, exact=True)).to_be_visible()
    expect(page.locator('img[src="x"]')).to_have_count(0)

    # A bad URL: the server's 422 appears beside the URL field and nothing is written.
    page.get_by_role("button", name="Add machine").click()
    page.locator("#mw-ed-id").fill("drill_7")
    page.locator("#mw-ed-name").fill("Drill 7")
    page.locator("#mw-ed-url").fill("ftp://10.0.0.7/metrics")
    page.locator("#mw-ed-site").fill("Frankfurt")
    # Placed by a click on the map (where the editor leaves it visible), then typed exactly.
    page.get_by_test_id("pick-on-map").click()
    box = page.locator(".mw-map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    expect(page.locator("#mw-ed-lat")).to_have_value(re.compile(r"^-?\d+(\.\d+)?$"))
    expect(page.locator("#mw-ed-lon")).to_have_value(re.compile(r"^-?\d+(\.\d+)?$"))
    expect(page.locator(".mw-place-marker")).to_have_count(1)
    page.locator("#mw-ed-lat").fill("50.11")
    page.locator("#mw-ed-lon").fill("8.68")
    page.get_by_role("button", name="Add label").click()
    page.locator("#mw-ed-label-0-key").fill("line")
    page.locator("#mw-ed-label-0-value").fill("drilling")
    page.get_by_test_id("machine-form").get_by_role("button", name="Add machine").click()
    expect(page.get_by_test_id("mw-ed-url-error")).to_be_visible(timeout=20_000)
    expect(page.locator("#mw-ed-url")).to_have_attribute("aria-invalid", "true")
    assert server.inventory.read_text() == server.original

    # Corrected, it is added: to the file, with every comment kept, and to the live map.
    page.locator("#mw-ed-url").fill(closed_port_url())
    page.get_by_test_id("machine-form").get_by_role("button", name="Add machine").click()
    expect(page.get_by_test_id("editor-status")).to_have_text("Added drill_7.", timeout=20_000)
    text = server.inventory.read_text()
    missing = [c for c in comments(server.original) if c not in text]
    assert missing == [], f"comments lost: {missing}"
    drill = load_inventory(server.inventory).get("drill_7")
    assert drill is not None
    assert (drill.name, drill.site, dict(drill.labels)) == ("Drill 7", "Frankfurt", {"line": "drilling"})
    assert drill.location is not None and (drill.location.lat, drill.location.lon) == (50.11, 8.68)
    expect(page.locator('.mw-marker[data-machine-id="drill_7"]')).to_have_count(1, timeout=30_000)

    # A CSV import: a bad row is named and nothing is written; the corrected file is imported.
    page.get_by_role("button", name="Import", exact=True).click()
    header = "id,name,url,site,lat,lon,labels\n"
    bad = header + f"mill_9,Mill 9,{closed_port_url()},Frankfurt,200,8.7,line=milling\n"
    page.locator("#mw-import-file").set_input_files(
        {"name": "mills.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    )
    page.get_by_role("button", name="Import the file").click()
    expect(page.get_by_test_id("import-problems")).to_contain_text("row 2", timeout=20_000)
    assert "mill_9" not in server.inventory.read_text()
    good = bad.replace(",200,", ",50.2,")
    page.locator("#mw-import-file").set_input_files(
        {"name": "mills.csv", "mimeType": "text/csv", "buffer": good.encode()}
    )
    page.get_by_role("button", name="Import the file").click()
    expect(page.get_by_test_id("import-done")).to_be_visible(timeout=20_000)
    mill = load_inventory(server.inventory).get("mill_9")
    assert mill is not None and mill.labels == {"line": "milling"}
    assert [c for c in comments(server.original) if c not in server.inventory.read_text()] == []

    # The audit log shows who did it.
    page.get_by_role("button", name="Audit log").click()
    expect(page.get_by_test_id("audit-table")).to_contain_text("drill_7", timeout=20_000)
    expect(page.get_by_test_id("audit-table")).to_contain_text("ada")
    assert dialogs == [], "a script ran from a machine's name"


def test_a_second_admins_change_makes_the_stale_write_a_412_shown_on_the_page(
    context: BrowserContext, browser: Browser, server: Server
) -> None:
    page = context.new_page()
    log_in(page, server, "ada")
    open_editor(page)
    page.get_by_role("button", name="Edit Press 14 (press_14)").click()
    page.locator("#mw-ed-name").fill("Press 14 (ada)")

    # Meanwhile bob, another admin in his own browser, renames the same machine.
    other = browser.new_context()
    try:
        bob = other.request
        login = bob.post(f"{server.base}/api/auth/login", data={"name": "bob", "password": PASSWORDS["bob"]})
        assert login.ok, login.text()
        listing = bob.get(f"{server.base}/api/inventory/machines")
        changed = bob.patch(
            f"{server.base}/api/inventory/machines/press_14",
            data='{"name": "Press 14 (bob)"}',
            headers={
                "Content-Type": "application/merge-patch+json",
                "If-Match": listing.headers["etag"],
                "X-CSRF-Token": login.json()["csrf_token"],
            },
        )
        assert changed.status == 200, changed.text()
    finally:
        other.close()

    # Ada's save was made on the old version: 412, explained with bob's change beside hers.
    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        page.get_by_role("button", name="Save").click()
    assert answer.value.status == 412
    conflict = page.get_by_test_id("conflict")
    expect(conflict).to_contain_text("Someone else changed this machine")
    expect(conflict.get_by_test_id("conflict-name")).to_contain_text("Press 14 (bob)")
    expect(conflict.get_by_test_id("conflict-name")).to_contain_text("Press 14 (ada)")
    assert load_inventory(server.inventory).get("press_14").name == "Press 14 (bob)"  # type: ignore[union-attr]

    # She re-applies hers on top of the current version and saves: now hers is in the file.
    conflict.get_by_role("button", name="Reload and re-apply my changes").click()
    expect(page.locator("#mw-ed-name")).to_have_value("Press 14 (ada)")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("editor-status")).to_have_text("Saved press_14.", timeout=20_000)
    text = server.inventory.read_text()
    assert "name: Press 14 (ada)" in text
    assert [c for c in comments(server.original) if c not in text] == []


def test_a_viewer_never_sees_the_editor_and_is_refused_the_same_request(
    context: BrowserContext, server: Server
) -> None:
    page = context.new_page()
    log_in(page, server, "vic")
    expect(page.get_by_test_id("account")).to_contain_text("(viewer)")
    expect(page.get_by_test_id("open-plans")).to_be_visible()
    expect(page.get_by_test_id("open-editor")).to_have_count(0)
    expect(page.get_by_test_id("editor")).to_have_count(0)

    # The request the admin's page makes to add a machine, sent with the viewer's own session.
    headers = {"If-Match": '"any"', "X-CSRF-Token": csrf_of(page, server)}
    added = page.request.post(
        f"{server.base}/api/inventory/machines",
        data={"id": "drill_7", "url": "http://10.0.0.7:9817/metrics"},
        headers=headers,
    )
    assert added.status == 403, added.text()
    assert re.search("admin", added.json()["detail"], re.IGNORECASE)
    assert page.request.get(f"{server.base}/api/inventory/machines").status == 403
    assert page.request.get(f"{server.base}/api/audit").status == 403
    assert server.inventory.read_text() == server.original


def test_admin_uploads_a_floor_plan_and_places_a_machine_on_it(
    context: BrowserContext, browser: Browser, server: Server, tmp_path: Path
) -> None:
    plan = tmp_path / "hall.png"
    Image.new("RGB", (800, 400), "white").save(plan)
    page = context.new_page()
    log_in(page, server, "ada")

    # The plan of Berlin: none yet; a text file is refused by the page, the PNG is uploaded.
    page.get_by_test_id("open-plans").click()
    page.get_by_test_id("plans").get_by_label("Site").select_option("Berlin")
    expect(page.get_by_test_id("plans")).to_contain_text("Berlin has no floor plan yet.", timeout=20_000)
    page.locator("#mw-plan-file").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_test_id("plans-notice")).to_have_text("A floor plan is a PNG, JPEG or WebP image.")
    page.locator("#mw-plan-file").set_input_files(str(plan))
    page.get_by_role("button", name="Upload", exact=True).click()
    notice = page.get_by_test_id("plans-notice")
    expect(notice).to_have_text("The floor plan of Berlin is uploaded.", timeout=20_000)
    floor = page.get_by_test_id("floor-plan")
    expect(floor.locator("img.leaflet-image-layer")).to_have_count(1)

    # Ada places Press 14 by clicking the middle of the plan, and saves.
    open_editor(page)
    page.get_by_role("button", name="Edit Press 14 (press_14)").click()
    page.get_by_role("button", name="Place on the floor plan of Berlin").click()
    # The middle of the plan image itself, once the editor's opening has stopped moving it.
    image = floor.locator("img.leaflet-image-layer")
    box = wait_until(lambda: _settled_box(image), 20, "the floor plan image to stop moving")
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#mw-ed-plan-x")).not_to_have_value("")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("editor-status")).to_have_text("Saved press_14.", timeout=20_000)
    press = load_inventory(server.inventory).get("press_14")
    assert press is not None and press.plan_position is not None
    x, y = press.plan_position.x, press.plan_position.y
    assert abs(x - 0.5) < 0.05 and abs(y - 0.5) < 0.05, press.plan_position

    # On the plan, the machine shows with its live status in words, its name as text.
    marker = floor.locator('.mw-plan-marker[data-machine-id="press_14"]')
    expect(marker).to_contain_text("Press 14", timeout=20_000)
    expect(marker).to_contain_text(re.compile("Down|Unknown"))

    # A viewer sees the same plan, without the admin's upload form.
    viewer_context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        viewer = viewer_context.new_page()
        log_in(viewer, server, "vic")
        # Zoomed out, no plan is offered; zoomed into Berlin's machines, its plan is.
        expect(viewer.locator('.mw-marker[data-machine-id="press_14"]')).to_have_count(1, timeout=20_000)
        expect(viewer.get_by_test_id("plan-hint")).to_have_count(0)
        viewer.evaluate("window.location.hash = '#map=15/52.52/13.4'")
        viewer.get_by_test_id("plan-hint").click(timeout=20_000)
        expect(viewer.get_by_test_id("plans").get_by_label("Site")).to_have_value("Berlin")
        image = viewer.get_by_test_id("floor-plan").locator("img.leaflet-image-layer")
        expect(image).to_have_count(1, timeout=20_000)
        expect(viewer.get_by_test_id("plans")).to_contain_text("Press 14")
        expect(viewer.locator("#mw-plan-file")).to_have_count(0)
    finally:
        viewer_context.close()


def _settled_box(locator: Any) -> dict[str, float] | None:
    """The element's box when two looks 0.2 s apart agree (None while it still moves)."""
    first = locator.bounding_box()
    locator.page.wait_for_timeout(200)
    second = locator.bounding_box()
    return second if first is not None and first == second else None
