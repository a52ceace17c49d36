"""`millwatch key create|list|revoke` as a user runs them, against a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from push_helpers import INVENTORY
from support import run_millwatch


def test_create_list_revoke(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(INVENTORY)
    database = tmp_path / "m.db"
    where = ["--db", f"sqlite:///{database}", "--inventory", str(inventory)]

    created = run_millwatch(["key", "create", "press", *where])
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("mwk_") and len(key) >= 4 + 43 and created.stdout.count("\n") == 1
    assert "only time the key is shown" in created.stderr and "warning" not in created.stderr
    second = run_millwatch(["key", "create", "press", *where]).stdout.strip()
    assert second != key

    with sqlite3.connect(database) as db:
        dump = "\n".join(db.iterdump())
    assert key not in dump and second not in dump  # only their SHA-256

    listed = run_millwatch(["key", "list", *where])
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "MACHINE", "CREATED", "REVOKED"]
    assert len(lines) == 3 and all(" press " in line and line.endswith(" -") for line in lines[1:])
    assert key not in listed.stdout and second not in listed.stdout
    first_id = lines[1].split()[0]

    by_id = run_millwatch(["key", "revoke", "--id", first_id, *where])
    assert by_id.returncode == 0 and by_id.stdout == f"revoked {first_id} (press)\n"
    by_machine = run_millwatch(["key", "revoke", "press", *where])
    assert by_machine.returncode == 0 and by_machine.stdout.count("revoked") == 1
    nothing = run_millwatch(["key", "revoke", "press", *where])
    assert (
        nothing.returncode == 1 and nothing.stderr == "millwatch: error: no active key for machine 'press'\n"
    )
    assert all(
        not line.endswith(" -") for line in run_millwatch(["key", "list", *where]).stdout.splitlines()[1:]
    )


def test_creating_a_key_for_a_machine_that_does_not_push_warns(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(INVENTORY)
    where = ["--db", f"sqlite:///{tmp_path / 'm.db'}", "--inventory", str(inventory)]
    pulled = run_millwatch(["key", "create", "puller", *where])
    assert pulled.returncode == 0 and "is a pulled machine" in pulled.stderr
    unknown = run_millwatch(["key", "create", "nowhere", *where])
    assert unknown.returncode == 0 and "'nowhere' is not in" in unknown.stderr
    assert run_millwatch(["key", "--help"]).stdout.count("create") >= 1
