"""Fixtures of the scraper tests: real exporters on loopback, SQLite files, optional PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scraper_helpers import FakeExporter
from support import database_url

from scraper.store import Store


@pytest.fixture
def exporter_factory() -> Iterator[Callable[[], FakeExporter]]:
    started: list[FakeExporter] = []

    def start() -> FakeExporter:
        exporter = FakeExporter()
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.close()


@pytest.fixture
def exporter(exporter_factory: Callable[[], FakeExporter]) -> FakeExporter:
    return exporter_factory()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'millwatch.db'}")
    store.migrate()
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL per backend: a SQLite file in tmp_path, and PostgreSQL when configured."""
    return database_url(request.param, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    store.migrate()
    yield store
    store.close()
