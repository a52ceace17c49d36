"""Errors raised by the server package.

    ServerError                 base: every error the `millwatch` command reports in one line
     ├── ListenError            the server cannot listen on host:port (address in use, not permitted, ...)
     ├── SettingsError          a setting (environment variable or flag) has an invalid value
     ├── DemoError              `millwatch demo` could not set up its simulated fleet
     ├── BundleError            `millwatch bundle` could not build the offline machine package
     │    ├── WheelsUnavailable a wheel the exporter needs is not to be had (registry or --wheels folder)
     │    └── WheelMismatch     a wheel does not fit the bundle's platform and Python version
     ├── KeyNotFound            `millwatch key revoke` names no active key
     └── AuthError              a user or token command cannot be done (the message says why)
          ├── NameTaken          a user or token of that name exists already
          └── UnknownName        no user or token of that name

Errors of the other packages (`scraper.errors.InventoryError`, `scraper.errors.StoreError`) pass
through unchanged; the CLI turns each into its own message and exit status.
"""

from __future__ import annotations


class ServerError(Exception):
    """Base of the server's errors; `str(e)` is a complete one-line message for an operator."""


class ListenError(ServerError):
    """The server socket could not be bound."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(f"cannot listen on {format_host_port(host, port)}: {reason}")


class SettingsError(ServerError):
    """A setting has an invalid value; `problems` holds one "name: message" line per bad setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings: " + "; ".join(problems))


class DemoError(ServerError):
    """The demo fleet could not be set up (for example an exporter failed to start)."""


class BundleError(ServerError):
    """The offline bundle could not be built; nothing is left in the output folder."""


class WheelsUnavailable(BundleError):
    """pip could not provide a wheel of the exporter or of one of its dependencies."""


class WheelMismatch(BundleError):
    """A wheel's tags do not fit the platform and Python version the bundle is for."""

    def __init__(self, wheel: str, platform: str, python_version: str) -> None:
        self.wheel = wheel
        self.platform = platform
        self.python_version = python_version
        super().__init__(
            f"{wheel} does not fit {platform} with CPython {python_version}: "
            "a machine PC could not install it; give wheels built for that platform and Python"
        )


class KeyNotFound(ServerError):
    """No active machine key matches what `millwatch key revoke` was given."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"no active key for {what}")


class AuthError(ServerError):
    """A user or token operation was refused: bad name, bad password, bad role."""


class NameTaken(AuthError):
    """A user or API token of this name exists already."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"a {kind} named {name!r} exists already")


class UnknownName(AuthError):
    """No user or API token of this name."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"no {kind} named {name!r}")


def format_host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets as URLs write it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
