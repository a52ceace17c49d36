"""What the parser remembers of a machine's lines between scrapes, as Prometheus' scrape cache does.

An exporter sends the same lines at every scrape, only the values change. For each sample line
already parsed, the text before its value (`name{labels}`, the line's *prefix*) maps to its
`SeriesRef`: name, labels and the store's series key, already checked against the machine's
limits. An unchanged line then costs a split, a dict look-up and a `float()` instead of a regular
expression, a labels dict, the limit checks and the canonical label text. Comment lines
(`# HELP`, `# TYPE`) map to what they mean for the parse (the names whose `_created` samples to
drop). A line not in the cache goes the careful way (`scraper.exposition`), which fills the cache.

Bounded: each machine's cache holds at most `max_lines` lines and is emptied when full (labels
that change at every scrape refill it; the unchanged lines are back after one scrape), and it is
emptied when the machine's limits change (its entries were checked against the old ones). The
service drops a machine's cache when the machine leaves the inventory. The prefixes and refs are
shared between machines (`_SHARED`, also bounded): a fleet repeats the same lines on every machine,
so a machine's cache costs about one dict slot per line.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

from scraper.body_template import TemplateSlot
from scraper.limits import ScrapeLimits
from scraper.schema import labels_json

SeriesKey = tuple[str, str]
"""The store's name of a series within a machine: (metric, canonical labels JSON)."""

DEFAULT_MAX_LINES = 20_000
"""Per machine: twice the store's default series bound (`max_series_per_machine`), comments included."""

_SHARED_MAX = 200_000


class SeriesRef(NamedTuple):
    """The series of one sample line: what the parser found before the value."""

    name: str
    labels: dict[str, str]  # shared by every sample of the series: never to be modified
    key: SeriesKey
    created_base: str | None  # for a name ending in `_created`: the name without it, else None

    @classmethod
    def of(cls, name: str, labels: dict[str, str]) -> SeriesRef:
        name = sys.intern(name)
        base = name[: -len("_created")] if name.endswith("_created") else None
        return cls(name, labels, (name, sys.intern(labels_json(labels)) if labels else _NO_LABELS), base)


_NO_LABELS = sys.intern(labels_json({}))
# prefix -> ref, for every machine: the same line on two machines is one ref and one string.
_SHARED: dict[str, SeriesRef] = {}


def shared_ref(prefix: str, name: str, labels: dict[str, str]) -> tuple[str, SeriesRef]:
    """The one (prefix, ref) of this line's prefix, made from `name` and `labels` when new."""
    ref = _SHARED.get(prefix)
    if ref is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()  # a plain dict, emptied when full: cheaper per line than an LRU
        prefix = sys.intern(prefix)
        ref = _SHARED[prefix] = SeriesRef.of(name, labels)
    else:
        prefix = sys.intern(prefix)
    return prefix, ref


class LineCache:
    """One machine's lines already parsed (see the module's doc). Not thread-safe by design: a
    machine's scrapes run one at a time; concurrent ones would only lose entries, never mix them
    up (every entry is a pure function of its text and the limits)."""

    def __init__(self, max_lines: int = DEFAULT_MAX_LINES) -> None:
        if max_lines < 1:
            raise ValueError("a line cache must hold at least one line")
        self.max_lines = max_lines
        self.limits: ScrapeLimits | None = None
        self.series: dict[str, SeriesRef] = {}
        self.comments: dict[str, tuple[str, ...]] = {}
        # The last body's shape (scraper/body_template.py); made of the entries above, and
        # dropped with them.
        self.template = TemplateSlot()

    def __len__(self) -> int:
        return len(self.series) + len(self.comments)

    def for_limits(self, limits: ScrapeLimits | None) -> None:
        """Start a parse under `limits`: the entries checked against other limits are dropped."""
        if limits is not self.limits and limits != self.limits:
            self.series = {}
            self.template.clear()
            self.limits = limits

    def add_series(self, prefix: str, name: str, labels: dict[str, str]) -> SeriesRef:
        """Remember a sample line's prefix (its series passed the limits); returns its ref."""
        self._make_room()
        prefix, ref = shared_ref(prefix, name, labels)
        self.series[prefix] = ref
        return ref

    def add_comment(self, line: str, created_bases: tuple[str, ...]) -> None:
        self._make_room()
        # Interned as the prefixes are: every machine sends the same HELP and TYPE lines.
        self.comments[sys.intern(line)] = created_bases

    def _make_room(self) -> None:
        if len(self.series) + len(self.comments) >= self.max_lines:
            self.series = {}
            self.comments = {}
            self.template.clear()
