"""A machine's last body as a template: the lines that stay the same, the places of the values.

An exporter sends the same body at every scrape but for its values: the same comment lines at the
same places, the same sample prefixes (`name{labels}`) in the same order. The line cache
(scraper/line_cache.py) already saves the parsing of each line, but its loop still costs Python per
line (~0.8 µs; ~230 lines in the millwatch exporter's body). A template checks a new body against
the last one in a few C calls — the lines split, the comments picked and compared, the sample lines
picked and split at their last space, the prefixes compared — and then only the values are read.

The template is made from a body the careful parse (`scraper.exposition.parse_samples`) took
whole, with the series it gave; it is used only when it gives exactly what that parse would: the
same line count, the same comments at the same places, the same prefixes in the same order, every
other line empty, every value text one the cached way takes (see `parse_samples`). Anything else
(a value the cached way refuses, a line added, moved or changed) goes the line-by-line way, which
gives the same samples or the exact error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:  # the line cache holds a machine's template: no import back at run time
    from scraper.line_cache import SeriesRef

T = TypeVar("T")

_MAX_SKIP = 64
"""After templates that kept missing, scrapes to wait before making another (then 1, 2, 4, …)."""


class BodyTemplate:
    """One body's shape: comment lines and sample prefixes by line, and the samples' series."""

    __slots__ = (
        "_comments",
        "_line_count",
        "_pick_comments",
        "_pick_samples",
        "_prefixes",
        "_series",
        "_size",
        "derived",
    )

    def __init__(self, lines: list[str], series: list[SeriesRef], known: dict[str, SeriesRef]) -> None:
        """From a body's lines (split at "\\n"), the series its parse gave, in order, and the line
        cache's prefixes. Raises ValueError when the body is not of that shape: a line the parse
        skipped or stopped at, a sample line whose prefix the cache does not map to its series."""
        comments = [n for n, line in enumerate(lines) if line[:1] == "#"]
        samples = [n for n, line in enumerate(lines) if line and line[:1] != "#"]
        if not samples or len(samples) != len(series):
            raise ValueError("not a body's shape")
        self._line_count = len(lines)
        self._pick_comments = picker(comments)
        # Interned: a fleet's machines send the same comments and prefixes, and each template's
        # would otherwise be copies of its own (~10 kB a machine for the millwatch exporter's body).
        self._comments = tuple(map(sys.intern, self._pick_comments(lines)))
        self._pick_samples = picker(samples)
        prefixes = tuple(sys.intern(line.rpartition(" ")[0]) for line in self._pick_samples(lines))
        # The cached way's reading of each line (`prefix value`) gave exactly these series: not a
        # line with a timestamp, say, whose last field is not its value.
        if any(known.get(prefix) is not ref for prefix, ref in zip(prefixes, series)):
            raise ValueError("not a body's shape")
        self._prefixes = prefixes
        self._series = list(series)
        # Every line not picked is empty: the body's length is the picked lines' and the newlines.
        self._size = sum(map(len, self._comments)) + len(lines) - 1
        # What readers of the samples work out once per shape from the series (the status rules'
        # picks: scraper/status.py), by reader.
        self.derived: dict[str, Any] = {}

    def values(self, lines: list[str], text_length: int, max_line_length: int) -> list[float] | None:
        """The values of a body of this shape (its `lines` split at "\\n", its length), in the
        order of `series`; None when the body is not of this shape or a value text is not one
        the cached way takes."""
        if len(lines) != self._line_count or self._pick_comments(lines) != self._comments:
            return None
        picked = self._pick_samples(lines)
        if text_length != self._size + sum(map(len, picked)):
            return None
        prefixes, _, texts = zip(*map(str.rpartition, picked, repeat(" ")))
        if prefixes != self._prefixes:
            return None
        joined = "".join(texts)
        # As the cached way reads a value: ASCII, printable, no underscore (float() takes those).
        if not (joined.isascii() and joined.isprintable()) or "_" in joined:
            return None
        if text_length > max_line_length and max(map(len, picked)) > max_line_length:
            return None
        try:
            return list(map(float, texts))
        except ValueError:
            return None

    @property
    def series(self) -> list[SeriesRef]:
        """The samples' series (a new list each time: the caller may keep it)."""
        return list(self._series)


def picker(indexes: list[int]) -> Callable[[Sequence[T]], tuple[T, ...]]:
    """A function that picks the items at `indexes` of a sequence as a tuple, in C (itemgetter
    gives a bare item for one index, and takes no empty list)."""
    if not indexes:
        return lambda items: ()
    if len(indexes) == 1:
        (index,) = indexes
        return lambda items: (items[index],)
    return cast("Callable[[Sequence[T]], tuple[T, ...]]", itemgetter(*indexes))


class TemplateSlot:
    """A machine's current template, and the back-off that stops one being made at every scrape
    of a body whose shape keeps changing (labels that change, lines that come and go)."""

    __slots__ = ("_skip", "_wait", "template")

    def __init__(self) -> None:
        self.template: BodyTemplate | None = None
        self._skip = 0
        self._wait = 0

    def missed(self) -> None:
        """The template did not fit a body: dropped, and the next one waits longer."""
        self.template = None
        self._skip = min(max(1, self._skip * 2), _MAX_SKIP)
        self._wait = self._skip

    def hit(self) -> None:
        self._skip = 0

    def make(self, lines: list[str], series: list[SeriesRef], known: dict[str, SeriesRef]) -> None:
        """Make a template of a body the line-by-line way parsed whole, unless waiting."""
        if self._wait > 0:
            self._wait -= 1
            return
        try:
            self.template = BodyTemplate(lines, series, known)
        except ValueError:
            self.missed()

    def clear(self) -> None:
        self.template = None
