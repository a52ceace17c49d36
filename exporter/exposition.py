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
from typing import NamedTuple, Protocol

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

    __slots__ = ("name", "documentation", "type", "samples", "_labelnames", "_sample_name")

    def __init__(
        self, name: str, documentation: str, kind: str, labels: Sequence[str] | None, sample_name: str
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.type = kind
        self.samples: list[Sample] = []
        self._labelnames = tuple(labels or ())
        self._sample_name = sample_name

    def add_metric(self, labels: Sequence[str], value: float, timestamp: float | None = None) -> None:
        """One sample; `labels` are the values of the family's label names, in their order."""
        self.samples.append(
            Sample(self._sample_name, dict(zip(self._labelnames, labels)), float(value), timestamp)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self.samples)} samples)"


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


def render(families: Iterable[MetricFamily], *, openmetrics: bool = False) -> bytes:
    """The exposition of `families`: text 0.0.4, or OpenMetrics 1.0.0 (ending with `# EOF`)."""
    out: list[str] = []
    append = out.append
    for family in families:
        name = family.name
        kind = family.type
        if openmetrics:
            append(f"# HELP {name} {_escape(family.documentation)}\n# TYPE {name} {kind}\n")
        else:
            if kind == "counter":
                name += "_total"
            elif kind == "unknown":
                kind = "untyped"
            help_text = family.documentation.replace("\\", "\\\\").replace("\n", "\\n")
            append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        for sample in family.samples:
            labels = sample.labels
            if labels:
                label_text = ",".join(f'{k}="{_escape(labels[k])}"' for k in sorted(labels))
                head = f"{sample.name}{{{label_text}}} "
            else:
                head = sample.name + " "
            timestamp = sample.timestamp
            if timestamp is None:
                append(head + go_float(sample.value) + "\n")
            elif openmetrics:
                append(f"{head}{go_float(sample.value)} {timestamp}\n")
            else:
                append(f"{head}{go_float(sample.value)} {int(float(timestamp) * 1000):d}\n")
    if openmetrics:
        append("# EOF\n")
    return "".join(out).encode("utf-8")


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
