from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import Accounts, make_accounts
from server_helpers import running_app

from scraper.state import FleetState
from server.app import create_app
from server.settings import Settings

Serve = Callable[..., str]


@pytest.fixture
def state() -> FleetState:
    return FleetState()


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    """An empty folder standing for the unbuilt web page."""
    path = tmp_path / "static"
    path.mkdir()
    return path


@pytest.fixture
def serve(static_dir: Path) -> Iterator[Serve]:
    """serve(state, store=None, scraper=None, **settings) -> base URL of the app under a real uvicorn."""
    with contextlib.ExitStack() as stack:

        def start(state: FleetState, store: Any = None, scraper: Any = None, **overrides: Any) -> str:
            # Anonymous read unless a test says otherwise: tests not about access control read the
            # fleet as a wall screen does (tests/server/test_auth_*.py cover the closed default).
            values: dict[str, Any] = {
                "static_dir": static_dir,
                "live_batch_interval": 0.05,
                "anonymous_read": True,
                # Never the default ./millwatch.db in the working folder (the machine keys' database).
                "database_url": f"sqlite:///{static_dir.parent / 'server.db'}",
            }
            values.update(overrides)
            app = create_app(Settings(**values), state=state, store=store, scraper=scraper)
            return stack.enter_context(running_app(app))

        yield start


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Accounts]:
    """Users and tokens in a SQLite file (see auth_helpers.make_accounts)."""
    yield from make_accounts(tmp_path)
