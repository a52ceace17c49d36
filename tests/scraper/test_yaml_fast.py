"""The fast loader reads machines.yaml exactly as ruamel's round trip does: same values (YAML 1.2,
not PyYAML's 1.1), same lines for every key and item, the same errors; only faster."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from millwatch_common.yamltext import YAMLSyntaxError, line_of, load_roundtrip, plain
from scraper.inventory import load_inventory
from scraper.yaml_fast import load_with_lines

REPO = Path(__file__).resolve().parents[2]

CASES = {
    "scalars of YAML 1.2": (
        "a: 017\nb: 0o17\nc: 1_000\nd: 0x1F\ne: 1:30\nf: 0b11\ng: +5\nh: -.inf\ni: no\nj: yes\n"
        "k: ~\nl:\nm: 'x'\nn: \"0x1\"\no: |\n  block\np: [1, 2.5, true, False, NULL]\nq: {x: 1}\n"
        "r: -017\ns: +0x10\nt: 1e3\nu: .5\nv: 1.\nw: on\nx: .NaN\ny: 15s\n"
    ),
    "anchors shared": "base: &b {u: 1}\nm:\n  - *b\n  - name: x\n    auth: *b\n",
    "merge key": "base: &b {u: 1}\nm:\n  <<: *b\n  v: 2\n",
    "explicit tag": "a: !!str 5\n",
    "timestamp": "a: 2024-01-01\n",
    "integer key": "1: one\n",
    "a list at the top": "- 1\n- 2\n",
    "empty": "",
    "only a comment": "# nothing yet\n",
    "a fleet": (
        "# the plant\ndefaults:\n  scrape_interval: 15s  # every machine\nmachines:\n"
        "  - id: press_01\n    name: \"Press 1\"\n    labels: {line: no, hall: '2'}\n"
        "    location:\n      lat: 51.45\n      lon: 7.01\n"
        "  - id: press_02\n    enabled: false\n    thresholds:\n      t: {warn: 80, alarm: 95}\n"
    ),
}

BROKEN = {
    "duplicate key": "a: 1\na: 2\n",
    "syntax": "a: [\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "recursive alias": "x: &a [*a]\n",
    "undefined alias": "x: *nowhere\n",
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) in (str, int, float, bool, type(None)):
        return type(a) is type(b) and a == b
    return repr(a) == repr(b)  # what ruamel made of a tag or a date, both sides through ruamel


def _assert_read_alike(text: str) -> None:
    slow, fast = load_roundtrip(text), load_with_lines(text)
    assert _same(plain(slow), plain(fast)), (plain(slow), plain(fast))
    for path in _paths(plain(slow)):
        assert line_of(fast, path) == line_of(slow, path), path


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_lines_are_ruamels(name: str) -> None:
    _assert_read_alike(CASES[name])


def test_the_files_shipped_are_read_alike() -> None:
    shipped = ("machines.yaml", "integrations/notifications.example.yaml", "exporter/exporter.example.yaml")
    for name in shipped:
        _assert_read_alike((REPO / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_gets_ruamels_message_and_line(name: str) -> None:
    with pytest.raises(YAMLSyntaxError) as slow:
        load_roundtrip(BROKEN[name])
    with pytest.raises(YAMLSyntaxError) as fast:
        load_with_lines(BROKEN[name])
    assert (fast.value.message, fast.value.line) == (slow.value.message, slow.value.line)


def test_a_big_inventory_problem_is_named_at_its_line(tmp_path: Path) -> None:
    """The checks of `millwatch check` still name the line of a problem deep in a big file."""
    lines = ["machines:\n"]
    for i in range(2000):
        lines.append(f"  - id: m{i:04d}\n    url: http://127.0.0.1:{20000 + i}/metrics\n")
    lines.append("  - id: bad\n    url: http://127.0.0.1:9/metrics\n    location: {lat: 91, lon: 0}\n")
    path = tmp_path / "machines.yaml"
    path.write_text("".join(lines))
    with pytest.raises(Exception) as refused:
        load_inventory(path)
    assert f"machines.yaml:{1 + 2 * 2000 + 3}: machines[2000].location.lat" in str(refused.value)
