"""`notifications.yaml`: the channels alerts are sent to, the routes that pick them, grouping and
repetition. Validated like machines.yaml: every problem as `file:line: key.path: message`.

Secrets (SMTP password, webhook HMAC key, apprise URLs, which carry tokens) are only named here by
a file (`*_file`) or an environment variable (`*_env`); they are read when a message is sent and
never logged nor shown by the API. The file format is documented in docs/alerts.md.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from millwatch_common import durations
from millwatch_common.names import LABEL_NAME
from millwatch_common.yamltext import YAMLSyntaxError, line_of, load_roundtrip, path_text, plain
from scraper.alerting.errors import NotificationsError
from scraper.errors import Problem

DEFAULT_GROUP_WAIT = 30.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
_NAME_CHARS = "lowercase letters, digits, '_' and '-'"


def _duration(value: object) -> float:
    try:
        seconds = durations.parse_seconds(value)
    except ValueError:
        raise ValueError("must be a duration such as 30s, 5m, 4h or a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("must not be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(_duration)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


def _one_secret(spec: BaseModel, base: str, required: bool) -> None:
    given = [k for k in (f"{base}_file", f"{base}_env") if getattr(spec, k) is not None]
    if len(given) > 1 or (required and not given):
        raise ValueError(f"needs {'exactly' if required else 'at most'} one of {base}_file, {base}_env")


class EmailChannel(_Spec):
    """Email over SMTP: STARTTLS by default, TLS from the start, or plain (loopback relays only)."""

    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    ca_file: str | None = None
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    timeout: Duration = 10.0
    retries: int = Field(default=3, ge=0, le=10)

    @model_validator(mode="after")
    def _auth(self) -> EmailChannel:
        _one_secret(self, "password", required=self.username is not None)
        if self.username is None and (self.password_file or self.password_env):
            raise ValueError("a password needs a username")
        return self


class WebhookChannel(_Spec):
    """A JSON POST to `url`, signed with HMAC-SHA256 when a key is given."""

    type: Literal["webhook"]
    url: str
    hmac_key_file: str | None = None
    hmac_key_env: str | None = None
    timeout: Duration = 10.0
    retries: int = Field(default=3, ge=0, le=10)

    @model_validator(mode="after")
    def _checks(self) -> WebhookChannel:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        _one_secret(self, "hmac_key", required=False)
        return self


class AppriseChannel(_Spec):
    """Chat and pager services through apprise: one URL per line (`slack://…`, `ntfy://…`)."""

    type: Literal["apprise"]
    urls_file: str | None = None
    urls_env: str | None = None
    timeout: Duration = 30.0
    retries: int = Field(default=3, ge=0, le=10)

    @model_validator(mode="after")
    def _checks(self) -> AppriseChannel:
        _one_secret(self, "urls", required=True)
        return self


Channel = Annotated[EmailChannel | WebhookChannel | AppriseChannel, Field(discriminator="type")]


class Route(_Spec):
    """Alerts matching every given matcher go to `channels` (an empty matcher matches all)."""

    channels: list[str] = Field(min_length=1)
    sites: list[str] | None = None
    severities: list[Literal["critical", "warning", "info"]] | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class NotificationsSpec(_Spec):
    group_wait: Duration = DEFAULT_GROUP_WAIT
    repeat_interval: Duration = DEFAULT_REPEAT_INTERVAL
    send_resolved: bool = True
    retry_backoff: Duration = 2.0
    channels: dict[str, Channel] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)


class NotificationsFile(_Spec):
    notifications: NotificationsSpec


class Notifications(BaseModel):
    """The validated settings; `folder` resolves relative secret files."""

    model_config = ConfigDict(frozen=True)

    group_wait: float = DEFAULT_GROUP_WAIT
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    send_resolved: bool = True
    retry_backoff: float = 2.0
    channels: dict[str, EmailChannel | WebhookChannel | AppriseChannel] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    folder: Path = Path(".")

    def channels_for(self, site: str | None, severity: str, labels: Mapping[str, str]) -> list[str]:
        """The channels an alert goes to: those of every matching route; every channel without routes."""
        if not self.routes:
            return sorted(self.channels)
        chosen: set[str] = set()
        for route in self.routes:
            if route.sites is not None and site not in route.sites:
                continue
            if route.severities is not None and severity not in route.severities:
                continue
            if any(labels.get(k) != v for k, v in route.labels.items()):
                continue
            chosen.update(route.channels)
        return sorted(chosen)


def read_secret(folder: Path, file: str | None, env: str | None, what: str) -> str | None:
    """The secret named by `file` (relative to `folder`) or `env`, trimmed; None when neither is set.

    Raises ValueError naming the file or variable (never the secret) when it cannot be read.
    """
    if file is not None:
        path = folder / file
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ValueError(f"cannot read {what}_file {path}: {e.strerror or e}") from None
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ValueError(f"{what}_env: environment variable {env} is not set")
        return value.strip()
    return None


def load_notifications(path: str | Path) -> Notifications:
    """Read and validate a notifications file. A missing file is no channels (alerts are still
    recorded and shown); any other problem raises NotificationsError with every problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Notifications()
    except (OSError, UnicodeDecodeError) as e:
        raise NotificationsError([Problem(name, None, "", f"cannot read: {e}")]) from e
    return parse_notifications(text, name=name, folder=Path(path).resolve().parent)


def parse_notifications(
    text: str, *, name: str = "notifications.yaml", folder: Path | None = None
) -> Notifications:
    """Validate notifications text (see `load_notifications`)."""
    try:
        document = load_roundtrip(text)
    except YAMLSyntaxError as e:
        raise NotificationsError([Problem(name, e.line, "", e.message)]) from e
    if document is None:
        return Notifications(folder=folder or Path.cwd())
    problems: list[Problem] = []
    try:
        spec = NotificationsFile.model_validate(plain(document)).notifications
    except ValidationError as e:
        for error in e.errors(include_url=False):
            loc = [p for p in error["loc"] if p != "[key]"]
            # The discriminated union names the chosen kind in the path: drop it.
            loc = [p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] in _channel_names(document))]
            problems.append(Problem(name, line_of(document, loc), path_text(loc), _message(error)))
        raise NotificationsError(problems) from e
    for key in spec.channels:
        if not LABEL_NAME.fullmatch(key.replace("-", "_")):
            where: list[str | int] = ["notifications", "channels", key]
            problems.append(
                Problem(name, line_of(document, where), path_text(where), f"a name uses {_NAME_CHARS}")
            )
    for index, route in enumerate(spec.routes):
        for position, channel in enumerate(route.channels):
            if channel not in spec.channels:
                at: list[str | int] = ["notifications", "routes", index, "channels", position]
                known = ", ".join(sorted(spec.channels)) or "none"
                problems.append(
                    Problem(
                        name,
                        line_of(document, at),
                        path_text(at),
                        f"no channel {channel!r} (known: {known})",
                    )
                )
    if problems:
        raise NotificationsError(problems)
    return Notifications(
        group_wait=spec.group_wait,
        repeat_interval=spec.repeat_interval,
        send_resolved=spec.send_resolved,
        retry_backoff=spec.retry_backoff,
        channels=dict(spec.channels),
        routes=list(spec.routes),
        folder=folder or Path.cwd(),
    )


def check_notifications_command(
    path: str | Path, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """`millwatch check --notifications FILE`: 0 valid, 1 problems (each on stderr), 2 missing file."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not Path(path).is_file():
        print(f"{path}: no such file", file=err)
        return 2
    try:
        settings = load_notifications(path)
    except NotificationsError as e:
        print(e, file=err)
        count = len(e.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=err)
        return 1
    print(f"{path}: OK, {len(settings.channels)} channels, {len(settings.routes)} routes", file=out)
    return 0


def _channel_names(document: Any) -> set[str]:
    try:
        return {str(k) for k in document["notifications"]["channels"]}
    except (KeyError, TypeError):
        return set()


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    text = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    value = error.get("input")
    if kind != "value_error" and not isinstance(value, dict | list) and value is not None:
        shown = repr(value)
        text += f" (got {shown[:60]})"
    return text
