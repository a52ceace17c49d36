"""Every error the scraper raises, in one place.

```
ScrapeError                 one scrape failed; str(e) is the reason shown on the map, unchanged
 ├── ScrapeTimeout          "timeout after 5s"
 ├── ConnectFailed          "connection refused", "no route to host", "name not resolved", ...
 ├── TransferFailed         the connection broke after it was made ("connection reset during transfer")
 ├── HTTPStatusError        "HTTP 503"
 ├── BodyTooLarge           "body larger than 10 MiB"
 ├── CredentialsUnavailable "cannot read bearer_token_file /etc/...: No such file or directory"
 ├── LimitExceeded          "label_limit 64 exceeded by process_info" (a limit of machines.yaml)
 │    └── SampleLimitExceeded "sample_limit 500 exceeded"
 └── BadExposition          "bad exposition at line 12: unterminated label value"
InventoryError              machines.yaml has problems; str(e) is every problem, one per line
 └── InventoryUnreadable    the file itself cannot be read (missing, no permission, a folder)
StoreError                  a database operation failed; carries the operation's name
UnknownMachineError         (LookupError) no machine with this id in the current inventory
```

Low-level errors (the HTTP client, OS, SQLAlchemy, the database drivers) are mapped into this tree
once, where they happen (`http1.py`, `fetch.py`, `store.py`), so callers only ever see these types.
No message here ever contains a secret: credentials are named by their file or environment
variable, never quoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def format_seconds(seconds: float) -> str:
    """Short human text for a duration in seconds: 5 -> "5s", 0.25 -> "0.25s"."""
    return f"{seconds:g}s"


class ScrapeError(Exception):
    """One scrape of one machine failed. `str(e)` is the short reason shown on the map as-is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ScrapeTimeout(ScrapeError):
    """The whole scrape (connect, headers and body) took longer than the machine's scrape_timeout."""

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__(f"timeout after {format_seconds(timeout_seconds)}")
        self.timeout_seconds = timeout_seconds


class ConnectFailed(ScrapeError):
    """No connection could be made; the message is the real cause ("connection refused", ...)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class TransferFailed(ScrapeError):
    """The connection was made but broke or spoke nonsense before the body was complete."""


class HTTPStatusError(ScrapeError):
    """The exporter answered with a status other than 200."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class BodyTooLarge(ScrapeError):
    """The (decompressed) body exceeded the limit; reading stopped there."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"body larger than {_format_bytes(limit_bytes)}")
        self.limit_bytes = limit_bytes


class CredentialsUnavailable(ScrapeError):
    """The machine's token or password could not be read from its file or environment variable."""


class LimitExceeded(ScrapeError):
    """The scrape broke one of the machine's limits (`scraper.limits`); nothing from it is kept.

    `limit_name` is the key of machines.yaml, `limit` its value; `culprit` the metric name that
    broke it, if one did (cut to 60 characters in the message).
    """

    def __init__(self, limit_name: str, limit: int, culprit: str | None = None) -> None:
        text = f"{limit_name} {limit} exceeded"
        if culprit:
            text += f" by {culprit[:60]}{'…' if len(culprit) > 60 else ''}"
        super().__init__(text)
        self.limit_name = limit_name
        self.limit = limit
        self.culprit = culprit


class SampleLimitExceeded(LimitExceeded):
    """The exposition holds more samples than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__("sample_limit", limit)


class BadExposition(ScrapeError):
    """The body is not valid Prometheus text format; `line` is 1-based."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(f"bad exposition at line {line}: {detail}")
        self.line = line
        self.detail = detail


@dataclass(frozen=True)
class Problem:
    """One problem in an inventory file, placed by file, line (1-based) and field path."""

    file: str
    line: int | None
    path: str
    message: str
    # The same place as `path`, as keys and list indexes (for the API's 422 answers); not compared.
    loc: tuple[str | int, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{place}: {self.path}: {self.message}" if self.path else f"{place}: {self.message}"


class InventoryError(Exception):
    """The inventory cannot be used. `problems` holds every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class InventoryUnreadable(InventoryError):
    """The inventory file could not be read at all (as opposed to read and found wrong)."""


class StoreError(Exception):
    """A database operation failed. `operation` names it (e.g. "write_samples"), `detail` says why."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"store {operation} failed: {detail}")
        self.operation = operation
        self.detail = detail


class UnknownMachineError(LookupError):
    """No machine with this id is in the current inventory."""

    def __init__(self, machine_id: str) -> None:
        super().__init__(f"no machine with id {machine_id!r} in the inventory")
        self.machine_id = machine_id


def _format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"
