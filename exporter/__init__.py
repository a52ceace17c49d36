"""millwatch exporter: serial sensors and system figures in the Prometheus text format."""

from __future__ import annotations

__version__ = "0.1.0"
