"""millwatch exporter: serial sensors and system figures in the Prometheus text format."""

__version__ = "0.1.0"
