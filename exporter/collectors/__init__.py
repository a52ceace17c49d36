"""prometheus-client collectors: each yields its metric families at scrape time, nothing polls.

`serial.py` (the sensor readings and the reader's health), `system.py` (psutil figures),
`info.py` (identity and build), and `guard.py`, which runs them so that a failing collector shows
up as `millwatch_collector_success{collector} 0` instead of breaking the scrape.
"""
