"""Helpers of the inventory editor tests: a commented machines.yaml and a real server over it with
users and tokens (tests/server/auth_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from auth_helpers import Accounts, bearer

# Every kind of comment a person writes: a header, section comments, end-of-line comments, a comment
# above a machine, a commented-out key inside one, blank lines, flow and block mappings, quotes.
COMMENTED = """\
# Plant inventory -- reviewed in Git, edited on the page too.
defaults:
  scrape_interval: 15s   # the usual
  thresholds:
    machine_temperature_celsius: {warn: 80, alarm: 95}

machines:
  # Hall 1 ------------------------------------------------------------
  - id: press_01                      # the old press
    name: "Press 01"
    url: http://127.0.0.1:9/metrics
    location: {lat: 52.52, lon: 13.405}
    site: Berlin
    labels: {line: pressing, hall: '1'}
      # owner: maintenance team A (ask before changing)

  # Hall 2: the lathes, scraped more often.
  - id: lathe_02
    name: Lathe 02
    url: http://127.0.0.1:9/metrics   # behind the hall switch
    site: Berlin
    scrape_interval: 5s
    auth: {bearer_token_file: /etc/millwatch/lathe_02.token}

  - id: mill_03
    url: http://127.0.0.1:9/metrics
    site: "Lyon"
    enabled: false    # waiting for a new spindle
# end of the list: keep new machines above this line
"""


@dataclass
class Editing:
    """A server editing `path`: base URL, the accounts, and clients for each role."""

    base: str
    path: Path
    accounts: Accounts
    data_dir: Path

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=bearer(self.accounts.admin_token), timeout=30)

    def viewer(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=bearer(self.accounts.viewer_token), timeout=30)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)

    def etag(self) -> str:
        with self.admin() as client:
            answer = client.get("/api/inventory/machines")
            assert answer.status_code == 200, answer.text
            return answer.headers["etag"]


def start_editing(
    serve: Callable[..., str],
    state: Any,
    accounts: Accounts,
    folder: Path,
    text: str = COMMENTED,
    **settings: Any,
) -> Editing:
    path = folder / "machines.yaml"
    path.write_text(text, encoding="utf-8")
    data_dir = folder / "data"
    base = serve(
        state,
        store=accounts.store,
        inventory=path,
        data_dir=data_dir,
        anonymous_read=False,
        alerts=False,
        **settings,
    )
    return Editing(base, path, accounts, data_dir)
