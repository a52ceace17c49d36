"""Identity and build: `machine_info{machine_id,name} 1` and `millwatch_exporter_build_info{version} 1`.

The identity is one series, so labels such as the machine's name are not copied onto every sample.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.exposition import GaugeMetricFamily, Metric


class InfoCollector:
    def __init__(self, machine_id: str, name: str, version: str) -> None:
        self._machine_id = machine_id
        self._name = name
        self._version = version

    def collect(self) -> Iterable[Metric]:
        machine = GaugeMetricFamily(
            "machine_info", "The machine this exporter reports for (always 1).", labels=["machine_id", "name"]
        )
        machine.add_metric([self._machine_id, self._name], 1.0)
        yield machine
        build = GaugeMetricFamily(
            "millwatch_exporter_build_info",
            "The millwatch exporter's version (always 1).",
            labels=["version"],
        )
        build.add_metric([self._version], 1.0)
        yield build
