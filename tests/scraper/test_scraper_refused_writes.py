"""A machine whose data the database refuses never holds the other machines' samples back.

The refusal is the database's own: a trigger (SQLite and PostgreSQL) refuses every series of the
machine `bad`, as a constraint of a site's DBA or a value the database rejects would. The scraper
retries that machine, sets its batch aside, counts and logs it once, and the healthy machine's
samples go on reaching the database. Parametrized over SQLite and PostgreSQL (the `store` fixture).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from scraper_helpers import (
    Exporters,
    async_wait_until,
    machine_yaml,
    run,
    running,
    status_of,
    write_inventory,
)

from scraper.state import FleetState, Status
from scraper.store import Store

SQLITE_TRIGGER = """
CREATE TRIGGER refuse_bad BEFORE INSERT ON series WHEN NEW.machine_id = 'bad'
BEGIN SELECT RAISE(ABORT, 'series of machine bad refused by the site''s rule'); END
"""
POSTGRES_FUNCTION = """
CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'series of machine bad refused by the site''s rule' USING ERRCODE = 'check_violation';
END $$
"""
POSTGRES_TRIGGER = """
CREATE TRIGGER refuse_bad BEFORE INSERT ON series FOR EACH ROW
WHEN (NEW.machine_id = 'bad') EXECUTE FUNCTION refuse_bad()
"""


def refuse_machine_bad(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql(SQLITE_TRIGGER)
            else:
                connection.exec_driver_sql(POSTGRES_FUNCTION)
                connection.exec_driver_sql(POSTGRES_TRIGGER)
    finally:
        engine.dispose()


def temperature_times(store: Store, machine_id: str) -> list[float]:
    return [t for t, _ in store.query_samples(machine_id, "machine_temperature_celsius", 0, 2e9)]


def test_refused_data_of_one_machine_is_set_aside_and_the_healthy_machine_keeps_being_written(
    tmp_path: Path,
    store: Store,
    store_url: str,
    exporter_factory: Exporters,
    caplog: pytest.LogCaptureFixture,
) -> None:
    refuse_machine_bad(store_url)
    good, bad = exporter_factory(), exporter_factory()
    path = write_inventory(
        tmp_path / "machines.yaml", [machine_yaml("good", good.url), machine_yaml("bad", bad.url)]
    )
    state = FleetState()
    caplog.set_level(logging.INFO, logger="scraper.store_writer")

    async def scenario() -> dict[str, int]:
        async with running(path, store, state) as service:
            await async_wait_until(
                lambda: service.samples_set_aside_by_machine.get("bad", 0) > 0, 30, "bad's batch set aside"
            )
            written = len(temperature_times(store, "good"))
            # Several scrapes of both later: bad is refused each time, good is written each time.
            await async_wait_until(
                lambda: (
                    len(temperature_times(store, "good")) >= written + 5
                    and service.stats.batches_set_aside_total >= 3
                ),
                30,
                "good's samples written while bad's are set aside",
            )
            assert status_of(state, "bad") is Status.UP  # the map is not the database's business
            assert status_of(state, "good") is Status.UP
            return service.samples_set_aside_by_machine

    set_aside = run(scenario())
    assert set(set_aside) == {"bad"}
    assert temperature_times(store, "bad") == []
    assert [v.id for v in store.load_views()] == ["good"]
    refusals = [r for r in caplog.records if "refused this machine's data" in r.getMessage()]
    assert len(refusals) == 1, "logged once per machine and reason, not at every scrape"
    assert refusals[0].getMessage().startswith("bad: ") and "site's rule" in refusals[0].getMessage()
