"""Serves the built web page (`make install` builds web/ into the static folder).

Vite names the files under `assets/` by their content hash, so they are cached for a year; every
other file (index.html first) is revalidated on each load so a new build is picked up at once.
Without a build, `/` answers 503 with the command that builds it.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Receive, Scope, Send

NOT_BUILT_MESSAGE = "The web page is not built: run `make install`.\n"
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
PAGE_CACHE_CONTROL = "no-cache"


class WebPage(StaticFiles):
    """The static folder of the page, with cache headers, and an honest 503 while it is not built."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)
        self._index = directory / "index.html"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Checked per request: the page may be built while the server runs.
        if scope["type"] == "http" and not os.path.isfile(self._index):
            path = self.get_path(scope)
            if path in ("", ".", "index.html"):
                response: Response = PlainTextResponse(NOT_BUILT_MESSAGE, status_code=503)
            else:
                response = PlainTextResponse("Not Found\n", status_code=404)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        relative = os.path.relpath(os.path.realpath(full_path), os.path.realpath(self.directory or "."))
        is_asset = relative.split(os.sep, 1)[0] == "assets"
        response.headers["Cache-Control"] = ASSET_CACHE_CONTROL if is_asset else PAGE_CACHE_CONTROL
        return response
