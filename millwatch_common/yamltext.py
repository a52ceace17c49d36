"""YAML as people write it in millwatch's files: round-trip loading (so later checks can name the
line of any key) and syntax errors turned into one line with its line number.

Shared by `exporter.yaml` and the central inventory `machines.yaml`, so both report a broken file
the same way.

Anchors and aliases are allowed (`auth: *plant_auth` on every machine), but bounded: an alias
re-uses a node, and a few lines of nested aliases ("billion laughs") stand for billions of nodes
that every later walk of the document (validation, JSON) would expand. Each alias counts the
nodes it stands for; past `MAX_ALIAS_NODES` or `ALIAS_NODES_PER_NODE` times the document's own
nodes (whichever is more, so a 10,000-machine file may share blocks freely) the file is refused
at the line of the alias that crossed the bound. An alias to a node that contains it (a
recursive structure) is refused too, and nesting is bounded by `MAX_DEPTH`.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

MAX_ALIAS_NODES = 100_000
ALIAS_NODES_PER_NODE = 20
MAX_DEPTH = 100


class YAMLSyntaxError(ValueError):
    """The text is not valid YAML. `line` is 1-based (None when unknown); `message` is one line."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_roundtrip(text: str, *, preserve_quotes: bool = False) -> Any:
    """Parse `text` with ruamel's round-trip loader (mappings keep `.lc` line information).

    `preserve_quotes` keeps each string's quoting for a later dump (the server's inventory editor).
    Raises YAMLSyntaxError with a message starting `YAML syntax error: `.
    """
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = preserve_quotes
    yaml.Composer = _BoundedComposer
    yaml.max_depth = MAX_DEPTH
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        words = [w for w in (exc.problem, exc.context and f"({exc.context})") if w]
        message = " ".join(words) if words else "invalid YAML"
        raise YAMLSyntaxError(_syntax(message), None if mark is None else mark.line + 1) from exc
    except YAMLError as exc:
        # Reader errors (a control character, say) carry a character position instead of a mark.
        position = getattr(exc, "position", None)
        line = text[:position].count("\n") + 1 if isinstance(position, int) else None
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise YAMLSyntaxError(_syntax(first), line) from exc


def _syntax(message: str) -> str:
    return "YAML syntax error: " + " ".join(message.split())


class _BoundedComposer(Composer):
    """ruamel's composer, counting what each alias stands for (see the module's docstring)."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._own_nodes = 0
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}
        self._done: set[int] = set()

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.parser.check_event(AliasEvent):
            self._own_nodes += 1
            node = super().compose_node(parent, index)
            self._done.add(id(node))
            return node
        event = self.parser.peek_event()
        target = self.anchors.get(event.anchor)
        if target is not None:  # an undefined alias is ruamel's own error
            line = event.start_mark.line + 1
            if id(target) not in self._done:
                message = f"alias *{event.anchor} refers to a node that contains it"
                raise YAMLSyntaxError(_syntax(message), line)
            self._alias_nodes += self._size(target)
            bound = max(MAX_ALIAS_NODES, ALIAS_NODES_PER_NODE * self._own_nodes)
            if self._alias_nodes > bound:
                raise YAMLSyntaxError(
                    _syntax(
                        f"aliases expand to more than {bound} nodes at alias *{event.anchor}"
                        " (nested anchors and aliases, an alias bomb?)"
                    ),
                    line,
                )
        return super().compose_node(parent, index)

    def _size(self, node: Node) -> int:
        """Nodes `node` stands for, its aliases expanded (memoized: shared nodes are counted once here)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._size(key) + self._size(value) for key, value in node.value)
        self._sizes[id(node)] = size
        return size
