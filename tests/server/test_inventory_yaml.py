"""The inventory editor on files of every style, without a server: the edited entry is the only change,
the write is atomic, and what cannot be spliced is still written correctly."""

from __future__ import annotations

import contextlib
import difflib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from inventory_helpers import COMMENTED

from scraper.inventory import parse_inventory
from server import atomic_file
from server.inventory_edit import Change, EditRefused, InventoryEditor, etag_of


class Recorder:
    """A journal that keeps the changes it was given (the audit's place in these tests)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    @contextlib.contextmanager
    def recording(self, changes: Sequence[Change]) -> Iterator[None]:
        yield
        self.changes.extend(changes)


def editor_on(tmp_path: Path, text: str | bytes) -> InventoryEditor:
    path = tmp_path / "machines.yaml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return InventoryEditor(path)


def etag(editor: InventoryEditor) -> str:
    return etag_of(editor.path.read_bytes())


def outside_changes(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_any_entry_edited_changes_only_its_own_lines(tmp_path: Path, index: int) -> None:
    editor = editor_on(tmp_path, COMMENTED)
    machine = editor.snapshot().entries[index]["id"]
    editor.patch(machine, {"name": "Renamed", "labels": {"x": "1"}}, etag(editor), Recorder())
    after = editor.path.read_text()
    parse_inventory(after)
    changed = outside_changes(COMMENTED, after)
    # Only name and labels lines, and every comment line of the file is still there, in order.
    assert all("name:" in line or "labels:" in line for line in changed), changed
    comments = [line for line in COMMENTED.splitlines() if "#" in line]
    assert [line for line in after.splitlines() if "#" in line] == comments


def test_a_list_written_at_column_0_without_blank_lines_or_final_newline(tmp_path: Path) -> None:
    text = (
        "machines:\n"
        "- id: a   # first\n"
        "  url: http://127.0.0.1:9/metrics\n"
        "# about b\n"
        "- id: b\n"
        "  url: http://127.0.0.1:9/metrics\n"
        "  site: Hall"
    )
    editor = editor_on(tmp_path, text)
    recorder = Recorder()
    editor.create({"id": "c", "url": "http://127.0.0.1:9/metrics"}, etag(editor), recorder)
    editor.patch("b", {"enabled": False}, etag(editor), recorder)
    editor.delete("a", etag(editor), recorder)
    assert editor.path.read_text() == (
        "machines:\n"
        "# about b\n"
        "- id: b\n"
        "  url: http://127.0.0.1:9/metrics\n"
        "  site: Hall\n"
        "  enabled: false\n"
        "- id: c\n"
        "  url: http://127.0.0.1:9/metrics\n"
    )
    assert [(c.action, c.machine_id) for c in recorder.changes] == [
        ("machine.create", "c"),
        ("machine.update", "b"),
        ("machine.delete", "a"),
    ]


def test_windows_line_endings_stay(tmp_path: Path) -> None:
    text = COMMENTED.replace("\n", "\r\n")
    editor = editor_on(tmp_path, text.encode())
    editor.create({"id": "drill_04", "url": "http://127.0.0.1:9/metrics"}, etag(editor), Recorder())
    data = editor.path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert data.startswith(text.split("  - id: mill_03")[0].encode())


@pytest.mark.parametrize(
    "text",
    [
        "machines: []\n",
        "# nothing yet\nmachines:\n",
        "machines: [{id: a, url: 'http://127.0.0.1:9/metrics'}]  # flow style\n",
    ],
)
def test_lists_that_cannot_be_spliced_are_written_whole(tmp_path: Path, text: str) -> None:
    editor = editor_on(tmp_path, text)
    editor.create(
        {"id": "new", "url": "http://127.0.0.1:9/metrics", "site": "Hall"}, etag(editor), Recorder()
    )
    inventory = parse_inventory(editor.path.read_text())
    assert inventory.machines[-1].id == "new"
    assert inventory.machines[-1].site == "Hall"


def test_deleting_an_anchor_others_use_is_refused(tmp_path: Path) -> None:
    text = (
        "machines:\n"
        "  - id: a\n"
        "    url: http://127.0.0.1:9/metrics\n"
        "    auth: &plant {bearer_token_env: PLANT_TOKEN}\n"
        "  - id: b\n"
        "    url: http://127.0.0.1:9/metrics\n"
        "    auth: *plant\n"
    )
    editor = editor_on(tmp_path, text)
    with pytest.raises(EditRefused) as refused:
        editor.delete("a", etag(editor), Recorder())
    assert refused.value.problems[0].loc == ("inventory",)
    assert "plant" in refused.value.problems[0].msg
    assert editor.path.read_text() == text
    # Editing the machine that uses the alias writes its value out; the anchor stays where it is.
    editor.patch("b", {"enabled": False}, etag(editor), Recorder())
    after = parse_inventory(editor.path.read_text())
    assert after.get("b").auth.bearer_token_env == "PLANT_TOKEN"  # type: ignore[union-attr]
    assert "auth: &plant {bearer_token_env: PLANT_TOKEN}" in editor.path.read_text()


def test_a_failed_write_leaves_the_file_and_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    editor = editor_on(tmp_path, COMMENTED)
    recorder = Recorder()

    def broken(source: Any, target: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_file.os, "replace", broken)
    with pytest.raises(OSError):
        editor.create({"id": "drill_04", "url": "http://127.0.0.1:9/metrics"}, etag(editor), recorder)
    assert editor.path.read_text() == COMMENTED
    assert sorted(p.name for p in tmp_path.iterdir()) == [".machines.yaml.lock", "machines.yaml"]
    assert recorder.changes == []  # the audit's transaction was not committed


def test_readers_never_see_half_a_file(tmp_path: Path) -> None:
    # A reader polling the file as the scraper's watcher does, while edits rewrite it.
    editor = editor_on(tmp_path, COMMENTED)
    os.chmod(editor.path, 0o640)
    seen: set[str] = set()
    reads = [0]
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(editor.path.read_text())
            reads[0] += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(15):
            editor.create({"id": f"m{n}", "url": "http://127.0.0.1:9/metrics"}, etag(editor), Recorder())
    finally:
        stop.set()
        reader.join()
    assert reads[0] > 15 and len(seen) > 1
    for text in seen:
        parse_inventory(text)  # every version read is a whole, valid file
    assert os.stat(editor.path).st_mode & 0o777 == 0o640
    assert len(parse_inventory(editor.path.read_text()).machines) == 18


def test_another_process_holding_the_lock_makes_an_edit_wait_then_give_up(tmp_path: Path) -> None:
    import filelock

    from server.inventory_edit import EditBusy

    editor = editor_on(tmp_path, COMMENTED)
    editor = InventoryEditor(editor.path, lock_timeout=0.3)
    other = filelock.FileLock(str(tmp_path / ".machines.yaml.lock"), thread_local=False)
    holder_ready = threading.Event()
    release = threading.Event()

    def hold() -> None:  # another writer (a second `serve`), holding the lock file
        with other:
            holder_ready.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        holder_ready.wait(10)
        with pytest.raises(EditBusy):
            editor.create({"id": "drill_04", "url": "http://127.0.0.1:9/metrics"}, etag(editor), Recorder())
        assert editor.path.read_text() == COMMENTED
    finally:
        release.set()
        holder.join()
    editor.create({"id": "drill_04", "url": "http://127.0.0.1:9/metrics"}, etag(editor), Recorder())
    assert "drill_04" in editor.path.read_text()


def test_a_save_on_disk_during_an_edit_wins_and_the_edit_is_refused(tmp_path: Path, monkeypatch) -> None:
    from server import inventory_yaml
    from server.inventory_edit import PreconditionFailed

    editor = editor_on(tmp_path, COMMENTED)
    theirs = COMMENTED.replace("Lathe 02", "Lathe 02 (saved in vim)")
    real_splice = inventory_yaml.splice

    def splice_while_someone_saves(*args: Any, **kwargs: Any) -> Any:
        editor.path.write_text(theirs)  # a person saves the file in an editor at this moment
        return real_splice(*args, **kwargs)

    monkeypatch.setattr(inventory_yaml, "splice", splice_while_someone_saves)
    recorder = Recorder()
    with pytest.raises(PreconditionFailed):
        editor.patch("press_01", {"enabled": False}, etag(editor), recorder)
    assert editor.path.read_text() == theirs
    assert recorder.changes == []


def test_a_read_parses_fast_and_prepares_the_edit_s_round_trip_parse_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 10,000 machines ruamel's round trip takes tens of seconds: a read uses libyaml's events,
    and the round trip an edit needs (comments, quotes) runs once, in the background, for the edit
    that follows; the edit still keeps every comment of the file."""
    from server import inventory_yaml

    parses: list[int] = []
    real = inventory_yaml.parse
    release = threading.Event()

    def slow_counting(text: str) -> Any:
        parses.append(len(text))
        assert release.wait(30), "the test never let the round-trip parse finish"
        return real(text)

    monkeypatch.setattr(inventory_yaml, "parse", slow_counting)
    editor = editor_on(tmp_path, COMMENTED)
    # The read answers while the round trip is still held back: it does not wait for it.
    snapshot = editor.snapshot()
    release.set()
    assert [e["id"] for e in snapshot.entries] == [m.id for m in parse_inventory(COMMENTED).machines]
    assert editor.snapshot() is snapshot  # the same bytes: no parse at all
    machine = snapshot.entries[1]["id"]
    editor.patch(machine, {"name": "Renamed"}, snapshot.etag, Recorder())
    assert len(parses) == 1, "the edit must use the parse the read started"
    after = editor.path.read_text()
    comments = [line for line in COMMENTED.splitlines() if "#" in line]
    assert [line for line in after.splitlines() if "#" in line] == comments
    assert parse_inventory(after).machines[1].name == "Renamed"
    # The next edit starts from the document the last one left: still no new parse.
    editor.patch(machine, {"name": "Renamed again"}, etag(editor), Recorder())
    assert len(parses) == 1


def test_a_read_of_a_broken_file_names_its_line_and_an_edit_is_refused_the_same_way(tmp_path: Path) -> None:
    from server.inventory_edit import InventoryUnusable

    editor = editor_on(tmp_path, "machines:\n  - id: a\n    url: [unclosed\n")
    with pytest.raises(InventoryUnusable, match=r"machines\.yaml:\d+: .*repair the file on disk first"):
        editor.snapshot()
    with pytest.raises(InventoryUnusable, match=r"machines\.yaml:\d+: "):
        editor.patch("a", {"name": "x"}, etag(editor), Recorder())
