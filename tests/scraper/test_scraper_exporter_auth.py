"""The scraper against a real exporter whose `web:` section asks for a token or a password."""

from __future__ import annotations

from pathlib import Path

import pytest
from scraper_helpers import run

from exporter.app import ExporterApp
from exporter.config import parse_config
from exporter.passwords import hash_password
from exporter.simulator import SimulatedSensor
from scraper.errors import HTTPStatusError
from scraper.exposition import parse_exposition
from scraper.fetch import fetch_metrics
from scraper.http1 import Http1Transport
from scraper.inventory import Auth, BasicAuth, Machine


def machine(url: str, auth: Auth | None) -> Machine:
    return Machine(
        id="m", name="m", url=url, scrape_interval_seconds=10.0, scrape_timeout_seconds=5.0, auth=auth
    )


async def scrape_twice(target: Machine) -> list[str]:
    transport = Http1Transport()  # one transport: the second scrape reuses the connection
    try:
        return [(await fetch_metrics(transport, target))[0] for _ in range(2)]
    finally:
        await transport.aclose()


def test_the_scraper_reads_an_exporter_that_needs_a_token_or_a_password(tmp_path: Path) -> None:
    (tmp_path / "exporter.token").write_text("plant-token-1\n")
    (tmp_path / "scraper.token").write_text("plant-token-1\n")
    (tmp_path / "scraper.password").write_text("pa55word\n")
    with SimulatedSensor(interval=0.05, seed=1) as sensor:
        assert sensor.path is not None
        config = parse_config(
            {
                "machine": {"id": "press_01"},
                "listen": "127.0.0.1:0",
                "serial": {"port": sensor.path},
                "buffer": {"path": str(tmp_path / "b.sqlite")},
                "web": {
                    "bearer_token_file": str(tmp_path / "exporter.token"),
                    "basic_auth_users": {"central": hash_password(b"pa55word")},
                },
            },
            "test",
        )
        with ExporterApp(config) as app:
            with pytest.raises(HTTPStatusError) as caught:
                run(scrape_twice(machine(app.url, None)))
            assert str(caught.value) == "HTTP 401"
            by_token = Auth(bearer_token_file=str(tmp_path / "scraper.token"))
            by_password = Auth(
                basic=BasicAuth(username="central", password_file=str(tmp_path / "scraper.password"))
            )
            for auth in (by_token, by_password):
                for text in run(scrape_twice(machine(app.url, auth))):
                    names = {s.name for s in parse_exposition(text)}
                    assert "millwatch_serial_up" in names
