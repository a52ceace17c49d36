"""YAML as people write it in millwatch's files: round-trip loading (so later checks can name the
line of any key) and syntax errors turned into one line with its line number.

Shared by `exporter.yaml` and the central inventory `machines.yaml`, so both report a broken file
the same way.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError


class YAMLSyntaxError(ValueError):
    """The text is not valid YAML. `line` is 1-based (None when unknown); `message` is one line."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_roundtrip(text: str) -> Any:
    """Parse `text` with ruamel's round-trip loader (mappings keep `.lc` line information).

    Raises YAMLSyntaxError with a message starting `YAML syntax error: `.
    """
    try:
        return YAML(typ="rt").load(text)
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
