"""Collectors: each yields its metric families (exporter/exposition.py) at scrape time, nothing polls.

`serial.py` (the sensor readings and the reader's health), `buffer.py` (the local buffer's
health), `info.py` (identity and build); the system collectors, one per module and each switchable
in exporter.yaml: `cpu.py`, `loadavg.py`, `memory.py`, `swap.py`, `filesystem.py`, `diskio.py`,
`network.py`, `boot.py`, `process.py`, built by `system.py`; and `guard.py`, which runs them all so
that a failing collector shows up as `millwatch_collector_success{collector} 0` instead of
breaking the scrape.
"""
