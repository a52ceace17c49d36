"""The `millwatch` command as an operator runs it: exit statuses and messages."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support import run_millwatch

GOOD_INVENTORY = """\
defaults:
  scrape_interval: 15s
machines:
  - id: press_01
    name: Press 01
    url: http://127.0.0.1:9817/metrics
"""

BROKEN_INVENTORY = """\
machines:
  - id: press_01
    url: ftp://127.0.0.1:9817/metrics
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "serve"),
        (["serve"], "--no-scrape"),
        (["scrape"], "--inventory"),
        (["check"], "path"),
        (["demo"], "--machines"),
        (["simulate-serial"], "--scenario"),
    ],
)
def test_help_works_for_every_subcommand(args: list[str], expected: str) -> None:
    result = run_millwatch([*args, "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert expected in result.stdout


def test_no_subcommand_prints_usage_and_fails() -> None:
    result = run_millwatch([])
    assert result.returncode == 2
    assert "usage: millwatch" in result.stderr


def test_unknown_flag_is_a_usage_error() -> None:
    result = run_millwatch(["serve", "--prot", "8000"])
    assert result.returncode == 2
    assert "unrecognized arguments: --prot" in result.stderr


def test_serve_with_a_broken_inventory_exits_2_with_file_and_line(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(BROKEN_INVENTORY)

    result = run_millwatch(
        ["serve", "--inventory", str(inventory), "--db", f"sqlite:///{tmp_path / 'm.db'}", "--port", "0"]
    )

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "millwatch: error: invalid inventory"
    assert f"{inventory}:3: machines[0].url: must start with http:// or https://" in lines[1]
    assert not (tmp_path / "m.db").exists(), "a broken inventory must not create the database"


def test_serve_with_a_missing_inventory_exits_2(tmp_path: Path) -> None:
    result = run_millwatch(["serve", "--inventory", str(tmp_path / "nope.yaml"), "--port", "0"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("millwatch: error: cannot read the inventory\n")
    assert "nope.yaml" in result.stderr


def test_serve_on_a_port_in_use_exits_2_with_one_line(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(GOOD_INVENTORY)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_millwatch(["serve", "--inventory", str(inventory), "--port", str(port)], cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == f"millwatch: error: cannot listen on 127.0.0.1:{port}: address already in use\n"


def test_serve_with_an_unusable_database_exits_2(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(GOOD_INVENTORY)

    result = run_millwatch(
        ["serve", "--inventory", str(inventory), "--port", "0", "--db", f"sqlite:///{tmp_path}/missing/m.db"]
    )

    assert result.returncode == 2
    assert result.stderr.startswith("millwatch: error: database: ")
    assert "does not exist" in result.stderr


def test_an_invalid_environment_setting_is_named(tmp_path: Path) -> None:
    result = run_millwatch(["serve", "--no-scrape"], cwd=tmp_path, env={"MILLWATCH_PORT": "eighty"})
    assert result.returncode == 2
    assert "MILLWATCH_PORT" in result.stderr


def test_check_exit_codes(tmp_path: Path) -> None:
    good, broken = tmp_path / "good.yaml", tmp_path / "broken.yaml"
    good.write_text(GOOD_INVENTORY)
    broken.write_text(BROKEN_INVENTORY)

    ok = run_millwatch(["check", str(good)])
    bad = run_millwatch(["check", str(broken)])
    missing = run_millwatch(["check", str(tmp_path / "missing.yaml")])

    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{good}: OK" in ok.stdout
    assert bad.returncode == 1
    assert f"{broken}:3: machines[0].url" in bad.stdout + bad.stderr
    assert missing.returncode == 2


def test_check_defaults_to_the_inventory_of_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "machines.yaml").write_text(GOOD_INVENTORY)
    result = run_millwatch(["check"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_demo_refuses_to_overwrite_the_inventory_of_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "machines.yaml").write_text(GOOD_INVENTORY)

    result = run_millwatch(["demo", "--dir", ".", "--port", "0", "--machines", "2"], cwd=tmp_path)

    assert result.returncode == 2
    assert "overwrite ./machines.yaml" in result.stderr
    assert (tmp_path / "machines.yaml").read_text() == GOOD_INVENTORY


def test_demo_on_a_port_in_use_exits_2_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_millwatch(["demo", "--dir", str(tmp_path / "demo"), "--port", str(port)])

    assert result.returncode == 2
    assert result.stderr == f"millwatch: error: cannot listen on 127.0.0.1:{port}: address already in use\n"
    assert not (tmp_path / "demo" / "machines.yaml").exists()


def test_demo_rejects_a_fleet_of_zero(tmp_path: Path) -> None:
    result = run_millwatch(["demo", "--machines", "0", "--dir", str(tmp_path)])
    assert result.returncode == 2
    assert "--machines: must be at least 1" in result.stderr
