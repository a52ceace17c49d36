from __future__ import annotations

from pathlib import Path

import httpx

from scraper.state import FleetState


def build_page(static_dir: Path) -> None:
    (static_dir / "assets").mkdir()
    (static_dir / "index.html").write_text(
        '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script>'
        "</head><body><div id=root></div></body></html>"
    )
    (static_dir / "assets" / "index-abc123.js").write_text("console.log('map');")
    (static_dir / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")


def test_without_a_build_the_page_is_an_honest_503(state: FleetState, serve) -> None:
    base = serve(state)

    page = httpx.get(f"{base}/")

    assert page.status_code == 503
    assert page.text.strip() == "The web page is not built: run `make install`."
    assert httpx.get(f"{base}/assets/index-abc123.js").status_code == 404
    # The API does not depend on the page.
    assert httpx.get(f"{base}/api/machines").status_code == 200


def test_the_built_page_is_served_with_cache_headers(state: FleetState, serve, static_dir: Path) -> None:
    build_page(static_dir)
    base = serve(state)

    index = httpx.get(f"{base}/")
    asset = httpx.get(f"{base}/assets/index-abc123.js")
    favicon = httpx.get(f"{base}/favicon.svg")

    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "<div id=root>" in index.text
    assert index.headers["cache-control"] == "no-cache"
    assert asset.status_code == 200
    assert asset.text == "console.log('map');"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert favicon.headers["cache-control"] == "no-cache"
    assert httpx.get(f"{base}/index.html").status_code == 200
    assert httpx.get(f"{base}/assets/missing.js").status_code == 404


def test_a_page_built_while_the_server_runs_is_served(state: FleetState, serve, static_dir: Path) -> None:
    base = serve(state)
    assert httpx.get(f"{base}/").status_code == 503
    build_page(static_dir)
    assert httpx.get(f"{base}/").status_code == 200


def test_files_outside_the_static_folder_are_not_served(
    state: FleetState, serve, static_dir: Path, tmp_path: Path
) -> None:
    build_page(static_dir)
    (tmp_path / "secret.txt").write_text("secret")
    base = serve(state)

    response = httpx.get(f"{base}/%2e%2e/secret.txt")

    assert response.status_code == 404
    assert "secret" not in response.text
