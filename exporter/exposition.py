"""The exporter's metric families and their exposition: Prometheus text 0.0.4 and OpenMetrics 1.0.0.

Why not prometheus-client: importing any of its modules runs its package `__init__`, which imports
`prometheus_client.exposition` and with it `http.server`, `ssl`, `urllib.request` and `wsgiref`:
4.1 MB of RSS on an exporter whose whole budget is ~1.2x node_exporter's 21 MB (bench/README.md).
The exporter only needs gauges and counters built at scrape time (no client-side metric state), so
this module keeps the same small data model (`GaugeMetricFamily`, `CounterMetricFamily`,
`add_metric`, `collect()`) and writes the two formats itself, byte for byte as
`prometheus_client.exposition.generate_latest` and `prometheus_client.openmetrics.exposition.
generate_latest` write them for these families (tests/exporter/test_exporter_exposition.py checks
that against the library wherever it is installed).

Metric and label names are the exporter's own constants or checked by the configuration
(`millwatch_common.names.CHANNEL_METRIC`); only label values and help texts are escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class Sample(NamedTuple):
    """One sample line: `name{labels} value`."""

    name: str
    labels: dict[str, str]
    value: float
    timestamp: float | None = None


class MetricFamily:
    """One metric family (HELP, TYPE and its samples) as collected at one scrape."""

    __slots__ = ("name", "documentation", "type", "_labelnames", "_sample_name", "_rows")

    def __init__(
        self, name: str, documentation: str, kind: str, labels: Sequence[str] | None, sample_name: str
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.type = kind
        self._labelnames = tuple(labels or ())
        self._sample_name = sample_name
        # (rendered `name{labels} `, label values, value, timestamp) per sample
        self._rows: list[tuple[str, tuple[str, ...], float, float | None]] = []

    def add_metric(self, labels: Sequence[str], value: float, timestamp: float | None = None) -> None:
        """One sample; `labels` are the values of the family's label names, in their order."""
        values = tuple(labels)
        key = (self._sample_name, self._labelnames, values)
        head = _HEADS.get(key)
        if head is None:
            head = _sample_head(self._sample_name, dict(zip(self._labelnames, values)))
            if len(_HEADS) >= _MAX_CACHED:
                _HEADS.clear()
            _HEADS[key] = head
        self._rows.append((head, values, float(value), timestamp))

    @property
    def samples(self) -> list[Sample]:
        return [
            Sample(self._sample_name, dict(zip(self._labelnames, values)), value, timestamp)
            for _, values, value, timestamp in self._rows
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self._rows)} samples)"


Metric = MetricFamily


class GaugeMetricFamily(MetricFamily):
    """A gauge: `value` for one unlabelled sample, or `labels` and `add_metric` for several."""

    def __init__(
        self, name: str, documentation: str, value: float | None = None, labels: Sequence[str] | None = None
    ) -> None:
        super().__init__(name, documentation, "gauge", labels, name)
        if value is not None:
            if labels:
                raise ValueError("GaugeMetricFamily: give either a value or labels, not both")
            self.add_metric((), value)


class CounterMetricFamily(MetricFamily):
    """A counter, named without `_total` (as in OpenMetrics); its samples are `<name>_total`."""

    def __init__(
        self, name: str, documentation: str, value: float | None = None, labels: Sequence[str] | None = None
    ) -> None:
        if name.endswith("_total"):
            name = name[: -len("_total")]
        super().__init__(name, documentation, "counter", labels, name + "_total")
        if value is not None:
            if labels:
                raise ValueError("CounterMetricFamily: give either a value or labels, not both")
            self.add_metric((), value)


class Collector(Protocol):
    """What a registry collects from at each scrape."""

    def collect(self) -> Iterable[MetricFamily]: ...


class Registry:
    """The collectors of one exporter, collected in the order they were registered."""

    def __init__(self) -> None:
        self._collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        self._collectors.append(collector)

    def collect(self) -> Iterable[MetricFamily]:
        for collector in list(self._collectors):
            yield from collector.collect()


def wants_openmetrics(accept: str) -> bool:
    """Whether an `Accept` header asks for OpenMetrics 1.x, as prometheus-client decides it.

    Any listed `application/openmetrics-text` without a version or with version 1.x (and q not 0)
    chooses OpenMetrics; everything else, `*/*` and no header included, gets text 0.0.4.
    """
    for accepted in accept.split(","):
        parts = accepted.split(";")
        if parts[0].strip().lower() != "application/openmetrics-text":
            continue
        version, quality = "", "1"
        for parameter in parts[1:]:
            key, _, value = parameter.partition("=")
            key = key.strip().lower()
            if key == "version":
                version = value.strip()
            elif key == "q":
                quality = value.strip()
        try:
            if float(quality) <= 0:
                continue
        except ValueError:
            continue
        if not version or version.split(".")[0] == "1":
            return True
    return False


def render(families: Iterable[Any], *, openmetrics: bool = False) -> bytes:
    """The exposition of `families`: text 0.0.4, or OpenMetrics 1.0.0 (ending with `# EOF`).

    The families may also be prometheus-client's (anything with name, documentation, type and
    samples): the tests compare the two writers on the same families.
    """
    out: list[str] = []
    append = out.append
    for family in families:
        key = (family.name, family.documentation, family.type, openmetrics)
        header = _HEADERS.get(key)
        if header is None:
            header = _header(family.name, family.documentation, family.type, openmetrics)
            if len(_HEADERS) >= _MAX_CACHED:
                _HEADERS.clear()
            _HEADERS[key] = header
        append(header)
        if isinstance(family, MetricFamily):
            rows: Iterable[tuple[str, Any, float, float | None]] = family._rows
        else:
            rows = ((_sample_head(s.name, s.labels), None, s.value, s.timestamp) for s in family.samples)
        for head, _, value, timestamp in rows:
            if timestamp is None:
                append(head + go_float(value) + "\n")
            elif openmetrics:
                append(f"{head}{go_float(value)} {timestamp}\n")
            else:
                append(f"{head}{go_float(value)} {int(float(timestamp) * 1000):d}\n")
    if openmetrics:
        append("# EOF\n")
    return "".join(out).encode("utf-8")


# What stays the same from scrape to scrape is written once: a family's HELP and TYPE lines, and
# each sample's name and labels (mount points, interfaces, reasons). Bounded: cleared when full.
_MAX_CACHED = 4096
_HEADERS: dict[tuple[str, str, str, bool], str] = {}
_HEADS: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}


def _header(name: str, documentation: str, kind: str, openmetrics: bool) -> str:
    if openmetrics:
        return f"# HELP {name} {_escape(documentation)}\n# TYPE {name} {kind}\n"
    if kind == "counter":
        name += "_total"
    elif kind == "unknown":
        kind = "untyped"
    help_text = documentation.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def _sample_head(name: str, labels: dict[str, str]) -> str:
    """`name{label="value",...} ` with the labels sorted by name, as prometheus-client writes them."""
    if not labels:
        return name + " "
    text = ",".join(f'{k}="{_escape(labels[k])}"' for k in sorted(labels))
    return f"{name}{{{text}}} "


def go_float(value: float) -> str:
    """A value as Go's strconv writes it (and prometheus-client's `floatToGoString`)."""
    value = float(value)
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value != value:
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _escape(text: str) -> str:
    if "\\" in text or "\n" in text or '"' in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return text
