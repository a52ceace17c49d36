"""Bytes → lines: the framing of the serial input, bounded whatever the device sends.

Lines are assembled here rather than with pyserial's `readline()` so that an over-long line is
dropped as soon as it passes `max_line_bytes`, instead of growing without bound. The line ending
(`serial.line_ending`) decides what ends a line: `auto` (CR or LF; a CR LF pair leaves an empty
line between, which the reader skips), `lf`, `cr`, or `crlf` (framed on LF like `lf`, so a CR LF
split across two reads still ends one line; the CR is stripped with the other surrounding white
space when the line is read). With `lf` or `crlf` a lone CR is part of the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Union

_TERMINATORS = {
    "auto": re.compile(rb"[\r\n]"),
    "lf": re.compile(rb"\n"),
    "cr": re.compile(rb"\r"),
    "crlf": re.compile(rb"\n"),
}


class Overlong:
    """A line longer than the limit was dropped (yielded once per dropped line)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit


Frame = Union[bytes, Overlong]
"""What the framer yields: a complete line (without its terminator) or an Overlong marker."""


class LineFramer:
    """Turns chunks of bytes into complete lines, at most `max_line_bytes` each.

    Not thread-safe: one reader thread feeds it. `reset()` forgets a partial line (after a reopen).
    """

    def __init__(self, max_line_bytes: int, line_ending: str = "auto") -> None:
        self.max_line_bytes = max_line_bytes
        self._terminator = _TERMINATORS[line_ending]
        self._partial = bytearray()
        self._discarding = False

    def reset(self) -> None:
        self._partial.clear()
        self._discarding = False

    def feed(self, data: bytes) -> Iterator[Frame]:
        """The lines (and Overlong markers) that `data` completes, in order."""
        pieces = self._terminator.split(data)
        last = len(pieces) - 1
        limit = self.max_line_bytes
        for index, piece in enumerate(pieces):
            complete = index < last
            if self._discarding:
                if complete:
                    self._discarding = False  # the terminator ends the dropped line
                continue
            if len(self._partial) + len(piece) > limit:
                self._partial.clear()
                self._discarding = not complete
                yield Overlong(limit)
                continue
            self._partial += piece
            if complete:
                line = bytes(self._partial)
                self._partial.clear()
                yield line
