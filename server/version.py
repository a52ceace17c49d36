"""The installed version of millwatch, as the server reports it in /api/config, /healthz and /metrics."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def millwatch_version() -> str:
    """The version of the installed `millwatch` distribution, or "unknown" when it is not installed."""
    try:
        return version("millwatch")
    except PackageNotFoundError:
        return "unknown"
