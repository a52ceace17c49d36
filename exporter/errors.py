"""Every error the exporter raises on purpose, as one tree.

    ExporterError                 base class: catch this to handle any exporter failure
     ├── ConfigError              a bad exporter.yaml or flag: file, line, key path, message
     ├── LineParseError           one sensor line that cannot be read (counted, never fatal)
     ├── LineIgnored              a line that is not data by design (a CSV header): skipped, not counted
     ├── BufferStoreError         the local SQLite reading buffer cannot be opened or written
     ├── ListenError              the HTTP server cannot bind its address
     ├── TLSSetupError            a TLS file that was fine when the config was read is unusable at start
     ├── PushKeyError             push mode's api_key_file cannot be read or holds no key
     └── SimulatorError           the serial simulator cannot create its pseudo-terminal

Each error's `str()` is one line that a technician can act on; the attributes carry the
same context for code.
"""

from __future__ import annotations


class ExporterError(Exception):
    """Base class of the exporter's own errors."""


class ConfigError(ExporterError):
    """A configuration problem, located as precisely as the input allows.

    `str()` is exactly one line: `file:line: key.path: message`; the line is left out when
    unknown (a value given in code or on the command line), the key path when the problem
    is not about one key (a YAML syntax error).
    """

    def __init__(self, message: str, *, source: str, line: int | None = None, key: str | None = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.key = key
        super().__init__(self.__str__())

    @property
    def file(self) -> str:
        """The file the problem is in (or `command line`, or the source given to parse_config)."""
        return self.source

    def __str__(self) -> str:
        place = self.source if self.line is None else f"{self.source}:{self.line}"
        parts = [place]
        if self.key:
            parts.append(self.key)
        parts.append(self.message)
        return ": ".join(parts)


class LineParseError(ExporterError):
    """A sensor line that holds no usable reading.

    `reason` is a short stable code of the format (`empty`, `bad_token`, `bad_number`, `not_json`,
    `no_match`, `field_count`, ...);
    `detail` quotes the offending part of the line.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class LineIgnored(ExporterError):
    """A line a format recognises as not being data (a CSV header line): skipped, not an error."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(why)


class BufferStoreError(ExporterError):
    """The reading buffer failed: which file, which operation, and the SQLite error."""

    def __init__(self, path: str, operation: str, cause: str) -> None:
        self.path = path
        self.operation = operation
        self.cause = cause
        super().__init__(f"reading buffer {path}: cannot {operation}: {cause}")


class ListenError(ExporterError):
    """The HTTP server could not bind `host:port`."""

    def __init__(self, host: str, port: int, cause: str) -> None:
        self.host = host
        self.port = port
        self.cause = cause
        super().__init__(f"cannot listen on {host}:{port}: {cause}")


class TLSSetupError(ExporterError):
    """The TLS certificate, key or client CA could not be loaded when the server started."""

    def __init__(self, key: str, cause: str) -> None:
        self.key = key
        self.cause = cause
        super().__init__(f"{key}: {cause}")


class PushKeyError(ExporterError):
    """The machine key file of push mode: which file and what is wrong (never its content)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"push api_key_file {path}: {problem}")


class SimulatorError(ExporterError):
    """The simulated sensor could not start (no pseudo-terminals on this system, or the link)."""
