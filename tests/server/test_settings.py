from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.errors import SettingsError
from server.settings import PACKAGE_STATIC_DIR, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MILLWATCH_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./millwatch.db"
    assert settings.inventory == Path("machines.yaml")
    assert (settings.host, settings.port, settings.scrape) == ("127.0.0.1", 8000, True)
    assert settings.tile_url is None and settings.tile_attribution is None
    assert settings.static_dir == PACKAGE_STATIC_DIR
    assert settings.max_concurrency == 16


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLWATCH_DATABASE_URL", "postgresql+psycopg://u@db/m")
    monkeypatch.setenv("MILLWATCH_PORT", "9000")
    monkeypatch.setenv("MILLWATCH_SCRAPE", "false")

    from_env = load_settings()
    with_flags = load_settings(port=8100, database_url=None)

    assert from_env.database_url == "postgresql+psycopg://u@db/m"
    assert (from_env.port, from_env.scrape) == (9000, False)
    assert with_flags.port == 8100  # a flag wins
    assert with_flags.database_url == "postgresql+psycopg://u@db/m"  # an absent flag does not


def test_invalid_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLWATCH_MAX_CONCURRENCY", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings(port=70000)
    assert any(p.startswith("MILLWATCH_MAX_CONCURRENCY:") for p in caught.value.problems)
    assert any(p.startswith("port:") for p in caught.value.problems)


def test_retention_defaults_to_the_scrapers_30_days(monkeypatch: pytest.MonkeyPatch) -> None:
    from scraper.service import DEFAULT_RETENTION_SECONDS as SCRAPER_DEFAULT

    monkeypatch.delenv("MILLWATCH_RETENTION", raising=False)
    assert load_settings().retention == 30 * 86400 == SCRAPER_DEFAULT


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 2_592_000), ("12h", 43_200), ("1d12h", 129_600), ("90", 90)]
)
def test_retention_takes_durations(monkeypatch: pytest.MonkeyPatch, text: str, seconds: float) -> None:
    monkeypatch.setenv("MILLWATCH_RETENTION", text)
    assert load_settings().retention == seconds


@pytest.mark.parametrize(
    ("text", "message"), [("a month", "must be a duration"), ("0", "must be greater than 0")]
)
def test_a_bad_retention_is_named(monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    monkeypatch.setenv("MILLWATCH_RETENTION", text)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert [p for p in caught.value.problems if p.startswith("MILLWATCH_RETENTION:") and message in p]
