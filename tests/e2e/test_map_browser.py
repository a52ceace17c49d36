"""The map page in a real browser (Debian's Chromium through Playwright) against a real fleet:
real exporters on simulated serial ports, scraped over HTTP by a `millwatch serve` process."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from support import MillwatchProcess, exporter_on_sensor, free_port, run_millwatch, wait_until

from exporter.simulator import SimulatedSensor

pytestmark = pytest.mark.browser

# Three machines far enough apart that they never cluster at the view the tests open.
MACHINES = {
    "forge_berlin": ("Forge Berlin", 52.52, 13.40),
    "press_hamburg": ("Press Hamburg", 53.55, 9.99),
    "lathe_munich": ("Lathe Munich", 48.14, 11.58),
}
VIEW = "#map=6/51/11.5"


@dataclass
class Fleet:
    inventory: Path
    sensors: dict[str, SimulatedSensor]


def write_inventory(path: Path, urls: dict[str, str]) -> None:
    lines = [
        "defaults:",
        # Exporters share the test process with Playwright: on a loaded host 0.4 s was not always
        # enough, and a timed-out scrape turns the machine down in the middle of an assertion.
        "  scrape_interval: 1s",
        "  scrape_timeout: 0.9s",
        "  thresholds:",
        "    machine_temperature_celsius: {warn: 80, alarm: 95}",
        "machines:",
    ]
    for machine_id, (name, lat, lon) in MACHINES.items():
        lines += [
            f"  - id: {machine_id}",
            f"    name: {name}",
            f"    url: {urls[machine_id]}",
            f"    location: {{lat: {lat}, lon: {lon}}}",
        ]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with contextlib.ExitStack() as stack:
        sensors: dict[str, SimulatedSensor] = {}
        urls: dict[str, str] = {}
        for machine_id in MACHINES:
            sensor, url = stack.enter_context(exporter_on_sensor(machine_id, "normal", tmp_path))
            sensors[machine_id] = sensor
            urls[machine_id] = url
        inventory = tmp_path / "machines.yaml"
        write_inventory(inventory, urls)
        yield Fleet(inventory, sensors)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    yield page
    context.close()


def serve(fleet: Fleet, port: int, tmp_path: Path, env: dict[str, str] | None = None) -> MillwatchProcess:
    return MillwatchProcess(
        [
            "serve",
            "--inventory",
            str(fleet.inventory),
            "--db",
            f"sqlite:///{tmp_path / 'millwatch.db'}",
            "--port",
            str(port),
        ],
        tmp_path,
        env=env,
    )


def settled_view(page: Page) -> str | None:
    """The view in the hash once it stopped moving: no pan animation, and the same hash 0.5 s apart
    (opening a popup, or the detail panel narrowing the map, pans it once; Leaflet writes the hash
    at the end of a pan). None while it still moves."""
    moving = "document.querySelector('.leaflet-pan-anim, .leaflet-zoom-anim') !== null"
    first = page.evaluate("window.location.hash")
    page.wait_for_timeout(500)
    if page.evaluate(moving):
        return None
    second: str = page.evaluate("window.location.hash")
    return second if second == first else None


def marker(page: Page, machine_id: str):  # noqa: ANN201 - Playwright's Locator
    return page.locator(f'.mw-marker[data-machine-id="{machine_id}"]')


def test_markers_follow_live_status_without_moving_the_view(fleet: Fleet, page: Page, tmp_path: Path) -> None:
    port = free_port()
    with serve(fleet, port, tmp_path) as server:
        server.wait_healthy(port)
        page.goto(f"http://127.0.0.1:{port}/{VIEW}")
        page.evaluate("window.__sameDocument = true")

        # Every machine shows up, as a marker with its status in shape, text and attribute.
        for machine_id, (name, _, _) in MACHINES.items():
            expect(marker(page, machine_id)).to_have_attribute("data-status", "up", timeout=20_000)
            expect(marker(page, machine_id)).to_have_attribute("aria-label", re.compile(f"^{name}: "))
        expect(page.get_by_test_id("summary-up")).to_contain_text("3")

        # The operator zooms in on Berlin; the view goes into the URL.
        page.locator(".leaflet-control-zoom-in").click()
        page.wait_for_function("window.location.hash.startsWith('#map=7/')")
        view_before = page.evaluate("window.location.hash")

        # Berlin's furnace overheats: its marker turns to warn/alarm while the page stays as it was.
        fleet.sensors["forge_berlin"].scenario = "overheat"
        expect(marker(page, "forge_berlin")).to_have_attribute(
            "data-status", re.compile("^(warn|alarm)$"), timeout=20_000
        )
        expect(marker(page, "forge_berlin")).to_have_attribute("data-status", "alarm", timeout=20_000)
        expect(marker(page, "forge_berlin")).to_have_attribute(
            "aria-label", re.compile(r"machine_temperature_celsius .* alarm 95")
        )
        expect(page.get_by_test_id("summary-alarm")).to_contain_text("1", timeout=20_000)
        assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
        assert page.evaluate("window.location.hash") == view_before, "the update moved the operator's view"

        # The popup shows the reading and why the machine is in alarm.
        marker(page, "forge_berlin").click()
        popup = page.locator(".mw-popup")
        expect(popup).to_contain_text("Forge Berlin")
        expect(popup).to_contain_text("°C")
        expect(popup).to_contain_text("alarm", timeout=20_000)
        # The click selects the machine (its details open beside the map, the link names it); the
        # map may pan only to bring the popup into view, never zoom.
        expect(page.get_by_test_id("machine-detail")).to_contain_text("Forge Berlin")
        page.wait_for_function("window.location.hash.includes('sel=forge_berlin')")
        assert page.evaluate("window.location.hash").startswith("#map=7/")
        # Opening it pans the map once if it does not fit (Berlin is near the top edge at this view):
        # the operator's own click. Wait until that pan is over; from then on live updates must not
        # move the view.
        view_opened = wait_until(lambda: settled_view(page), 20, "the view to settle after the click")
        temperature = popup.locator('tr[data-metric="machine_temperature_celsius"] .mw-reading-value')
        shown = temperature.inner_text()
        expect(temperature).not_to_have_text(shown, timeout=20_000)  # a live update reached the popup
        assert page.evaluate("window.location.hash") == view_opened, "a live update moved the view"


def test_connection_lost_notice_and_reconnect(fleet: Fleet, page: Page, tmp_path: Path) -> None:
    port = free_port()
    banner = page.get_by_test_id("connection-banner")
    with serve(fleet, port, tmp_path) as server:
        server.wait_healthy(port)
        page.goto(f"http://127.0.0.1:{port}/{VIEW}")
        expect(marker(page, "press_hamburg")).to_have_attribute("data-status", "up", timeout=20_000)
        expect(banner).to_have_count(0)
        assert server.stop() == 0

    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_contain_text("Connection lost")
    # The last known machines stay on the map while the server is away.
    expect(marker(page, "press_hamburg")).to_have_count(1)

    fleet.sensors["lathe_munich"].scenario = "silent"
    with serve(fleet, port, tmp_path) as server:
        server.wait_healthy(port)
        expect(banner).to_have_count(0, timeout=40_000)
        expect(marker(page, "lathe_munich")).to_have_attribute("data-status", "sensor_fault", timeout=40_000)
    wait_until(lambda: not server.running(), what="the server to stop")


def test_login_shows_the_map_and_logout_hides_it(fleet: Fleet, page: Page, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'millwatch.db'}"
    added = run_millwatch(["user", "add", "ada", "--role", "admin", "--db", db], input="ada-password-1\n")
    assert added.returncode == 0, added.stderr
    port = free_port()
    with serve(fleet, port, tmp_path, env={"MILLWATCH_ANONYMOUS_READ": "false"}) as server:
        server.wait_healthy(port)
        page.goto(f"http://127.0.0.1:{port}/{VIEW}")

        # Nobody is logged in: the form, and no machine anywhere on the page.
        form = page.get_by_test_id("login-form")
        expect(form).to_be_visible(timeout=20_000)
        expect(page.locator(".mw-marker")).to_have_count(0)

        page.get_by_label("Name").fill("ada")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("login-error")).to_have_text("Wrong name or password.", timeout=20_000)

        page.get_by_label("Password").fill("ada-password-1")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("account")).to_contain_text("Signed in as ada (admin)", timeout=20_000)
        for machine_id in MACHINES:
            expect(marker(page, machine_id)).to_have_attribute("data-status", "up", timeout=20_000)
        [cookie] = [c for c in page.context.cookies() if c["name"] == "millwatch_session"]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie").find("millwatch_session") == -1  # no script can read it

        # A reload keeps the session; logging out ends it and brings the form back.
        page.reload()
        expect(marker(page, "forge_berlin")).to_have_count(1, timeout=20_000)
        page.get_by_role("button", name="Log out").click()
        expect(form).to_be_visible(timeout=20_000)
        expect(page.locator(".mw-marker")).to_have_count(0)
        assert [c for c in page.context.cookies() if c["name"] == "millwatch_session"] == []


def test_the_world_view_draws_the_light_basemap_and_a_zoom_fetches_the_detailed_one(
    fleet: Fleet, page: Page, tmp_path: Path
) -> None:
    """The bundled world comes in two scales: the 1:110m shapes for the world and continents (a
    tenth of the points, so the first paint of a large fleet does not wait on coastlines) and the
    1:50m ones, fetched only once the operator zooms in to a country."""
    port = free_port()
    basemaps: list[str] = []
    page.on(
        "request",
        lambda request: (
            basemaps.append(request.url.rsplit("/", 1)[-1]) if "/assets/countries-" in request.url else None
        ),
    )
    with serve(fleet, port, tmp_path) as server:
        server.wait_healthy(port)
        page.goto(f"http://127.0.0.1:{port}/#map=2/40/10")
        expect(marker(page, "forge_berlin").or_(page.locator(".mw-cluster"))).not_to_have_count(
            0, timeout=20_000
        )
        page.wait_for_function("document.querySelector('.leaflet-mw-basemap-pane canvas') !== null")
        assert [name.split("-")[1] for name in basemaps] == ["110m"], basemaps

        with page.expect_request(lambda request: "/assets/countries-50m-" in request.url, timeout=20_000):
            page.evaluate("window.location.hash = '#map=6/51/11.5'")
        # The machines are still drawn on top of it.
        expect(marker(page, "forge_berlin")).to_have_attribute("data-status", "up", timeout=20_000)
