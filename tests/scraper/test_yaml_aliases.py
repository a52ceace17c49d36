"""YAML anchors and aliases in machines.yaml and exporter.yaml: shared blocks work, bombs are refused.

An alias bomb ("billion laughs": nine nested levels of nine aliases stand for 9^9 nodes) must be
an error at the alias's line, promptly, in both files (one loader: millwatch_common/yamltext.py).
The load runs in a thread with a deadline, so a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.config import load_config
from exporter.errors import ConfigError
from scraper.errors import InventoryError
from scraper.inventory import load_inventory

LEVELS = "abcdefghi"


def bomb(indent: str = "") -> str:
    """Nine anchors, each a list of nine aliases of the one before: 9^9 nodes from nine lines."""
    lines = [
        f'{indent}{LEVELS[0]}: &{LEVELS[0]} ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'
    ]
    for previous, name in zip(LEVELS, LEVELS[1:]):
        lines.append(f"{indent}{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def finishes(load: Callable[[], object], seconds: float = 120.0) -> BaseException | None:
    """Run `load` in a thread; its exception (None when it returned), or fail when it hangs."""
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            load()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome.append(e)
        else:
            outcome.append(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"loading did not finish within {seconds}s (an alias bomb expanded?)"
    return outcome[0]


def bomb_line(text: str) -> int:
    """The line of the first alias past the bound: the 6th anchor's (9^5 nodes > 100,000)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(f"  {LEVELS[5]}:"))


def test_an_alias_bomb_in_machines_yaml_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = "x_bomb:\n" + bomb("  ") + "machines: []\n"
    path = tmp_path / "machines.yaml"
    path.write_text(text)
    error = finishes(lambda: load_inventory(path))
    assert isinstance(error, InventoryError)
    line = bomb_line(text)
    assert str(error).startswith(
        f"{path}:{line}: YAML syntax error: aliases expand to more than 100000 nodes"
    )
    assert "alias bomb" in str(error)


def test_an_alias_bomb_in_exporter_yaml_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = "machine: {id: press_1}\nserial: {port: 'loop://'}\nx_bomb:\n" + bomb("  ")
    path = tmp_path / "exporter.yaml"
    path.write_text(text)
    error = finishes(lambda: load_config(path))
    assert isinstance(error, ConfigError)
    line = bomb_line(text)
    assert f"{path.name}:{line}: YAML syntax error: aliases expand" in str(error)


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "machines.yaml"
    path.write_text("machines: []\nloop: &loop [1, *loop]\n")
    error = finishes(lambda: load_inventory(path))
    assert isinstance(error, InventoryError)
    assert ":2: YAML syntax error: alias *loop refers to a node that contains it" in str(error)


def test_shared_blocks_through_anchors_still_work_for_a_big_fleet(tmp_path: Path) -> None:
    # One labels block of 20 entries shared by 3,000 machines: 123,000 nodes through aliases, more
    # than the fixed bound but well within 20 times the document's own nodes.
    labels = ", ".join(f"k{i}: v{i}" for i in range(20))
    machines = "".join(
        f"  - {{id: m{i}, url: 'http://127.0.0.1:{9000 + i % 1000}/metrics', labels: *plant}}\n"
        for i in range(3000)
    )
    path = tmp_path / "machines.yaml"
    path.write_text(
        f"defaults: {{scrape_interval: 15s}}\nx_labels: &plant {{{labels}}}\nmachines:\n{machines}"
    )
    error = finishes(lambda: load_inventory(path))
    if isinstance(error, InventoryError):
        # The unknown top-level key is the only problem: the aliases themselves were accepted.
        assert all("x_labels: unknown key" in p for p in str(error).splitlines()), str(error)
    else:
        assert error is None


@pytest.mark.parametrize("count", [1, 50])
def test_a_few_aliases_are_fine(tmp_path: Path, count: int) -> None:
    entries = "".join(
        f"  - {{id: m{i}, url: 'http://127.0.0.1:9817/metrics', labels: *l}}\n" for i in range(count)
    )
    path = tmp_path / "machines.yaml"
    path.write_text(
        "defaults:\n  scrape_interval: 15s\nmachines:\n"
        + entries.replace("*l", "{line: a}", 1).replace("{line: a}", "&l {line: a}", 1)
    )
    inventory = load_inventory(path)
    assert [m.labels for m in inventory.machines] == [{"line": "a"}] * count
