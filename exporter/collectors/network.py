"""Network per interface: bytes, packets, errors and drops received and sent; loopback left out.

`system_network_{receive,transmit}_bytes_total{interface}`, `..._packets_total`, `..._errors_total`,
`..._drop_total`. Loopback is `lo` on Linux (`lo0` on BSD/macOS) and `Loopback Pseudo-Interface N`
on Windows; its traffic says nothing about the machine's network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from exporter.exposition import CounterMetricFamily, Metric

LOOPBACK = re.compile(r"^(lo\d*|Loopback Pseudo-Interface.*)$", re.IGNORECASE)

# (psutil field, direction, what, help)
_FIELDS = (
    ("bytes_recv", "receive", "bytes", "Bytes received by the network interface."),
    ("bytes_sent", "transmit", "bytes", "Bytes sent by the network interface."),
    ("packets_recv", "receive", "packets", "Packets received by the network interface."),
    ("packets_sent", "transmit", "packets", "Packets sent by the network interface."),
    ("errin", "receive", "errors", "Receive errors of the network interface."),
    ("errout", "transmit", "errors", "Transmit errors of the network interface."),
    ("dropin", "receive", "drop", "Incoming packets dropped by the network interface."),
    ("dropout", "transmit", "drop", "Outgoing packets dropped by the network interface."),
)


class NetworkCollector:
    def __init__(self, psutil_module: Any) -> None:
        self._psutil = psutil_module

    def collect(self) -> Iterable[Metric]:
        families = [
            (
                field,
                CounterMetricFamily(f"system_network_{direction}_{what}", help_text, labels=["interface"]),
            )
            for field, direction, what, help_text in _FIELDS
        ]
        # nowrap=False: the kernel's counters as they are (see diskio.py)
        counters = self._psutil.net_io_counters(pernic=True, nowrap=False) or {}
        for interface in sorted(counters):
            if LOOPBACK.match(interface):
                continue
            for field, family in families:
                family.add_metric([interface], float(getattr(counters[interface], field)))
        for _, family in families:
            yield family
