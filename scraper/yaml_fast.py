"""Large YAML files read fast, with the line of every key, as ruamel's round-trip loader reads them.

ruamel.yaml is pure Python: a `machines.yaml` of 10,000 machines took 25 s to read on an idle
machine of this class (97 s on a loaded one), on every reload and every read by the inventory
API. libyaml (PyYAML's C parser) turns the same text into events in a fraction of that; this
module builds the document from those events exactly as `millwatch_common.yamltext.load_roundtrip`
would: `CommentedMap` / `CommentedSeq` with the `.lc` lines the checks name problems with, and
scalars resolved by ruamel's own YAML 1.2 resolver (`no` is a string, `017` is 17), never by
PyYAML's YAML 1.1 rules. Anchors and aliases share one object, as in ruamel, under the same
bound on what aliases expand to.

Whatever this builder does not mirror exactly goes to ruamel instead, which then also gives its
own error message and line: syntax errors, duplicate keys, merge keys (`<<`), explicit tags, keys
that are not scalars, timestamps, a recursive alias, an alias bomb. Comments are not kept: a file
that is written back is loaded with `load_roundtrip`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

from millwatch_common.yamltext import ALIAS_NODES_PER_NODE, MAX_ALIAS_NODES, MAX_DEPTH, load_roundtrip

# libyaml when PyYAML was built with it (its wheels are); the pure-Python parser otherwise, still
# faster than ruamel's round-trip scanner, which gathers comments.
_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"


class _Unsupported(Exception):
    """Something ruamel should read (and word the error for, if it is one)."""


def load_with_lines(text: str) -> Any:
    """`text` as `load_roundtrip(text)` returns it, without the comments; much faster for big files.

    Raises YAMLSyntaxError (from ruamel, through `load_roundtrip`) for a text that is not YAML.
    """
    try:
        return _Builder().document(yaml.parse(text, Loader=_Parser))
    except (yaml.YAMLError, _Unsupported, RecursionError):
        return load_roundtrip(text)


class _Builder:
    def __init__(self) -> None:
        self._resolver = VersionedResolver()
        self._anchors: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}  # nodes each anchor stands for, its own aliases expanded
        self._marks: dict[str, Any] = {}  # where each anchored node starts
        self._tags: dict[str, str] = {}  # plain scalar -> its tag (a fleet repeats its values)
        self._own_nodes = 0
        self._alias_nodes = 0
        self._depth = 0

    def document(self, events: Iterator[Any]) -> Any:
        event = next(events)
        if not isinstance(event, yaml.StreamStartEvent):
            raise _Unsupported
        event = next(events)
        if isinstance(event, yaml.StreamEndEvent):
            return None
        if not isinstance(event, yaml.DocumentStartEvent):
            raise _Unsupported
        value, _ = self._node(events, next(events))
        if not isinstance(next(events), yaml.DocumentEndEvent):
            raise _Unsupported
        if not isinstance(next(events), yaml.StreamEndEvent):
            raise _Unsupported  # several documents: ruamel says so
        return value

    def _node(self, events: Iterator[Any], event: Any) -> tuple[Any, int]:
        """The value of the node that starts with `event`, and how many nodes it stands for."""
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self._anchors:
                raise _Unsupported  # undefined, or an alias inside its own anchor
            size = self._sizes[event.anchor]
            self._alias_nodes += size
            if self._alias_nodes > max(MAX_ALIAS_NODES, ALIAS_NODES_PER_NODE * self._own_nodes):
                raise _Unsupported
            return self._anchors[event.anchor], size
        self._own_nodes += 1
        if isinstance(event, yaml.ScalarEvent):
            value, size = self._scalar(event), 1
        elif isinstance(event, yaml.SequenceStartEvent):
            value, size = self._sequence(events, event)
        elif isinstance(event, yaml.MappingStartEvent):
            value, size = self._mapping(events, event)
        else:
            raise _Unsupported
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._anchors[anchor] = value
            self._sizes[anchor] = size
            self._marks[anchor] = event.start_mark
        return value, size

    def _scalar(self, event: Any) -> Any:
        if event.tag is not None and not (event.implicit[0] or event.implicit[1]):
            raise _Unsupported  # an explicit tag (`!!str 5`, `!custom`)
        if event.style:  # quoted or block: always a string (plain is '' from libyaml, None from Python)
            return event.value
        value: str = event.value
        tag = self._tags.get(value)
        if tag is None:
            tag = self._tags[value] = str(self._resolver.resolve(ScalarNode, value, (True, False)))
        if tag == _STR:
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            return _int(value)
        if tag == _FLOAT:
            return _float(value)
        raise _Unsupported  # timestamp, merge, value: rare, ruamel's own constructors

    def _sequence(self, events: Iterator[Any], start: Any) -> tuple[CommentedSeq, int]:
        self._enter()
        seq = CommentedSeq()
        seq._yaml_set_line_col(start.start_mark.line, start.start_mark.column)
        lines = seq.lc
        size = 1
        event: Any = next(events)
        while not isinstance(event, yaml.SequenceEndEvent):
            mark: Any = event.start_mark
            if isinstance(event, yaml.AliasEvent) and event.anchor in self._marks:
                mark = self._marks[event.anchor]  # as ruamel: the line of the node it refers to
            value, child = self._node(events, event)
            lines.add_kv_line_col(len(seq), [mark.line, mark.column])
            seq.append(value)
            size += child
            event = next(events)
        self._depth -= 1
        return seq, size

    def _mapping(self, events: Iterator[Any], start: Any) -> tuple[CommentedMap, int]:
        self._enter()
        mapping = CommentedMap()
        mapping._yaml_set_line_col(start.start_mark.line, start.start_mark.column)
        lines = mapping.lc
        size = 1
        event: Any = next(events)
        while not isinstance(event, yaml.MappingEndEvent):
            if not isinstance(event, yaml.ScalarEvent) or event.anchor is not None:
                raise _Unsupported  # a complex key, or an anchored one
            key = self._scalar(event)
            if key == "<<" and not event.style:
                raise _Unsupported  # a merge key: ruamel merges
            try:
                if key in mapping:
                    raise _Unsupported  # ruamel refuses duplicate keys, with their lines
            except TypeError as e:  # an unhashable key cannot come from a scalar; be safe
                raise _Unsupported from e
            self._own_nodes += 1
            key_mark: Any = event.start_mark
            value_event: Any = next(events)
            value_mark = value_event.start_mark
            value, child = self._node(events, value_event)
            lines.add_kv_line_col(key, [key_mark.line, key_mark.column, value_mark.line, value_mark.column])
            mapping[key] = value
            size += 1 + child
            event = next(events)
        self._depth -= 1
        return mapping, size

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Unsupported


def _int(text: str) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits)  # YAML 1.2: leading zeros are decimal


def _float(text: str) -> float:
    lowered = text.replace("_", "").lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(lowered)
