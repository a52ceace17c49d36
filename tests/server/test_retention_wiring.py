"""MILLWATCH_RETENTION and MILLWATCH_MAX_CONCURRENCY reach the scraper of `millwatch serve` and of
`millwatch scrape`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import scraper.runner
import server.cli
import server.serving
from server.settings import load_settings


class Captured(Exception):
    """Raised by the stand-in once it has seen its arguments: nothing more needs to run."""


def write_inventory(folder: Path) -> Path:
    path = folder / "machines.yaml"
    path.write_text("machines:\n  - {id: press, url: 'http://127.0.0.1:9/metrics'}\n", encoding="utf-8")
    return path


def test_serve_passes_the_retention_to_its_scraper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def scraper_service(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Captured

    monkeypatch.setattr(server.serving, "ScraperService", scraper_service)
    monkeypatch.setenv("MILLWATCH_RETENTION", "90d")
    monkeypatch.setenv("MILLWATCH_MAX_CONCURRENCY", "7")
    settings = load_settings(
        inventory=write_inventory(tmp_path), database_url=f"sqlite:///{tmp_path / 'm.db'}", port=0
    )
    with pytest.raises(Captured):
        server.serving.run_server(settings)
    assert seen["retention_seconds"] == 90 * 86400
    assert seen["max_concurrency"] == 7


def test_scrape_passes_the_retention_to_its_scraper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def run_scrape(inventory: Path, db_url: str, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(scraper.runner, "run_scrape", run_scrape)
    monkeypatch.setattr(server.cli, "configure_logging", lambda level: None)  # leave the test's logging be
    monkeypatch.setenv("MILLWATCH_RETENTION", "2d")
    monkeypatch.setenv("MILLWATCH_MAX_CONCURRENCY", "5")
    inventory = write_inventory(tmp_path)
    db_url = f"sqlite:///{tmp_path / 'm.db'}"
    assert server.cli.main(["scrape", "--inventory", str(inventory), "--db", db_url]) == 0
    assert seen["retention_seconds"] == 2 * 86400
    assert seen["max_concurrency"] == 5
