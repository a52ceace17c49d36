"""Errors of the alerting package.

```
AlertingError
 ├── AlertNotFound        (also LookupError) no alert with this id
 ├── AlertNotOpen         the alert is resolved (or already acknowledged): nothing to acknowledge
 ├── WindowNotFound       (also LookupError) no maintenance window with this id
 ├── NotificationsError   notifications.yaml has problems; str(e) is every problem, one per line
 └── DeliveryFailed       one channel could not deliver a message; str(e) never holds a secret
```
Database failures are the store's `scraper.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from scraper.errors import Problem


class AlertingError(Exception):
    """Base of the alerting errors."""


class AlertNotFound(AlertingError, LookupError):
    def __init__(self, alert_id: int) -> None:
        super().__init__(f"no alert {alert_id}")
        self.alert_id = alert_id


class AlertNotOpen(AlertingError):
    def __init__(self, alert_id: int, state: str) -> None:
        super().__init__(f"alert {alert_id} is {state}: only a firing alert can be acknowledged")
        self.alert_id = alert_id
        self.state = state


class WindowNotFound(AlertingError, LookupError):
    def __init__(self, window_id: int) -> None:
        super().__init__(f"no maintenance window {window_id}")
        self.window_id = window_id


class NotificationsError(AlertingError):
    """Every problem of a notifications file, each as `file:line: key.path: message`."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DeliveryFailed(AlertingError):
    """A channel failed to deliver; `str(e)` is the short cause, shown in the API and counted."""

    def __init__(self, channel: str, cause: str) -> None:
        super().__init__(f"{channel}: {cause}")
        self.channel = channel
        self.cause = cause
