"""Code that the exporter (on machine PCs) and the central host (scraper, server) both use.

The exporter's base install carries this package; the central packages may import it. It holds
only small, dependency-light pieces that must read the same on both sides: the duration grammar,
YAML loading with line numbers, and the naming rules for machine ids, metrics and labels. Like the
exporter, it runs on Python 3.9.
"""
