"""The naming rules both sides of millwatch check: machine ids, metric and label names, readings.

One definition, so that an id the exporter accepts is one the inventory accepts, and a channel
metric the exporter serves is one the scraper reads as a sensor reading.
"""

from __future__ import annotations

import re

#: A machine id, in `exporter.yaml` (`machine.id`) and in `machines.yaml` (`id`).
MACHINE_ID = re.compile(r"^[a-z0-9_-]+$")
#: A Prometheus metric name.
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
#: A Prometheus label name.
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Unlabelled samples whose name starts with this are sensor readings (the exporter's channels).
READING_PREFIX = "machine_"
#: The one `machine_*` metric that is not a reading: the identity series.
MACHINE_INFO_METRIC = "machine_info"
#: What the exporter accepts as a channel's metric name.
CHANNEL_METRIC = re.compile(r"^" + READING_PREFIX + r"[a-z0-9_]+$")
#: The exporter's default TCP port.
DEFAULT_EXPORTER_PORT = 9817
