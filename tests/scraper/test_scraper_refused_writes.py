"""A machine whose data the database refuses never holds the other machines' samples back.

The refusal is the database's own: a trigger (SQLite and PostgreSQL) refuses every series, or
every sample, of the machine `bad`, as a constraint of a site's DBA or a value the database
rejects would. The scraper retries that machine, sets its batch aside, counts and logs it once,
and the healthy machine's samples go on reaching the database. Parametrized over SQLite and
PostgreSQL (the `store` fixture).
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

# The rule on `series` refuses bad's first write through SQLAlchemy; on `samples`, every write of
# bad's samples, which go through the driver's own connection (SQLite's multi-row insert,
# PostgreSQL's COPY): the driver's errors must read as a refusal too.
BAD_ROW = {
    "series": "NEW.machine_id = 'bad'",
    "samples": "NEW.series_id IN (SELECT id FROM series WHERE machine_id = 'bad')",
}
SQLITE_TRIGGER = """
CREATE TRIGGER refuse_bad BEFORE INSERT ON {table} WHEN {bad_row}
BEGIN SELECT RAISE(ABORT, 'data of machine bad refused by the site''s rule'); END
"""
# PostgreSQL allows no subquery in a trigger's WHEN: the function tests the row.
POSTGRES_FUNCTION = """
CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {bad_row} THEN
    RAISE EXCEPTION 'data of machine bad refused by the site''s rule' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$
"""
POSTGRES_TRIGGER = (
    "CREATE TRIGGER refuse_bad BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_bad()"
)


def refuse_machine_bad(store_url: str, table: str) -> None:
    engine = sa.create_engine(store_url)
    names = {"table": table, "bad_row": BAD_ROW[table]}
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql(SQLITE_TRIGGER.format(**names))
            else:
                connection.exec_driver_sql(POSTGRES_FUNCTION.format(**names))
                connection.exec_driver_sql(POSTGRES_TRIGGER.format(**names))
    finally:
        engine.dispose()


def temperature_times(store: Store, machine_id: str) -> list[float]:
    return [t for t, _ in store.query_samples(machine_id, "machine_temperature_celsius", 0, 2e9)]


@pytest.mark.parametrize("table", ["series", "samples"])
def test_refused_data_of_one_machine_is_set_aside_and_the_healthy_machine_keeps_being_written(
    table: str,
    tmp_path: Path,
    store: Store,
    store_url: str,
    exporter_factory: Exporters,
    caplog: pytest.LogCaptureFixture,
) -> None:
    refuse_machine_bad(store_url, table)
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
