"""The JSON text of machine views, encoded once per view.

A view is immutable (a change is a new `MachineView`), so its text can be kept until the view is
replaced. `GET /api/machines` then encodes only the machines that changed since the last request
(at 10,000 machines scraped every 15 s, about 700 a second) instead of the whole fleet each time.
"""

from __future__ import annotations

from collections.abc import Iterable

from scraper.state import MachineView
from server.jsonout import dumps


class ViewJson:
    """JSON text per view, keyed by machine id and kept while that same view object is current;
    as `str` (the live messages) and as UTF-8 `bytes` (the list answer: joining 10,000 texts as
    bytes is a copy, where one non-Latin-1 character, a "≥" in a reason, makes a `str` join and its
    encoding several times slower).

    Safe from several threads: a race encodes a view twice, never returns another view's text.
    """

    def __init__(self) -> None:
        self._texts: dict[str, tuple[MachineView, str, bytes]] = {}

    def _entry(self, view: MachineView) -> tuple[MachineView, str, bytes]:
        entry = self._texts.get(view.id)
        if entry is not None and entry[0] is view:
            return entry
        text = dumps(view.to_dict())
        entry = (view, text, text.encode())
        self._texts[view.id] = entry
        return entry

    def text(self, view: MachineView) -> str:
        """`dumps(view.to_dict())`, from the cache when `view` itself was encoded before."""
        return self._entry(view)[1]

    def data(self, view: MachineView) -> bytes:
        """`text(view)` in UTF-8."""
        return self._entry(view)[2]

    def array(self, views: Iterable[MachineView]) -> str:
        """The views as a JSON array."""
        return "[" + ",".join(self.text(v) for v in views) + "]"

    def array_data(self, views: Iterable[MachineView]) -> bytes:
        """The views as a JSON array, in UTF-8."""
        return b"[" + b",".join([self.data(v) for v in views]) + b"]"

    def keep_only(self, fleet: list[MachineView]) -> None:
        """Forget machines no longer in `fleet` (the whole fleet), once they are many."""
        if len(self._texts) > len(fleet) + 1000:
            ids = {v.id for v in fleet}
            self._texts = {k: e for k, e in self._texts.items() if k in ids}
