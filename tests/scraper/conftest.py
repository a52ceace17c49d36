"""Fixtures of the scraper tests: real exporters on loopback, SQLite files, optional PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from scraper_helpers import FakeExporter

from scraper.store import Store

POSTGRES_ENV = "MILLWATCH_TEST_POSTGRES_URL"


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


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: the PostgreSQL variant of this test did not run")
    return url


def drop_scraper_tables(url: str) -> None:
    """This test suite is the only user of the test database: start from an empty `public` schema,
    so that every table a migration creates (today's and tomorrow's) is gone."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL per backend: a SQLite file in tmp_path, and PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'millwatch.db'}"
    url = postgres_url()
    drop_scraper_tables(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    store.migrate()
    yield store
    store.close()
