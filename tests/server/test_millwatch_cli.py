"""The `millwatch` command as an operator runs it: exit statuses and messages."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import run_millwatch

from scraper.inventory import MAX_SCRAPE_DURATION
from server import cli
from server.settings import Settings

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
        (["user"], "passwd"),
        (["user", "add"], "--role"),
        (["token"], "revoke"),
        (["token", "create"], "--role"),
    ],
)
def test_help_works_for_every_subcommand(args: list[str], expected: str) -> None:
    result = run_millwatch([*args, "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert expected in result.stdout


# An exporter-only install: the central extra's packages cannot be imported.
EXPORTER_ONLY = """
import sys

BLOCKED = {
    "fastapi", "pydantic", "pydantic_settings", "sqlalchemy", "alembic", "httpx", "apscheduler", "uvicorn"
}


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
for loaded in [m for m in sys.modules if m.partition(".")[0] in BLOCKED]:
    del sys.modules[loaded]
from server.cli import main

sys.exit(main(sys.argv[1:]))
"""
NEEDS_CENTRAL = "millwatch: error: this command needs the central install: pip install 'millwatch[central]'\n"


def run_exporter_only(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", EXPORTER_ONLY, *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "simulate-serial"),
        (["serve", "--help"], "--no-scrape"),
        (["scrape", "--help"], "--inventory"),
        (["check", "--help"], "path"),
        (["demo", "--help"], "--machines"),
        (["simulate-serial", "--help"], "--scenario"),
        (["user", "add", "--help"], "--role"),
        (["token", "--help"], "create"),
    ],
)
def test_help_works_on_an_exporter_only_install(args: list[str], expected: str, tmp_path: Path) -> None:
    result = run_exporter_only(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and expected in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "0"],
        ["serve", "--no-scrape", "--port", "0"],
        ["scrape"],
        ["check"],
        ["demo", "--machines", "2", "--port", "0", "--dir", "demo"],
        ["user", "list"],
        ["token", "create", "grafana"],
    ],
)
def test_a_central_command_on_an_exporter_only_install_names_the_extra(
    args: list[str], tmp_path: Path
) -> None:
    (tmp_path / "machines.yaml").write_text(GOOD_INVENTORY)
    result = run_exporter_only(args, tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (2, NEEDS_CENTRAL, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["machines.yaml"], "nothing may be created"


def test_simulate_serial_runs_on_an_exporter_only_install(tmp_path: Path) -> None:
    result = run_exporter_only(["simulate-serial", "--scenario", "no-such-scenario"], tmp_path)
    # The simulator's own argument check answered: it was imported and ran without the central extra.
    assert result.returncode == 2
    assert "invalid choice: 'no-such-scenario'" in result.stderr
    assert "central install" not in result.stderr


@pytest.mark.parametrize("command", ["serve", "scrape", "check", "demo"])
def test_a_central_command_on_an_old_python_says_which_python(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    monkeypatch.chdir(tmp_path)
    assert cli.main([command]) == 2
    captured = capsys.readouterr()
    assert captured.err == "millwatch: error: the central host needs Python 3.11 or newer (this is 3.9.18)\n"
    assert list(tmp_path.iterdir()) == []


def test_help_still_works_on_an_old_python(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve", "--help"])
    assert caught.value.code == 0
    assert "--no-scrape" in capsys.readouterr().out


def test_the_defaults_shown_by_help_are_the_real_ones() -> None:
    fields = Settings.model_fields
    assert (cli.DEFAULT_HOST, cli.DEFAULT_PORT) == (fields["host"].default, fields["port"].default)
    assert cli.MAX_INTERVAL_SECONDS == MAX_SCRAPE_DURATION
    help_text = run_millwatch(["serve", "--help"]).stdout
    assert (
        f"default {fields['host'].default}" in help_text and f"default {fields['port'].default}" in help_text
    )


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


def run_both(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], ...]:
    """`millwatch serve ARGS` and `millwatch scrape ARGS`."""
    return (
        run_millwatch(["serve", "--port", "0", *args], cwd=cwd),
        run_millwatch(["scrape", *args], cwd=cwd),
    )


def test_scrape_reports_a_broken_inventory_exactly_as_serve(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(BROKEN_INVENTORY)

    serve, scrape = run_both(
        ["--inventory", str(inventory), "--db", f"sqlite:///{tmp_path / 'm.db'}"], tmp_path
    )

    assert (scrape.returncode, scrape.stderr) == (serve.returncode, serve.stderr)
    assert scrape.returncode == 2
    assert scrape.stderr.splitlines() == [
        "millwatch: error: invalid inventory",
        f"{inventory}:3: machines[0].url: must start with http:// or https://",
    ]
    assert not (tmp_path / "m.db").exists(), "a broken inventory must not create the database"


def test_scrape_reports_a_missing_inventory_exactly_as_serve(tmp_path: Path) -> None:
    serve, scrape = run_both(["--inventory", str(tmp_path / "nope.yaml")], tmp_path)

    assert (scrape.returncode, scrape.stderr) == (serve.returncode, serve.stderr)
    assert scrape.returncode == 2
    assert scrape.stderr == (
        f"millwatch: error: cannot read the inventory\n{tmp_path / 'nope.yaml'}: cannot read: "
        "No such file or directory\n"
    )


def test_scrape_reports_an_unusable_database_exactly_as_serve(tmp_path: Path) -> None:
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(GOOD_INVENTORY)

    serve, scrape = run_both(
        ["--inventory", str(inventory), "--db", f"sqlite:///{tmp_path}/missing/m.db"], tmp_path
    )

    assert (scrape.returncode, scrape.stderr) == (serve.returncode, serve.stderr)
    assert scrape.returncode == 2
    assert scrape.stderr.startswith("millwatch: error: database: store open failed: ")
    assert "does not exist" in scrape.stderr and scrape.stderr.count("\n") == 1


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


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("fast", "--interval: must be a duration such as 15s, 500ms, 2m or a number of seconds, got 'fast'"),
        ("0s", "--interval: must be greater than 0, got '0s'"),
        ("2d", "--interval: must be at most 1d, got '2d'"),
    ],
)
def test_demo_rejects_a_bad_interval(interval: str, expected: str, tmp_path: Path) -> None:
    result = run_millwatch(["demo", "--interval", interval, "--dir", str(tmp_path / "demo")])
    assert result.returncode == 2
    assert expected in result.stderr
    assert not (tmp_path / "demo").exists()
