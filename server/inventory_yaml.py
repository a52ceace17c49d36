"""machines.yaml edited as text: each changed entry is re-rendered by ruamel.yaml's round-trip dumper
and spliced into the file's own text, so every byte outside the edited entries stays as it was.

Dumping the whole document would be simpler, but ruamel.yaml normalises what it re-emits (indents,
spaces in flow mappings, quotes, the width of long lines): an edit of one machine would then show in
a review as a change of many. Here only the lines of the edited entry change.

An entry's lines run from its `-` to the line before the next entry's `-` (or the end of the list),
less the blank and comment lines at its end that are indented no deeper than its `-`: those belong to
what follows (typically the comment above the next machine) and stay where they are. Deeper
indented comment lines at its end are the entry's own and are kept after it when it is re-rendered.

A list ruamel cannot place (flow style `machines: [...]`, an empty or missing list) is written by
dumping the whole document instead (`FullDumpNeeded`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from millwatch_common.yamltext import load_roundtrip

# The order of keys in an entry the editor creates (keys not listed follow in the order given).
KEY_ORDER = (
    "id",
    "name",
    "mode",
    "url",
    "site",
    "location",
    "plan_position",
    "labels",
    "auth",
    "enabled",
    "scrape_interval",
    "scrape_timeout",
    "push_interval",
    "push_stale_intervals",
    "thresholds",
    "alerts",
)
# A mapping or list of scalars with at most this many items is written in flow style:
# `location: {lat: 52.52, lon: 13.405}`, `statuses: [alarm, down]`, as the example file does.
FLOW_ITEMS = 6


class FullDumpNeeded(Exception):
    """The machines list is not a block list of entries whose lines can be found."""


def parse(text: str) -> Any:
    """The round-trip document of `text` (quotes kept). Raises YAMLSyntaxError."""
    return load_roundtrip(text, preserve_quotes=True)


def plain(node: Any) -> Any:
    """ruamel's nodes as plain JSON values (dict, list, str, int, float, bool, None)."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return str(node)  # dates and other YAML types: shown as text (the validator refuses them)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values: `true` is not `1`, and `1` equals `1.0` only as numbers of one kind."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def to_yaml(value: Any) -> Any:
    """A plain JSON value as ruamel nodes: small mappings and lists of scalars in flow style."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = to_yaml(item)
        if 0 < len(value) <= FLOW_ITEMS and all(_scalar(v) for v in value.values()):
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(to_yaml(v) for v in value)
        if len(value) <= FLOW_ITEMS and all(_scalar(v) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def new_entry(entry: dict[str, Any]) -> CommentedMap:
    """A new machine's mapping, its keys in KEY_ORDER."""
    ordered = {k: entry[k] for k in KEY_ORDER if k in entry}
    ordered.update((k, v) for k, v in entry.items() if k not in ordered)
    node: CommentedMap = to_yaml(ordered)
    node.fa.set_block_style()
    return node


def reconcile(node: CommentedMap, wanted: dict[str, Any]) -> None:
    """Make `node` equal `wanted`, keeping the comments, order and formatting of what stays the same.

    Keys not wanted are deleted; changed values replaced in place (their comments kept); nested
    mappings reconciled key by key; new keys inserted where KEY_ORDER puts them.
    """
    for key in [k for k in node if k not in wanted]:
        del node[key]
    for key, value in wanted.items():
        if key in node:
            current = node[key]
            if isinstance(current, CommentedMap) and isinstance(value, dict) and value:
                reconcile(current, value)
            elif not same(plain(current), value):
                node[key] = to_yaml(value)
        else:
            node.insert(_position(node, key), key, to_yaml(value))


def _position(node: CommentedMap, key: str) -> int:
    """Where a new key goes: after the last present key that KEY_ORDER puts before it, else the end."""
    if key not in KEY_ORDER:
        return len(node)
    rank = KEY_ORDER.index(key)
    position = len(node)
    keys = list(node)
    for index in range(len(keys) - 1, -1, -1):
        if keys[index] in KEY_ORDER and KEY_ORDER.index(keys[index]) < rank:
            return index + 1
        if keys[index] in KEY_ORDER:
            position = index
    return position


def _scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


# --- layout and splicing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How the file indents: nested mappings, and where a list's `-` sits within its indent."""

    mapping_indent: int = 2
    seq_offset: int = 2
    newline: str = "\n"


@dataclass(frozen=True)
class Span:
    """The lines of one entry: [start, end) of the text's lines; `tail` is where its own trailing
    comment lines begin (== end when there are none)."""

    start: int
    end: int
    tail: int
    dash_col: int
    key_col: int


def layout_of(text: str, document: Any) -> Layout:
    newline = "\r\n" if "\r\n" in text else "\n"
    mapping_indent = _mapping_indent(document)
    seq_offset = 2
    machines = document.get("machines") if isinstance(document, CommentedMap) else None
    if isinstance(machines, CommentedSeq) and len(machines) and "machines" in document:
        lines = text.splitlines()
        key_line, key_col = document.lc.key("machines")
        try:
            _, dash_col = _dash(lines, *machines.lc.item(0))
        except FullDumpNeeded:
            dash_col = key_col + 2
        seq_offset = max(0, dash_col - key_col)
    return Layout(mapping_indent, seq_offset, newline)


def _mapping_indent(document: Any) -> int:
    """The indent of the first nested block mapping found (2 when there is none)."""
    for parent, key, child in _block_maps(document, 0):
        if len(child):
            first = next(iter(child))
            indent = int(child.lc.key(first)[1]) - int(parent.lc.key(key)[1])
            if 1 <= indent <= 10:
                return indent
    return 2


def _block_maps(node: Any, depth: int) -> Iterator[tuple[CommentedMap, Any, CommentedMap]]:
    if depth > 6:
        return
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            if isinstance(value, CommentedMap) and not value.fa.flow_style():
                yield node, key, value
            yield from _block_maps(value, depth + 1)
    elif isinstance(node, CommentedSeq):
        for value in list(node)[:3]:
            yield from _block_maps(value, depth + 1)


def spans(text: str, document: Any) -> list[Span]:
    """Each entry's lines; raises FullDumpNeeded when the list cannot be edited as text."""
    machines = document.get("machines") if isinstance(document, CommentedMap) else None
    if not isinstance(machines, CommentedSeq) or not len(machines) or machines.fa.flow_style():
        raise FullDumpNeeded()
    lines = text.splitlines()
    keys = list(document)
    after = keys.index("machines") + 1
    list_end = document.lc.key(keys[after])[0] if after < len(keys) else len(lines)
    starts = []
    for index in range(len(machines)):
        line, col = machines.lc.item(index)
        dash_line, dash_col = _dash(lines, line, col)
        starts.append((dash_line, dash_col, col))
    result = []
    for index, (start, dash_col, key_col) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else list_end
        end = _trim(lines, start, end, dash_col)
        tail = end
        while tail > start + 1 and _blank_or_comment(lines[tail - 1]):
            tail -= 1
        result.append(Span(start, end, tail, dash_col, key_col))
    return result


def _dash(lines: Sequence[str], line: int, col: int) -> tuple[int, int]:
    """The line and column of the `-` of the list item whose content starts at (line, col)."""
    text = lines[line] if line < len(lines) else ""
    j = min(col, len(text)) - 1
    while j >= 0 and text[j] == " ":
        j -= 1
    if j >= 0 and text[j] == "-":
        return line, j
    if j >= 0 and text[j] == "&":  # `- &anchor` then the mapping: the dash is before the anchor
        dash = text.find("-")
        if 0 <= dash < j:
            return line, dash
    for previous in range(line - 1, -1, -1):  # `-` alone (or with an anchor) on a line of its own
        stripped = lines[previous].strip()
        if stripped.startswith("-"):
            return previous, lines[previous].index("-")
        if stripped and not stripped.startswith("#"):
            break
    raise FullDumpNeeded()


def _trim(lines: Sequence[str], start: int, end: int, dash_col: int) -> int:
    while end > start + 1:
        text = lines[end - 1]
        stripped = text.strip()
        if not stripped or (stripped.startswith("#") and _indent(text) <= dash_col):
            end -= 1
        else:
            break
    return end


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _blank_or_comment(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.startswith("#")


def render(entry: CommentedMap, dash_col: int, key_col: int, layout: Layout) -> list[str]:
    """The entry's lines as the file will hold them: its `-` at `dash_col`, its keys at `key_col`."""
    _drop_following_comment(entry)
    yaml = YAML(typ="rt")
    yaml.width = 4096  # never fold a long line the file did not fold
    gap = max(2, key_col - dash_col)
    yaml.indent(mapping=layout.mapping_indent, sequence=layout.seq_offset + gap, offset=layout.seq_offset)
    out = io.StringIO()
    yaml.dump(CommentedSeq([entry]), out)
    lines = out.getvalue().splitlines()
    shift = dash_col - layout.seq_offset
    if shift > 0:
        lines = [" " * shift + line if line else line for line in lines]
    elif shift < 0:
        lines = [line[min(-shift, _indent(line)) :] for line in lines]
    while lines and _blank_or_comment(lines[-1]):
        lines.pop()
    return lines


def _drop_following_comment(entry: CommentedMap) -> None:
    """Cut the comment lines ruamel hangs on the entry's last value: in the file they follow the entry
    (the comment of the next machine, say), and they stay there; only the end-of-line comment stays."""
    node: Any = entry
    holder: Any = None
    key: Any = None
    for _ in range(50):
        if isinstance(node, CommentedMap) and len(node):
            holder, key = node, list(node)[-1]
        elif isinstance(node, CommentedSeq) and len(node):
            holder, key = node, len(node) - 1
        else:
            break
        value = holder[key]
        if not isinstance(value, CommentedMap | CommentedSeq) or value.fa.flow_style() or not len(value):
            break
        node = value
    if holder is None:
        return
    slots = holder.ca.items.get(key)
    if not slots:
        return
    index = 2 if isinstance(holder, CommentedMap) else 0
    token = slots[index] if len(slots) > index else None
    if token is None or not hasattr(token, "value"):
        return
    text = str(token.value)
    if text.startswith("#"):
        first, _, _ = text.partition("\n")
        token.value = first + "\n"
    else:
        slots[index] = None
    if isinstance(holder, CommentedMap) and holder.ca.end:
        holder.ca.end = []


def splice(
    text: str,
    document: Any,
    replaced: Mapping[int, CommentedMap | None],
    appended: Sequence[CommentedMap],
    layout: Layout,
) -> str:
    """The text with the entries at the indexes of `replaced` re-rendered (None: deleted) and
    `appended` added after the last entry. Raises FullDumpNeeded (then use `full_dump`)."""
    all_spans = spans(text, document)
    lines = text.splitlines(keepends=True)
    nl = layout.newline
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    if appended:
        last = all_spans[-1]
        # Entries separated by a blank line (as the last one is from the one before) get one too.
        gap = [nl] if last.start > 0 and not lines[last.start - 1].strip() else []
        added: list[str] = []
        for new in appended:
            added += gap + [line + nl for line in render(new, last.dash_col, last.key_col, layout)]
        lines[last.end : last.end] = added
    for index in sorted(replaced, reverse=True):
        span = all_spans[index]
        entry = replaced[index]
        if entry is None:
            lines[span.start : span.end] = []
            continue
        own_tail = lines[span.tail : span.end]
        rendered = [line + nl for line in render(entry, span.dash_col, span.key_col, layout)]
        lines[span.start : span.end] = rendered + own_tail
    return "".join(lines)


def full_dump(document: Any, layout: Layout) -> str:
    """The whole document dumped by ruamel (comments kept, formatting normalised)."""
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=layout.mapping_indent, sequence=layout.seq_offset + 2, offset=layout.seq_offset)
    out = io.StringIO()
    yaml.dump(document, out)
    text = out.getvalue()
    return text.replace("\n", layout.newline) if layout.newline != "\n" else text
