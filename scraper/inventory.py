"""The inventory `machines.yaml`: which machines to scrape, how often, and their thresholds.

`load_inventory(path)` returns a validated, fully resolved `Inventory` or raises `InventoryError`
carrying every problem of the file at once, each placed by line and field path, so an operator
fixes the file in one pass. The file format is documented in docs/inventory.md.
"""

from __future__ import annotations

import math
import sys
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from millwatch_common import durations as common_durations
from millwatch_common.names import LABEL_NAME as _LABEL_NAME
from millwatch_common.names import MACHINE_ID as _MACHINE_ID
from millwatch_common.names import METRIC_NAME as _METRIC_NAME
from millwatch_common.yamltext import YAMLSyntaxError, plain
from scraper.alerting.rules import DEFAULT_RULES, METRIC_STATUSES, AlertRule
from scraper.errors import InventoryError, InventoryUnreadable, Problem
from scraper.limits import LimitsSpec, ScrapeLimits
from scraper.state import Location, MachineView, Status, Threshold, plan_position_of
from scraper.yaml_fast import load_with_lines

DEFAULT_SCRAPE_INTERVAL = 15.0
DEFAULT_SCRAPE_TIMEOUT = 5.0
# A timeout that is not written is at most this share of the interval, so that a short interval never
# conflicts with a timeout the operator did not write (Prometheus caps its default timeout likewise).
DEFAULT_TIMEOUT_SHARE = 0.8
# Longer intervals or timeouts are surely mistakes, and far longer ones overflow the scheduler's dates.
MAX_SCRAPE_DURATION = 86400.0
# A push machine is expected to send every `push_interval`; it turns stale after this many missed.
DEFAULT_PUSH_INTERVAL = 15.0
DEFAULT_PUSH_STALE_INTERVALS = 3
MAX_PUSH_STALE_INTERVALS = 1000
Mode = Literal["pull", "push"]
PULL: Mode = "pull"
PUSH: Mode = "push"
# Keys that only make sense for one mode: a mistake to write on a machine of the other mode.
PULL_ONLY_KEYS = ("url", "auth", "scrape_interval", "scrape_timeout")
PUSH_ONLY_KEYS = ("push_interval", "push_stale_intervals")
# An alert's `for:` or `keep_firing_for:` longer than a week is surely a mistake.
MAX_ALERT_DURATION = 7 * 86400.0


# --- field types ---------------------------------------------------------------------------------


def parse_duration(value: object) -> float:
    """Seconds from "500ms", "15s", "2m", "1h", "1d", combinations such as "1m30s", or a number.

    The grammar is the exporter's (`millwatch_common.durations`), so both files read durations alike.
    Raises ValueError (with the text shown to the operator) for anything else or a duration <= 0.
    """
    try:
        seconds = common_durations.parse_seconds(value)
    except ValueError:
        raise ValueError("must be a duration such as 15s, 500ms, 2m or a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("must be greater than 0")
    return seconds


def _at_most_a_day(seconds: float) -> float:
    if seconds > MAX_SCRAPE_DURATION:
        raise ValueError("must be at most 1d")
    return seconds


def _check_machine_id(value: str) -> str:
    if not _MACHINE_ID.fullmatch(value):
        raise ValueError("must use only lowercase letters, digits, '_' and '-'")
    return value


def _check_metric_name(value: str) -> str:
    if not _METRIC_NAME.fullmatch(value):
        raise ValueError("is not a valid metric name")
    return value


def _check_label_name(value: str) -> str:
    if not _LABEL_NAME.fullmatch(value):
        raise ValueError("is not a valid label name (letters, digits and '_', not starting with a digit)")
    return value


def _label_value(value: object) -> object:
    # `floor: 2` is natural YAML; labels are strings everywhere downstream.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _check_url(value: str) -> str:
    if value != value.strip() or any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    parts = urlsplit(value)
    # A password here would be shown by the API and the map and stored in the database; the
    # message never repeats the URL, so the password is not printed either.
    if "@" in parts.netloc:
        raise ValueError("must not contain a user or password: put credentials under auth:")
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("has no host")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port lazily, here
    except ValueError as e:
        raise ValueError("has a bad port number") from e
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _alert_duration(value: object) -> float:
    """Like `parse_duration`, but 0 is allowed (notify at once) and the limit is a week."""
    try:
        seconds = common_durations.parse_seconds(value)
    except ValueError:
        raise ValueError("must be a duration such as 30s, 5m, 1h or a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("must not be negative")
    if seconds > MAX_ALERT_DURATION:
        raise ValueError("must be at most 7d")
    return seconds


ScrapeDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_at_most_a_day)]
AlertDuration = Annotated[float, BeforeValidator(_alert_duration)]
LabelValue = Annotated[str, BeforeValidator(_label_value)]


class _Spec(BaseModel):
    """What the file may say: strict types, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ThresholdSpec(_Spec):
    warn: float | None = None
    alarm: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdSpec:
        for limit in (self.warn, self.alarm):
            if limit is not None and not math.isfinite(limit):
                raise ValueError("limits must be finite numbers")
        if self.warn is not None and self.alarm is not None and self.warn > self.alarm:
            raise ValueError(f"warn ({self.warn:g}) must not be above alarm ({self.alarm:g})")
        return self


class LocationSpec(_Spec):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PlanPositionSpec(_Spec):
    """Where the machine sits on its site's floor plan, as shares of the plan's width and height."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)


class BasicAuth(_Spec):
    """HTTP basic auth; the password is read at scrape time from its file or environment variable."""

    username: str
    password_file: str | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _one_password(self) -> BasicAuth:
        given = [k for k in ("password_file", "password_env") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("needs exactly one of password_file, password_env")
        for key in given:
            _non_empty(getattr(self, key))
        return self


class Auth(_Spec):
    """How to authenticate to the exporter: exactly one of the three ways.

    Only references are held (a file path or an environment variable name); the secret itself
    is read when a scrape needs it and never stored in a view or written to a log.
    """

    bearer_token_file: str | None = None
    bearer_token_env: str | None = None
    basic: BasicAuth | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Auth:
        kinds = ("bearer_token_file", "bearer_token_env", "basic")
        given = [k for k in kinds if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("needs exactly one of bearer_token_file, bearer_token_env, basic")
        for key in ("bearer_token_file", "bearer_token_env"):
            if getattr(self, key) is not None:
                _non_empty(getattr(self, key))
        return self

    def relative_to(self, folder: Path) -> Auth:
        """The same auth with relative secret files made absolute against `folder` (the inventory's)."""
        if self.bearer_token_file is not None:
            return self.model_copy(update={"bearer_token_file": str(folder / self.bearer_token_file)})
        if self.basic is not None and self.basic.password_file is not None:
            basic = self.basic.model_copy(update={"password_file": str(folder / self.basic.password_file)})
            return self.model_copy(update={"basic": basic})
        return self


class AlertRuleSpec(_Spec):
    """One rule under `alerts:` (docs/alerts.md)."""

    # `for` is a Python keyword: the field is `for_`, written `for:` in the file.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    name: str | None = None
    statuses: list[Literal["alarm", "warn", "down", "sensor_fault", "stale"]] = Field(min_length=1)
    metric: str | None = None
    for_: AlertDuration = Field(default=0.0, alias="for")
    keep_firing_for: AlertDuration = 0.0
    severity: Literal["critical", "warning", "info"] | None = None

    @model_validator(mode="after")
    def _metric_levels(self) -> AlertRuleSpec:
        if self.metric is not None:
            _check_metric_name(self.metric)
            wrong = [s for s in self.statuses if s not in METRIC_STATUSES]
            if wrong:
                raise ValueError(
                    f"a rule on one metric may only name alarm and warn in statuses (got {', '.join(wrong)})"
                )
        if self.name is not None:
            _check_label_name(self.name)
        return self

    def resolve(self) -> AlertRule:
        return AlertRule(
            name=self.name or self.metric or "status",
            statuses=frozenset(self.statuses),
            severity=self.severity,
            for_seconds=self.for_,
            keep_firing_for_seconds=self.keep_firing_for,
            metric=self.metric,
        )


class DefaultsSpec(_Spec, LimitsSpec):
    scrape_interval: ScrapeDuration = DEFAULT_SCRAPE_INTERVAL
    scrape_timeout: ScrapeDuration = DEFAULT_SCRAPE_TIMEOUT
    push_interval: ScrapeDuration = DEFAULT_PUSH_INTERVAL
    push_stale_intervals: int = Field(default=DEFAULT_PUSH_STALE_INTERVALS, ge=1, le=MAX_PUSH_STALE_INTERVALS)
    thresholds: dict[str, ThresholdSpec] = Field(default_factory=dict)
    alerts: list[AlertRuleSpec] | None = None


class MachineSpec(_Spec, LimitsSpec):
    id: str
    name: str | None = None
    mode: Mode = PULL
    url: str | None = None
    location: LocationSpec | None = None
    plan_position: PlanPositionSpec | None = None
    site: str | None = None
    labels: dict[str, LabelValue] = Field(default_factory=dict)
    auth: Auth | None = None
    enabled: bool = True
    scrape_interval: ScrapeDuration | None = None
    scrape_timeout: ScrapeDuration | None = None
    push_interval: ScrapeDuration | None = None
    push_stale_intervals: int | None = Field(default=None, ge=1, le=MAX_PUSH_STALE_INTERVALS)
    thresholds: dict[str, ThresholdSpec] = Field(default_factory=dict)
    alerts: list[AlertRuleSpec] | None = None


# Checked by the loader rather than by pydantic so that the message carries the key's own path.
_FIELD_CHECKS: dict[str, typing.Callable[[str], str]] = {
    "id": _check_machine_id,
    "url": _check_url,
    "name": _non_empty,
}


# --- resolved models -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanPosition:
    """A point on a site's floor plan: `x` from the left edge, `y` from the top, each 0..1 of the
    image's size, so a plan replaced by a larger scan of the same hall keeps its markers."""

    x: float
    y: float


class Defaults(BaseModel):
    """The inventory's defaults, resolved to seconds."""

    model_config = ConfigDict(frozen=True)

    scrape_interval_seconds: float = DEFAULT_SCRAPE_INTERVAL
    scrape_timeout_seconds: float = DEFAULT_SCRAPE_TIMEOUT
    push_interval_seconds: float = DEFAULT_PUSH_INTERVAL
    push_stale_intervals: int = DEFAULT_PUSH_STALE_INTERVALS
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    limits: ScrapeLimits = Field(default_factory=ScrapeLimits)
    alerts: tuple[AlertRule, ...] = DEFAULT_RULES


class Machine(BaseModel):
    """One machine with every default applied: what a scrape job needs, nothing to look up later.

    A `push` machine has no `url` (it is "") and is never scraped: it sends its readings to
    `POST /api/ingest`, and turns stale `push_stale_after_seconds` after its last batch.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    url: str
    mode: Mode = PULL
    site: str | None = None
    location: Location | None = None
    plan_position: PlanPosition | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    auth: Auth | None = None
    enabled: bool = True
    scrape_interval_seconds: float = DEFAULT_SCRAPE_INTERVAL
    scrape_timeout_seconds: float = DEFAULT_SCRAPE_TIMEOUT
    push_interval_seconds: float = DEFAULT_PUSH_INTERVAL
    push_stale_intervals: int = DEFAULT_PUSH_STALE_INTERVALS
    thresholds: dict[str, Threshold] = Field(default_factory=dict)  # effective: defaults merged in
    limits: ScrapeLimits = Field(default_factory=ScrapeLimits)  # effective: defaults applied
    alerts: tuple[AlertRule, ...] = DEFAULT_RULES  # effective: its own `alerts:`, else the defaults'

    @property
    def scraped(self) -> bool:
        """Whether the scraper schedules this machine: enabled and pulled."""
        return self.enabled and self.mode == PULL

    @property
    def push_stale_after_seconds(self) -> float:
        """Seconds without a batch after which a push machine is stale."""
        return self.push_interval_seconds * self.push_stale_intervals

    def initial_view(self) -> MachineView:
        """The view before any scrape: status `unknown`, or `disabled` when the machine is disabled.

        A push machine's view carries its push interval (as the interval the page shows) and the
        limit after which it turns stale.
        """
        push = self.mode == PUSH
        return MachineView(
            id=self.id,
            name=self.name,
            url=self.url,
            site=self.site,
            location=self.location,
            plan_position=plan_position_of(self),
            labels=dict(self.labels),
            enabled=self.enabled,
            scrape_interval_seconds=self.push_interval_seconds if push else self.scrape_interval_seconds,
            status=Status.UNKNOWN if self.enabled else Status.DISABLED,
            thresholds=dict(self.thresholds),
            mode=self.mode,
            stale_after_seconds=self.push_stale_after_seconds if push else None,
        )


class Inventory(BaseModel):
    """A validated inventory: defaults and machines in file order, ids unique."""

    model_config = ConfigDict(frozen=True)

    defaults: Defaults = Field(default_factory=Defaults)
    machines: list[Machine] = Field(default_factory=list)
    _index: dict[str, Machine] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        # Looked up on every scrape: a dict, not a scan of tens of thousands of machines.
        self._index = {m.id: m for m in self.machines}

    def get(self, machine_id: str) -> Machine | None:
        """The machine with this id, or None."""
        return self._index.get(machine_id)

    def by_id(self) -> dict[str, Machine]:
        """Every machine keyed by id (a new dict)."""
        return dict(self._index)

    @property
    def enabled_machines(self) -> list[Machine]:
        return [m for m in self.machines if m.enabled]

    @property
    def scraped_machines(self) -> list[Machine]:
        """The machines the scraper schedules: enabled and pulled (push machines send by themselves)."""
        return [m for m in self.machines if m.scraped]


# --- loading -------------------------------------------------------------------------------------


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file.

    Raises `InventoryUnreadable` when the file cannot be read, and `InventoryError` with every
    problem (YAML syntax, types, ranges, unknown keys, duplicate ids, timeouts not shorter than
    intervals, warn above alarm) otherwise. Relative secret files are resolved against the
    file's folder. Secrets themselves are not read here.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise InventoryError([Problem(name, line, "", "not valid UTF-8 text")]) from e
    except OSError as e:
        raise InventoryUnreadable([Problem(name, None, "", f"cannot read: {e.strerror or e}")]) from e
    return parse_inventory(text, name=name, folder=Path(path).resolve().parent)


def parse_inventory(text: str, *, name: str = "machines.yaml", folder: Path | None = None) -> Inventory:
    """Validate inventory text (see `load_inventory`); `name` is the file name used in problems."""
    return check_document(_parse_yaml(text, name), name=name, folder=folder)


def check_document(document: Any, *, name: str = "machines.yaml", folder: Path | None = None) -> Inventory:
    """Validate an inventory already parsed by `millwatch_common.yamltext.load_roundtrip` (the
    server's editor parses once for both its edit and this check); raises InventoryError."""
    checker = _Checker(name, document)
    inventory = checker.check(folder or Path.cwd())
    if checker.problems or inventory is None:
        raise InventoryError(sorted(checker.problems, key=lambda p: (p.line or 0, p.path)))
    return inventory


def check_command(path: str | Path, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`millwatch check machines.yaml`: print every problem, or a one-line summary when valid.

    Returns 0 when the file is valid, 1 when it has problems, 2 when it cannot be read.
    Problems go to `err` (default stderr), the summary to `out` (default stdout).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        inventory = load_inventory(path)
    except InventoryUnreadable as e:
        print(e, file=err)
        return 2
    except InventoryError as e:
        print(e, file=err)
        count = len(e.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=err)
        return 1
    enabled = len(inventory.enabled_machines)
    total = len(inventory.machines)
    print(f"{path}: OK, {total} machine{'s' if total != 1 else ''} ({enabled} enabled)", file=out)
    return 0


def _parse_yaml(text: str, name: str) -> Any:
    try:
        return load_with_lines(text)
    except YAMLSyntaxError as e:
        raise InventoryError([Problem(name, e.line, "", e.message)]) from e


class _Checker:
    """Collects problems while validating one document; knows how to place a field path on a line."""

    def __init__(self, name: str, document: Any) -> None:
        self.name = name
        self.document = document
        self.problems: list[Problem] = []
        # What a machine that writes no scrape_timeout starts from: the defaults' written one, or 5s.
        self.inherited_timeout = DEFAULT_SCRAPE_TIMEOUT

    def add(self, loc: Sequence[str | int], message: str) -> None:
        self.problems.append(Problem(self.name, self.line_of(loc), _path_text(loc), message, tuple(loc)))

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The 1-based line of the deepest part of `loc` present in the document."""
        node = self.document
        line: int | None = None
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    def check(self, folder: Path) -> Inventory | None:
        document = self.document
        if document is None:
            self.add([], "the file is empty; it needs at least `machines:`")
            return None
        if not isinstance(document, Mapping):
            self.add([], "the top level must be a mapping with `defaults` and `machines`")
            return None
        for key in document:
            if key not in ("defaults", "machines"):
                self.add([key], "unknown key (expected one of: defaults, machines)")

        defaults = self._check_defaults(document.get("defaults"))
        raw_machines = document.get("machines")
        if "machines" not in document:
            self.add(["machines"], "required (a list of machines; it may be empty: `machines: []`)")
            raw_machines = []
        elif raw_machines is None:
            raw_machines = []
        elif not isinstance(raw_machines, list):
            self.add(["machines"], "must be a list of machines")
            raw_machines = []

        machines: list[Machine] = []
        first_seen: dict[str, int] = {}
        for index, raw in enumerate(raw_machines):
            loc: list[str | int] = ["machines", index]
            if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
                machine_id = raw["id"]
                if machine_id in first_seen:
                    first = first_seen[machine_id]
                    where = self.line_of(["machines", first])
                    self.add(
                        [*loc, "id"],
                        f"duplicate id {machine_id!r} (first used by machines[{first}]"
                        + (f" at line {where})" if where else ")"),
                    )
                else:
                    first_seen[machine_id] = index
            machine = self._check_machine(loc, raw, defaults, folder)
            if machine is not None:
                machines.append(machine)
        if defaults is None or self.problems:
            return None
        return Inventory(defaults=defaults, machines=machines)

    def _validate(self, model: type[_Spec], loc: list[str | int], raw: Any) -> Any:
        try:
            return model.model_validate(plain(raw))
        except ValidationError as e:
            for error in e.errors(include_url=False):
                self._add_pydantic(model, loc, error)
            return None

    def _add_pydantic(self, model: type[_Spec], loc: list[str | int], error: Any) -> None:
        err_loc = [p for p in error["loc"] if p != "[key]"]
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, err_loc[:-1])
            message = "unknown key" + (f" (expected one of: {', '.join(allowed)})" if allowed else "")
        elif kind == "missing":
            message = "required"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = f"must be a mapping{_got(error)}"
        else:
            text = str(error["msg"])
            text = text.removeprefix("Value error, ").removeprefix("Assertion failed, ")
            text = text.replace("Input should be a valid number", "must be a number")
            text = text.replace("Input should be a valid string", "must be a string")
            text = text.replace("Input should be a valid boolean", "must be true or false")
            text = text.replace("Input should be a valid list", "must be a list")
            text = text.replace("Input should be", "must be")
            message = text + ("" if kind == "value_error" and "(" in text else _got(error))
        self.add([*loc, *err_loc], message)

    def _check_names(self, loc: list[str | int], raw: Any) -> None:
        """Metric names (threshold keys) and label names, each reported at its own key."""
        if not isinstance(raw, Mapping):
            return
        for section, check in (("thresholds", _check_metric_name), ("labels", _check_label_name)):
            for key in _mapping_keys(raw.get(section)):
                if isinstance(key, str):
                    try:
                        check(key)
                    except ValueError as e:
                        self.add([*loc, section, key], str(e))

    def _timeout(
        self,
        loc: list[str | int],
        interval: float,
        interval_note: str,
        written: float | None,
        inherited: float,
    ) -> float:
        """The scrape timeout at one level (`defaults` or a machine) whose interval is `interval`.

        A timeout written at this level must be shorter than the interval, else a problem at that
        timeout's key. A timeout not written here is `inherited`, capped at DEFAULT_TIMEOUT_SHARE of
        the interval, so it never conflicts with it.
        """
        if written is None:
            return min(inherited, DEFAULT_TIMEOUT_SHARE * interval)
        if written >= interval:
            self.add(
                [*loc, "scrape_timeout"],
                f"scrape_timeout ({written:g}s) must be shorter than "
                f"scrape_interval ({interval:g}s{interval_note})",
            )
        return written

    def _check_defaults(self, raw: Any) -> Defaults | None:
        before = len(self.problems)
        raw = {} if raw is None else raw
        self._check_names(["defaults"], raw)
        spec: DefaultsSpec | None = self._validate(DefaultsSpec, ["defaults"], raw)
        if spec is None:
            return None
        written = spec.scrape_timeout if "scrape_timeout" in spec.model_fields_set else None
        interval_note = "" if "scrape_interval" in spec.model_fields_set else ", the default"
        timeout = self._timeout(
            ["defaults"], spec.scrape_interval, interval_note, written, DEFAULT_SCRAPE_TIMEOUT
        )
        if written is not None:
            self.inherited_timeout = written
        alerts = self._alert_rules(["defaults"], spec.alerts, DEFAULT_RULES)
        if len(self.problems) > before:
            return None
        return Defaults(
            scrape_interval_seconds=spec.scrape_interval,
            scrape_timeout_seconds=timeout,
            push_interval_seconds=spec.push_interval,
            push_stale_intervals=spec.push_stale_intervals,
            thresholds={k: Threshold(t.warn, t.alarm) for k, t in spec.thresholds.items()},
            limits=ScrapeLimits().overridden_by(spec),
            alerts=alerts,
        )

    def _alert_rules(
        self, loc: list[str | int], specs: list[AlertRuleSpec] | None, inherited: tuple[AlertRule, ...]
    ) -> tuple[AlertRule, ...]:
        """The rules written at `loc` (a whole list replaces the inherited one), names unique."""
        if specs is None:
            return inherited
        rules = tuple(spec.resolve() for spec in specs)
        first: dict[str, int] = {}
        for index, rule in enumerate(rules):
            if rule.name in first:
                self.add(
                    [*loc, "alerts", index],
                    f"two rules named {rule.name!r} (alerts[{first[rule.name]}]): "
                    "give one a distinct `name:`",
                )
            else:
                first[rule.name] = index
        return rules

    def _check_machine(
        self, loc: list[str | int], raw: Any, defaults: Defaults | None, folder: Path
    ) -> Machine | None:
        before = len(self.problems)
        if isinstance(raw, Mapping):
            for key, check in _FIELD_CHECKS.items():
                value = raw.get(key)
                if isinstance(value, str):
                    try:
                        check(value)
                    except ValueError as e:
                        self.add([*loc, key], str(e))
        self._check_names(loc, raw)
        self._check_mode(loc, raw)
        if isinstance(raw, Mapping) and raw.get("plan_position") is not None and raw.get("site") is None:
            self.add([*loc, "plan_position"], "needs `site:`: a floor plan belongs to a site")
        spec: MachineSpec | None = self._validate(MachineSpec, loc, raw)
        if spec is None or defaults is None or len(self.problems) > before:
            return None

        interval = spec.scrape_interval or defaults.scrape_interval_seconds
        if spec.scrape_interval is None and spec.scrape_timeout is None:
            timeout = defaults.scrape_timeout_seconds  # both from defaults, which fit each other
        else:
            interval_note = "" if spec.scrape_interval is not None else ", from defaults"
            timeout = self._timeout(loc, interval, interval_note, spec.scrape_timeout, self.inherited_timeout)
        thresholds = dict(defaults.thresholds)
        for metric, override in spec.thresholds.items():
            base = thresholds.get(metric, Threshold())
            merged = Threshold(
                warn=override.warn if "warn" in override.model_fields_set else base.warn,
                alarm=override.alarm if "alarm" in override.model_fields_set else base.alarm,
            )
            if merged.warn is not None and merged.alarm is not None and merged.warn > merged.alarm:
                self.add(
                    [*loc, "thresholds", metric],
                    f"warn ({merged.warn:g}) must not be above alarm ({merged.alarm:g}) "
                    "once merged with the defaults",
                )
            thresholds[metric] = merged
        alerts = self._alert_rules(loc, spec.alerts, defaults.alerts)
        if len(self.problems) > before:
            return None
        return Machine(
            id=spec.id,
            name=spec.name if spec.name is not None else spec.id,
            url=spec.url or "",
            mode=spec.mode,
            site=spec.site,
            location=None if spec.location is None else Location(spec.location.lat, spec.location.lon),
            plan_position=None
            if spec.plan_position is None
            else PlanPosition(spec.plan_position.x, spec.plan_position.y),
            labels=dict(spec.labels),
            auth=None if spec.auth is None else spec.auth.relative_to(folder),
            enabled=spec.enabled,
            scrape_interval_seconds=interval,
            scrape_timeout_seconds=timeout,
            push_interval_seconds=spec.push_interval or defaults.push_interval_seconds,
            push_stale_intervals=spec.push_stale_intervals or defaults.push_stale_intervals,
            thresholds=thresholds,
            limits=defaults.limits.overridden_by(spec),
            alerts=alerts,
        )

    def _check_mode(self, loc: list[str | int], raw: Any) -> None:
        """A pulled machine needs a `url`; a push machine has none, nor any other key of the other mode.

        Checked on the raw mapping, so these problems are reported with the machine's others.
        """
        if not isinstance(raw, Mapping):
            return
        mode = raw.get("mode", PULL)
        if mode == PULL:
            if raw.get("url") is None:
                self.add([*loc, "url"], "required (or `mode: push` for a machine that sends its readings)")
            for key in PUSH_ONLY_KEYS:
                if key in raw:
                    self.add([*loc, key], "only for `mode: push` machines (this one is pulled)")
            return
        if mode != PUSH:
            return  # the model reports the bad mode
        for key in PULL_ONLY_KEYS:
            if key in raw:
                self.add(
                    [*loc, key],
                    "not allowed with `mode: push`: a push machine is never scraped, "
                    "it sends its readings to POST /api/ingest",
                )


def _mapping_keys(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        yield from value


def _got(error: Any) -> str:
    value = error.get("input")
    if isinstance(value, dict | list) or value is None:
        return ""
    text = repr(value)
    return f" (got {text[:60]}{'...' if len(text) > 60 else ''})"


def _path_text(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the model found at `loc` (below `model`) accepts, for "unknown key" messages."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) or next(
                (f for f in current.model_fields.values() if f.alias == part), None
            )
            current = None if field is None else field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        # The model's own keys first, then those of its bases (the limits, shared by two models); a key
        # written under another name than the field's (`for:`) is shown as written.
        own = current.__dict__.get("__annotations__", {})
        names = sorted(current.model_fields, key=lambda name: name not in own)
        return [current.model_fields[name].alias or name for name in names]
    return []


def _unwrap(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` -> X."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = typing.get_args(annotation)
        if args and type(None) in args and typing.get_origin(annotation) in (typing.Union, type(int | None)):
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                annotation = rest[0]
                continue
        return annotation
