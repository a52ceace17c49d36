"""The exporter's own exposition writer: byte for byte prometheus-client's, and what it keeps out of memory.

prometheus-client is the reference where it is installed (the central venv); the exporter-only
Python 3.9 venv does not hold it, and there the comparisons are skipped (the golden file and the
HTTP tests still pin the output).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import exporter.exposition as our_kinds
from exporter.exposition import (
    CounterMetricFamily,
    GaugeMetricFamily,
    MetricFamily,
    Registry,
    go_float,
    render,
    wants_openmetrics,
)

AWKWARD = 'C:\\data "new"\nline'
VALUES = [0.0, 1.0, -2.5, 72.25, 1804380327.0, 1e-9, 123456789012.0, 1e21, math.inf, -math.inf, math.nan, 7]


def families(kinds: Any) -> list[Any]:
    """The same families built with either module (ours or prometheus_client.metrics_core)."""
    gauge = kinds.GaugeMetricFamily("machine_temperature_celsius", "Temperature.\\ in °C", value=72.5)
    labelled = kinds.GaugeMetricFamily(
        "system_disk_free_bytes", f"Help with {AWKWARD}", labels=["mountpoint", "device"]
    )
    for number, value in enumerate(VALUES):
        labelled.add_metric([f"/mnt/{number}", AWKWARD if number == 3 else "sda"], value)
    counter = kinds.CounterMetricFamily("millwatch_serial_readings", "Lines read.", value=12)
    suffixed = kinds.CounterMetricFamily("system_cpu_seconds_total", "CPU time.", labels=["mode"])
    suffixed.add_metric(["user"], 1.25)
    suffixed.add_metric(["idle"], 3e9)
    empty = kinds.GaugeMetricFamily("millwatch_push_pending_readings", "Nothing yet.", labels=["x"])
    return [gauge, labelled, counter, suffixed, empty]


class _Collector:
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def collect(self) -> Iterable[Any]:
        return self.items


def test_text_and_openmetrics_match_prometheus_client_byte_for_byte() -> None:
    client = pytest.importorskip("prometheus_client")
    import prometheus_client.metrics_core as reference_kinds
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(_Collector(families(reference_kinds)))  # type: ignore[arg-type]
    expected_text = client.generate_latest(registry)
    expected_openmetrics = openmetrics_latest(registry)

    ours = families(our_kinds)
    assert render(ours) == expected_text
    assert render(ours, openmetrics=True) == expected_openmetrics
    # prometheus-client's own families through our writer: the same bytes again
    assert render(families(reference_kinds)) == expected_text
    assert render(families(reference_kinds), openmetrics=True) == expected_openmetrics


def test_what_the_text_format_holds() -> None:
    text = render(families(our_kinds)).decode()
    assert "# TYPE millwatch_serial_readings_total counter\nmillwatch_serial_readings_total 12.0\n" in text
    assert '# HELP system_disk_free_bytes Help with C:\\\\data "new"\\nline\n' in text
    assert 'device="C:\\\\data \\"new\\"\\nline",mountpoint="/mnt/3"} 72.25\n' in text
    assert 'system_disk_free_bytes{device="sda",mountpoint="/mnt/8"} +Inf\n' in text
    assert 'system_disk_free_bytes{device="sda",mountpoint="/mnt/10"} NaN\n' in text
    assert 'system_disk_free_bytes{device="sda",mountpoint="/mnt/4"} 1.804380327e+09\n' in text
    assert 'system_cpu_seconds_total{mode="idle"} 3e+09\n' in text
    assert text.endswith("# TYPE millwatch_push_pending_readings gauge\n"), "a family without samples"
    assert not text.endswith("# EOF\n")
    assert render([], openmetrics=True) == b"# EOF\n"


def test_the_same_family_rendered_twice_is_the_same_and_values_are_fresh() -> None:
    first = GaugeMetricFamily("a_bytes", "A.", labels=["device"])
    first.add_metric(["sda"], 1.0)
    second = GaugeMetricFamily("a_bytes", "A.", labels=["device"])
    second.add_metric(["sda"], 2.0)
    assert render([first]) == b'# HELP a_bytes A.\n# TYPE a_bytes gauge\na_bytes{device="sda"} 1.0\n'
    assert render([second]).endswith(b'a_bytes{device="sda"} 2.0\n')
    assert [tuple(s) for s in second.samples] == [("a_bytes", {"device": "sda"}, 2.0, None)]


def test_go_float_writes_values_as_go_does() -> None:
    assert [go_float(v) for v in (0, 1, 0.5, 1234567.0, 12345678.0, -12345678.0, 2.5e-7)] == [
        "0.0",
        "1.0",
        "0.5",
        "1.234567e+06",
        "1.2345678e+07",
        "-12345678.0",
        "2.5e-07",
    ]


def test_a_family_takes_a_value_or_labels_not_both() -> None:
    with pytest.raises(ValueError, match="either a value or labels"):
        GaugeMetricFamily("a", "A.", value=1.0, labels=["x"])
    with pytest.raises(ValueError, match="either a value or labels"):
        CounterMetricFamily("a", "A.", value=1.0, labels=["x"])


def test_registry_collects_in_registration_order() -> None:
    registry = Registry()
    registry.register(_Collector([GaugeMetricFamily("b", "B.", value=1)]))
    registry.register(_Collector([GaugeMetricFamily("a", "A.", value=2)]))
    names = [family.name for family in registry.collect() if isinstance(family, MetricFamily)]
    assert names == ["b", "a"]


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        ("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", True),
        ("application/openmetrics-text", True),
        ("text/plain, application/openmetrics-text; version=1.0.0", True),
        ("text/plain;version=0.0.4", False),
        ("", False),
        ("*/*", False),
        ("application/openmetrics-text;version=2.0.0", False),  # a version this writer does not write
        ("application/openmetrics-text;q=0", False),
        ("application/openmetrics-text;q=x", False),
    ],
)
def test_openmetrics_only_when_the_accept_header_asks_for_1_x(accept: str, openmetrics: bool) -> None:
    assert wants_openmetrics(accept) is openmetrics


# Starts an exporter, scrapes it over a plain socket (no HTTP client's imports) and lists the modules.
RUN_AND_LIST_MODULES = """
import json, socket, sys, time
from exporter.app import ExporterApp
from exporter.config import load_config
app = ExporterApp(load_config(sys.argv[1]))
app.start()
try:
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
finally:
    app.stop()
print(json.dumps({"modules": sorted(sys.modules), "served": b"millwatch_serial_up" in answer}))
"""
# What an exporter without TLS, push or credentials never needs: their imports cost ~9 MB of RSS.
NOT_LOADED = {
    "prometheus_client",
    "http.server",
    "http.client",
    "urllib.request",
    "ssl",
    "html",
    "hashlib",
    "hmac",
    "email",
}


def test_a_plain_exporter_serves_without_loading_ssl_http_server_or_prometheus_client(tmp_path: Path) -> None:
    config = tmp_path / "exporter.yaml"
    config.write_text(
        "machine: {id: m_01, name: M 01}\nlisten: 127.0.0.1:0\n"
        f"serial: {{port: {tmp_path / 'no-such-port'}}}\nbuffer: {{path: {tmp_path / 'buffer.sqlite'}}}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["served"]
    assert not set(found["modules"]) & NOT_LOADED, sorted(set(found["modules"]) & NOT_LOADED)


def test_the_status_page_escapes_as_html_escape_does() -> None:
    import html

    from exporter.status_page import escape

    for text in ('<script>alert("x")</script>', "a & b's", "&amp;", "plain", "\x00<>"):
        assert escape(text) == html.escape(text)
