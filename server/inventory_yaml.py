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
import re
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
    """The file's indents: nested mappings from the document's columns, the list's from its text."""
    newline = "\r\n" if "\r\n" in text else "\n"
    try:
        mapping_indent = _mapping_indent(document)
    except (AttributeError, KeyError, TypeError):  # nodes without positions (made by an edit)
        mapping_indent = 2
    found = _scan(text.splitlines())
    seq_offset = found[0][0][1] if found is not None and found[0] else 2
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


def spans(text: str, count: int) -> list[Span]:
    """Each of the `count` entries' lines, found in the text alone (so a document whose line numbers
    are out of date still edits right); FullDumpNeeded when the list is not a block list of them."""
    lines = text.splitlines()
    found = _scan(lines)
    if found is None or not found[0] or len(found[0]) != count:
        raise FullDumpNeeded()
    starts, list_end = found
    result = []
    for index, (start, dash_col, key_col) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else list_end
        end = _trim(lines, start, end, dash_col)
        tail = end
        while tail > start + 1 and _blank_or_comment(lines[tail - 1]):
            tail -= 1
        result.append(Span(start, end, tail, dash_col, key_col))
    return result


_MACHINES_KEY = re.compile(r"""^(machines|"machines"|'machines')[ \t]*:[ \t]*(#.*)?$""")


def _scan(lines: Sequence[str]) -> tuple[list[tuple[int, int, int]], int] | None:
    """The block list under the top-level `machines:`: (dash line, dash column, key column) of each
    item and the line where the list ends; None when there is no such list.

    In YAML a line indented as far as the list's `-` and starting with `- ` is an item of that list:
    block scalars, continuation lines and nested content are all indented deeper.
    """
    key_line = next((i for i, line in enumerate(lines) if _MACHINES_KEY.match(line)), None)
    if key_line is None:
        return None
    starts: list[tuple[int, int, int]] = []
    dash_col: int | None = None
    end = len(lines)
    for number in range(key_line + 1, len(lines)):
        line = lines[number]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = _indent(line)
        if indent == 0 and (stripped.startswith(("---", "...")) or not stripped.startswith("-")):
            end = number  # the next top-level key, or the document's end
            break
        if dash_col is None:
            if not _is_dash(line, indent):
                return None
            dash_col = indent
        if indent == dash_col and _is_dash(line, indent):
            starts.append((number, dash_col, _key_col(lines, number, dash_col)))
        elif indent < dash_col:
            return None
    return starts, end


def _is_dash(line: str, col: int) -> bool:
    return line[col : col + 1] == "-" and (len(line) == col + 1 or line[col + 1] in " \t")


def _key_col(lines: Sequence[str], number: int, dash_col: int) -> int:
    rest = lines[number][dash_col + 1 :]
    content = rest.lstrip()
    if content and not content.startswith(("#", "&", "!")):
        return dash_col + 1 + len(rest) - len(content)
    for following in lines[number + 1 :]:  # `-` (or `- &anchor`) alone: the mapping starts below
        if following.strip() and not following.strip().startswith("#"):
            return _indent(following)
    return dash_col + 2


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


@dataclass
class Spliced:
    """The new text; the original lines of the replaced and deleted entries; each re-rendered entry
    with its lines (for the editor's check that they read back as the entry)."""

    text: str
    touched: str
    rendered: list[tuple[CommentedMap, list[str]]]


def splice(
    text: str,
    document: Any,
    replaced: Mapping[int, CommentedMap | None],
    appended: Sequence[CommentedMap],
    layout: Layout,
) -> Spliced:
    """The text with the entries at the indexes of `replaced` re-rendered (None: deleted) and
    `appended` added after the last entry. Raises FullDumpNeeded (then use `full_dump`)."""
    machines = document.get("machines") if isinstance(document, Mapping) else None
    if not isinstance(machines, CommentedSeq) or not len(machines) or machines.fa.flow_style():
        raise FullDumpNeeded()
    all_spans = spans(text, len(machines))
    lines = text.splitlines(keepends=True)
    nl = layout.newline
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    rendered: list[tuple[CommentedMap, list[str]]] = []
    touched: list[str] = []
    if appended:
        last = all_spans[-1]
        # Entries separated by a blank line (as the last one is from the one before) get one too.
        gap = [nl] if last.start > 0 and not lines[last.start - 1].strip() else []
        added: list[str] = []
        for new in appended:
            new_lines = render(new, last.dash_col, last.key_col, layout)
            rendered.append((new, new_lines))
            added += gap + [line + nl for line in new_lines]
        lines[last.end : last.end] = added
    for index in sorted(replaced, reverse=True):
        span = all_spans[index]
        entry = replaced[index]
        touched += lines[span.start : span.end]
        if entry is None:
            lines[span.start : span.end] = []
            continue
        own_tail = lines[span.tail : span.end]
        new_lines = render(entry, span.dash_col, span.key_col, layout)
        rendered.append((entry, new_lines))
        lines[span.start : span.end] = [line + nl for line in new_lines] + own_tail
    return Spliced("".join(lines), "".join(touched), rendered)


def reads_back(entry: CommentedMap, lines: Sequence[str]) -> bool:
    """Whether an entry's rendered lines, read alone, are the entry's data again."""
    if not lines:
        return False
    shift = _indent(lines[0])
    try:
        items = load_roundtrip("\n".join(line[min(shift, _indent(line)) :] for line in lines) + "\n")
    except ValueError:
        return False
    return isinstance(items, list) and len(items) == 1 and same(plain(items[0]), plain(entry))


def full_dump(document: Any, layout: Layout) -> str:
    """The whole document dumped by ruamel (comments kept, formatting normalised)."""
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=layout.mapping_indent, sequence=layout.seq_offset + 2, offset=layout.seq_offset)
    out = io.StringIO()
    yaml.dump(document, out)
    text = out.getvalue()
    return text.replace("\n", layout.newline) if layout.newline != "\n" else text
