"""The inventory editor behind `/api/inventory`: reads `machines.yaml` as written, and changes it
entry by entry, safely.

- **One writer at a time**: a lock within the process and a lock file (`.machines.yaml.lock` beside
  it) across processes.
- **Optimistic concurrency**: the file's ETag is a hash of its bytes; every change names the ETag
  it was made against (`If-Match`) and is refused when the file has changed since (412), whoever
  changed it: another admin, or someone editing the file on disk.
- **The file stays the file**: the edited entries are spliced into the text (server/inventory_yaml.py),
  so comments, order and formatting of everything else are kept byte for byte.
- **Validated as a whole**: the new text is checked by the code of `millwatch check` before it is
  written; refusals carry the field path within the machine's entry.
- **Atomic and audited**: the audit rows are inserted in a transaction that commits only once the
  new file is in place (server/atomic_file.py); the scraper's inventory watcher reloads it.

- **Fast to read at 10,000 machines**: a read parses the file with libyaml's events
  (scraper/yaml_fast.py, several times faster than ruamel's pure-Python round trip), then starts
  the round-trip parse that an edit needs (comments, quotes) in a thread of its own, so an admin's
  change that follows a read finds it ready, or waits only for what is left of it.

Synchronous: the routes call it in a thread.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import filelock
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from millwatch_common.yamltext import YAMLSyntaxError
from scraper.errors import InventoryError, Problem
from scraper.inventory import check_document
from scraper.yaml_fast import load_with_lines
from server import inventory_yaml
from server.atomic_file import write_atomically

ETAG_HEX = 32
MASK = "***"
LOCK_TIMEOUT_SECONDS = 10.0
MAX_DEPTH = 12  # an entry nests at most alerts -> rule -> statuses; deeper is surely not a machine
MAX_DIFF_CHARS = 64 * 1024
# Keys whose string values are secrets when written inline; `..._file` and `..._env` only name
# where a secret is, and are shown.
_SECRET_KEY = re.compile(r"pass(word)?|token|secret|api_?key|credential|private", re.IGNORECASE)
_REFERENCE_KEY = re.compile(r"_(file|env)$")


# --- errors (each one HTTP status in server/routes/inventory.py) -----------------------------------


class EditError(Exception):
    """An inventory change was not made; the file is as it was."""


class PreconditionRequired(EditError):
    """No `If-Match` (428): a change must name the version of the file it was made against."""


class PreconditionFailed(EditError):
    """The file changed since the version named (412); `current` is the machine's entry now."""

    def __init__(self, etag: str, current: dict[str, Any] | None) -> None:
        super().__init__("machines.yaml has changed since you read it: reload and redo your change")
        self.etag = etag
        self.current = current


class MachineExists(EditError):
    """A machine with this id is in the file already (409)."""

    def __init__(self, machine_id: str) -> None:
        super().__init__(f"a machine with id {machine_id!r} exists already")
        self.machine_id = machine_id


class MachineNotFound(EditError):
    """No machine with this id in the file (404)."""

    def __init__(self, machine_id: str) -> None:
        super().__init__(f"no machine with id {machine_id!r} in the inventory")
        self.machine_id = machine_id


class InventoryUnusable(EditError):
    """The file cannot be read or parsed at all (409): it has to be repaired on disk first."""


class EditBusy(EditError):
    """Another edit held the lock too long (503)."""


@dataclass(frozen=True)
class FieldProblem:
    """One reason a change was refused. `loc` is the path within the machine's entry
    (`["location", "lat"]`); a problem elsewhere in the file has `loc` `["inventory", ...path]`
    and its `line` in the file."""

    loc: tuple[str | int, ...]
    msg: str
    machine: str | None = None
    row: int | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": list(self.loc), "msg": self.msg}
        if self.machine is not None:
            out["machine"] = self.machine
        if self.row is not None:
            out["row"] = self.row
        if self.line is not None:
            out["line"] = self.line
        return out


class EditRefused(EditError):
    """The change would make the inventory invalid (422); `problems` say where and why."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__("; ".join(p.msg for p in problems[:5]))
        self.problems = list(problems)


# --- what changed ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One machine's entry before and after a change (None: absent), as written, unmasked."""

    action: str  # machine.create, machine.update, machine.delete
    machine_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def diff(self) -> str:
        """A unified diff of the entry's YAML, secrets masked, bounded in size."""
        old = _entry_text(self.before)
        new = _entry_text(self.after)
        lines = difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{self.machine_id} (before)",
            tofile=f"{self.machine_id} (after)",
        )
        text = "".join(lines)
        if len(text) > MAX_DIFF_CHARS:
            text = text[:MAX_DIFF_CHARS] + "\n... (diff cut at 64 KiB)\n"
        return text


class Journal(Protocol):
    """Where changes are recorded: rows inserted, then committed only if the block succeeds."""

    def recording(self, changes: Sequence[Change]) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class Snapshot:
    """The file as it is: its ETag, every entry as written (unmasked), and its current problems."""

    etag: str
    entries: list[dict[str, Any]]
    problems: list[FieldProblem] = field(default_factory=list)

    def entry(self, machine_id: str) -> dict[str, Any] | None:
        return next((e for e in self.entries if e.get("id") == machine_id), None)


@dataclass(frozen=True)
class EditResult:
    """The file's new ETag (the old one when nothing changed), what changed, and the edited
    machine's entry as now written (unmasked; None for a deletion or an import)."""

    etag: str
    changes: list[Change]
    entry: dict[str, Any] | None = None


# An edit plans its change on the parsed document: which entries (by index) to replace or delete,
# which to append, and the changes to record. `rows` maps an entry's final index to (machine, row)
# so that a refusal names the machine (and the import's row) it is about.
@dataclass
class Plan:
    replaced: dict[int, CommentedMap | None] = field(default_factory=dict)
    appended: list[CommentedMap] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    rows: dict[str, int | None] = field(default_factory=dict)
    entry: dict[str, Any] | None = None  # the edited machine's entry after the change


class InventoryEditor:
    """Reads and edits the inventory at `path` (see the module's docstring)."""

    def __init__(self, path: Path, *, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self._thread_lock = threading.Lock()
        self._file_lock = filelock.FileLock(
            str(self.path.with_name(f".{self.path.name}.lock")), timeout=lock_timeout
        )
        self._lock_timeout = lock_timeout
        self._cache: Snapshot | None = None
        # The parsed document of the file at an ETag, for the next edit to start from: ruamel's
        # round-trip parser takes about a millisecond per machine, so an edit of a 10,000-machine
        # file after a read (or another edit) parses once, not twice. An edit takes it (it changes
        # it); it is put back only by a successful parse.
        self._document: tuple[str, Any, inventory_yaml.Layout] | None = None
        # The round-trip parse started by a read, for the next edit (by ETag); one at a time.
        self._document_lock = threading.Lock()
        self._preparing: tuple[str, Future[tuple[Any, inventory_yaml.Layout]]] | None = None

    # --- reading -----------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The file now (parsed again only when its bytes changed). Raises InventoryUnusable."""
        data = self._read_bytes()
        etag = etag_of(data)
        cached = self._cache
        if cached is not None and cached.etag == etag:
            return cached
        text = _text(data)
        try:
            document = load_with_lines(text)
        except YAMLSyntaxError as e:
            raise self._unusable(e) from None
        snapshot = Snapshot(etag, _entries(document), self._problems_of(document))
        self._cache = snapshot
        self._prepare(etag, text)
        return snapshot

    def _prepare(self, etag: str, text: str) -> None:
        """Start the round-trip parse of the file at `etag` for the next edit, unless one is kept or
        under way for it."""
        with self._document_lock:
            if self._document is not None and self._document[0] == etag:
                return
            if self._preparing is not None and (self._preparing[0] == etag or not self._preparing[1].done()):
                # One parse at a time: a file changed again meanwhile is parsed by the edit itself.
                return

            future: Future[tuple[Any, inventory_yaml.Layout]] = Future()
            self._preparing = (etag, future)

        def parse() -> None:
            future.set_running_or_notify_cancel()
            try:
                document = inventory_yaml.parse(text)
                future.set_result((document, inventory_yaml.layout_of(text, document)))
            except BaseException as e:  # noqa: BLE001 - handed to the edit that waits for it
                future.set_exception(e)

        # A daemon thread: a parse under way never holds up the server's exit.
        threading.Thread(target=parse, name="millwatch-inventory-parse", daemon=True).start()

    def _take_document(self, etag: str, data: bytes) -> tuple[Any, inventory_yaml.Layout]:
        """The round-trip document of the file at `etag` for an edit to change: the one kept after
        the last edit, or the one a read prepared (waiting for the rest of its parse), or a new parse.
        Either way it is the edit's own: nothing else holds it any more."""
        with self._document_lock:
            kept, self._document = self._document, None
            preparing, self._preparing = self._preparing, None
        if kept is not None and kept[0] == etag:
            return kept[1], kept[2]
        if preparing is not None and preparing[0] == etag:
            try:
                return preparing[1].result()
            except Exception:  # noqa: BLE001 - parsed again below, which says what is wrong
                pass
        document = self._parse(data)
        return document, inventory_yaml.layout_of(_text(data), document)

    # --- changes -----------------------------------------------------------------------------------

    def create(self, entry: Any, if_match: str | None, journal: Journal) -> EditResult:
        """Add a machine at the end of the list. MachineExists (409) when its id is taken."""
        wanted = _entry_body(entry, None)
        machine_id = wanted["id"]

        def plan(document: Any) -> Plan:
            if _index_of(document, machine_id) is not None:
                raise MachineExists(machine_id)
            return Plan(
                appended=[inventory_yaml.new_entry(wanted)],
                changes=[Change("machine.create", machine_id, None, wanted)],
                rows={machine_id: None},
                entry=wanted,
            )

        return self._edit(if_match, machine_id, plan, journal)

    def replace(self, machine_id: str, entry: Any, if_match: str | None, journal: Journal) -> EditResult:
        """Replace a machine's entry by `entry` (its id may change to a free one: a rename)."""
        wanted = _entry_body(entry, machine_id)
        return self._update(machine_id, lambda _current: wanted, if_match, journal)

    def patch(self, machine_id: str, patch: Any, if_match: str | None, journal: Journal) -> EditResult:
        """Apply a JSON merge patch (RFC 7396) to a machine's entry."""
        if not isinstance(patch, dict):
            raise EditRefused([FieldProblem((), "a merge patch must be a JSON object")])
        _check_json(patch, ())

        def patched(current: dict[str, Any]) -> dict[str, Any]:
            result = merge_patch(current, patch)
            return _entry_body(result, machine_id)

        return self._update(machine_id, patched, if_match, journal)

    def delete(self, machine_id: str, if_match: str | None, journal: Journal) -> EditResult:
        def plan(document: Any) -> Plan:
            index = _index_of(document, machine_id)
            if index is None:
                raise MachineNotFound(machine_id)
            before = inventory_yaml.plain(document["machines"][index])
            return Plan(replaced={index: None}, changes=[Change("machine.delete", machine_id, before, None)])

        return self._edit(if_match, machine_id, plan, journal)

    def upsert_many(
        self,
        rows: Sequence[tuple[int, dict[str, Any]]],
        merge: bool,
        if_match: str | None,
        journal: Journal,
    ) -> EditResult:
        """Add or replace machines by id, all or nothing (the bulk import). `rows` are (row number,
        entry); with `merge`, an existing machine keeps the keys an entry does not have."""

        def plan(document: Any) -> Plan:
            result = Plan()
            machines = document.get("machines") if isinstance(document, Mapping) else None
            for row, entry in rows:
                machine_id = entry["id"]
                index = _index_of(document, machine_id)
                result.rows[machine_id] = row
                if index is None:
                    added = {k: v for k, v in entry.items() if v is not None}
                    result.appended.append(inventory_yaml.new_entry(added))
                    result.changes.append(Change("machine.import", machine_id, None, added))
                    continue
                assert machines is not None
                node = machines[index]
                before = inventory_yaml.plain(node)
                after = {**before, **entry} if merge else entry
                after = {k: v for k, v in after.items() if v is not None}
                if inventory_yaml.same(before, after):
                    continue
                inventory_yaml.reconcile(node, after)
                result.replaced[index] = node
                result.changes.append(Change("machine.import", machine_id, before, after))
            return result

        return self._edit(if_match, None, plan, journal)

    def _update(
        self,
        machine_id: str,
        make: Callable[[dict[str, Any]], dict[str, Any]],
        if_match: str | None,
        journal: Journal,
    ) -> EditResult:
        def plan(document: Any) -> Plan:
            index = _index_of(document, machine_id)
            if index is None:
                raise MachineNotFound(machine_id)
            node = document["machines"][index]
            before = inventory_yaml.plain(node)
            after = make(before)
            new_id = after["id"]
            if new_id != machine_id and _index_of(document, new_id) is not None:
                raise MachineExists(new_id)
            if inventory_yaml.same(before, after):
                return Plan(entry=before)
            inventory_yaml.reconcile(node, after)
            return Plan(
                replaced={index: node},
                changes=[Change("machine.update", new_id, before, after)],
                rows={new_id: None},
                entry=after,
            )

        return self._edit(if_match, machine_id, plan, journal)

    def _edit(
        self, if_match: str | None, machine_id: str | None, plan: Callable[[Any], Plan], journal: Journal
    ) -> EditResult:
        if if_match is None or not if_match.strip():
            raise PreconditionRequired(
                "If-Match is required: send the ETag of your last read of the inventory"
            )
        with self._locked():
            data = self._read_bytes()
            etag = etag_of(data)
            if not etag_matches(if_match, etag):
                current = None
                if machine_id is not None:
                    try:
                        found = self.snapshot().entry(machine_id)
                    except InventoryUnusable:
                        found = None
                    current = None if found is None else mask_secrets(found)
                raise PreconditionFailed(etag, current)
            text = _text(data)
            document, layout = self._take_document(etag, data)
            steps = plan(document)
            if not steps.changes:
                return EditResult(etag, [], steps.entry)
            new_document: Any = None
            try:
                spliced = inventory_yaml.splice(text, document, steps.replaced, steps.appended, layout)
                new_text = spliced.text
                new_document = self._checked_in_place(document, steps, spliced)
            except inventory_yaml.FullDumpNeeded:
                _append_in_document(document, steps)
                new_text = inventory_yaml.full_dump(document, layout)
            if new_document is None:
                new_document = self._validate(new_text, steps)
            new_data = new_text.encode("utf-8")
            if self._read_bytes() != data:
                # Saved on disk while this edit was being made (an editor does not take our lock):
                # theirs stays, this one is refused like any stale change.
                raise PreconditionFailed(etag_of(self._read_bytes()), None)
            with journal.recording(steps.changes):
                write_atomically(self.path, new_data)
            new_etag = etag_of(new_data)
            self._cache = Snapshot(new_etag, _entries(new_document), [])
            with self._document_lock:
                self._document = (new_etag, new_document, layout)
            return EditResult(new_etag, steps.changes, steps.entry)

    def _checked_in_place(self, document: Any, steps: Plan, spliced: inventory_yaml.Spliced) -> Any:
        """The edited document itself when it is surely what the new text says and it is valid; None
        to have the new text parsed and checked instead (a refusal then places each problem).

        Parsing a 10,000-machine file takes ruamel seconds; the text outside the edited entries is
        the old text, so it is enough that each re-rendered entry reads back as itself and that no
        anchor or alias was in the lines replaced (an alias elsewhere may need them).
        """
        if "&" in spliced.touched or "*" in spliced.touched:
            return None
        if not all(inventory_yaml.reads_back(entry, lines) for entry, lines in spliced.rendered):
            return None
        _append_in_document(document, steps)
        try:
            check_document(document, name=self.path.name, folder=self.path.resolve().parent)
        except Exception:  # noqa: BLE001 - refused or not, the full check says it with its places
            return None
        return document

    def _validate(self, text: str, steps: Plan) -> Any:
        """The new text's document, or EditRefused with each problem placed in its machine's entry."""
        try:
            document = inventory_yaml.parse(text)
            check_document(document, name=self.path.name, folder=self.path.resolve().parent)
        except YAMLSyntaxError as e:
            # An edit that breaks the YAML itself: an alias whose anchor was in a deleted entry.
            raise EditRefused([FieldProblem(("inventory",), e.message, line=e.line)]) from None
        except InventoryError as e:
            machines = document.get("machines") if isinstance(document, Mapping) else None
            ids = [m.get("id") if isinstance(m, Mapping) else None for m in (machines or [])]
            raise EditRefused([_placed(p, ids, steps.rows) for p in e.problems]) from None
        return document

    # --- file access -------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self._thread_lock.acquire(timeout=self._lock_timeout):
            raise EditBusy("another inventory edit is in progress; try again")
        try:
            try:
                self._file_lock.acquire()
            except filelock.Timeout:
                raise EditBusy(f"another process holds {self._file_lock.lock_file}; try again") from None
            try:
                yield
            finally:
                self._file_lock.release()
        finally:
            self._thread_lock.release()

    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as e:
            raise InventoryUnusable(f"cannot read {self.path.name}: {e.strerror or e}") from e

    def _parse(self, data: bytes) -> Any:
        try:
            return inventory_yaml.parse(_text(data))
        except YAMLSyntaxError as e:
            raise self._unusable(e) from None

    def _unusable(self, error: YAMLSyntaxError) -> InventoryUnusable:
        where = f"{self.path.name}:{error.line}" if error.line else self.path.name
        return InventoryUnusable(f"{where}: {error.message}; repair the file on disk first")

    def _problems_of(self, document: Any) -> list[FieldProblem]:
        try:
            check_document(document, name=self.path.name, folder=self.path.resolve().parent)
        except InventoryError as e:
            machines = document.get("machines") if isinstance(document, Mapping) else None
            ids = [m.get("id") if isinstance(m, Mapping) else None for m in (machines or [])]
            return [_placed(p, ids, {}) for p in e.problems]
        return []


# --- helpers ---------------------------------------------------------------------------------------


def etag_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:ETAG_HEX]


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-Match header names `etag` (a list of tags, weak or strong, quoted or bare;
    `*` is not accepted: a change must say which version it saw)."""
    for part in header.split(","):
        tag = part.strip().removeprefix("W/").strip().strip('"')
        if tag == etag:
            return True
    return False


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, `null` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def mask_secrets(value: Any) -> Any:
    """`value` with every inline secret (a string under a key such as `password` or `token`, a
    password in a URL) replaced by "***"; file paths and environment variable names are kept."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            secret = _SECRET_KEY.search(str(key)) and not _REFERENCE_KEY.search(str(key))
            out[key] = MASK if secret and isinstance(item, str | int | float) else mask_secrets(item)
        return out
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str) and "://" in value and "@" in value:
        return re.sub(r"(://[^/@\s:]*):[^/@\s]*@", rf"\1:{MASK}@", value)
    return value


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InventoryUnusable(f"line {line}: not valid UTF-8 text; repair the file on disk first") from None


def _entries(document: Any) -> list[dict[str, Any]]:
    machines = document.get("machines") if isinstance(document, Mapping) else None
    if not isinstance(machines, list):
        return []
    return [inventory_yaml.plain(m) for m in machines if isinstance(m, Mapping)]


def _index_of(document: Any, machine_id: str) -> int | None:
    machines = document.get("machines") if isinstance(document, Mapping) else None
    if not isinstance(machines, list):
        return None
    for index, machine in enumerate(machines):
        if isinstance(machine, Mapping) and machine.get("id") == machine_id:
            return index
    return None


def _append_in_document(document: Any, steps: Plan) -> None:
    """The edit for a list that cannot be spliced as text (empty, missing, flow style)."""
    if not isinstance(document, CommentedMap):
        raise EditRefused([FieldProblem(("inventory",), "the file's top level must be a mapping")])
    machines = document.get("machines")
    if not isinstance(machines, CommentedSeq):
        machines = CommentedSeq()
        document["machines"] = machines
    for index in sorted(steps.replaced, reverse=True):
        entry = steps.replaced[index]
        if entry is None:
            del machines[index]
        else:
            machines[index] = entry
    machines.extend(steps.appended)


def _placed(problem: Problem, ids: Sequence[Any], rows: Mapping[str, int | None]) -> FieldProblem:
    """A validation problem in the machine's terms: the path within its entry, its id and row."""
    loc = problem.loc
    if len(loc) >= 2 and loc[0] == "machines" and isinstance(loc[1], int) and loc[1] < len(ids):
        machine_id = ids[loc[1]]
        if isinstance(machine_id, str) and machine_id in rows:
            return FieldProblem(tuple(loc[2:]), problem.message, machine_id, rows[machine_id])
        if isinstance(machine_id, str):
            where = f"{problem.path} (machine {machine_id!r}, line {problem.line})"
            message = f"{where}: {problem.message}"
            return FieldProblem(("inventory", *loc), message, machine_id, None, problem.line)
    where = problem.path or "the file"
    line = f" (line {problem.line})" if problem.line else ""
    return FieldProblem(("inventory", *loc), f"{where}{line}: {problem.message}", line=problem.line)


def _entry_body(entry: Any, machine_id: str | None) -> dict[str, Any]:
    """A machine entry sent by a client, checked for shape (the inventory's rules check the rest)."""
    if not isinstance(entry, dict):
        raise EditRefused([FieldProblem((), "a machine must be a JSON object")])
    _check_json(entry, ())
    body = dict(entry)
    if machine_id is not None and "id" not in body:
        body = {"id": machine_id, **body}
    if not isinstance(body.get("id"), str) or not body["id"]:
        raise EditRefused([FieldProblem(("id",), "required: the machine's id")])
    # null means "not set" here as in a merge patch: the file holds no key rather than `key: null`.
    return {k: v for k, v in body.items() if v is not None}


def _check_json(value: Any, loc: tuple[str | int, ...]) -> None:
    """Refuse what cannot be a YAML entry: too deep, or a number JSON cannot carry."""
    if len(loc) > MAX_DEPTH:
        raise EditRefused([FieldProblem(loc, f"nested deeper than {MAX_DEPTH} levels")])
    if isinstance(value, float) and not math.isfinite(value):
        raise EditRefused([FieldProblem(loc, "must be a finite number")])
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, (*loc, index))


def _entry_text(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return ""
    yaml = YAML(typ="rt")
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(inventory_yaml.new_entry(mask_secrets(entry)), out)
    return out.getvalue()
