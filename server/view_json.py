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
    """JSON text per view, keyed by machine id and kept while that same view object is current.

    Safe from several threads: a race encodes a view twice, never returns another view's text.
    """

    def __init__(self) -> None:
        self._texts: dict[str, tuple[MachineView, str]] = {}

    def text(self, view: MachineView) -> str:
        """`dumps(view.to_dict())`, from the cache when `view` itself was encoded before."""
        entry = self._texts.get(view.id)
        if entry is not None and entry[0] is view:
            return entry[1]
        text = dumps(view.to_dict())
        self._texts[view.id] = (view, text)
        return text

    def array(self, views: Iterable[MachineView]) -> str:
        """The views as a JSON array."""
        return "[" + ",".join(self.text(v) for v in views) + "]"

    def keep_only(self, fleet: list[MachineView]) -> None:
        """Forget machines no longer in `fleet` (the whole fleet), once they are many."""
        if len(self._texts) > len(fleet) + 1000:
            ids = {v.id for v in fleet}
            self._texts = {k: e for k, e in self._texts.items() if k in ids}
