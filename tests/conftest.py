"""Shared by every test folder: makes `tests/support.py` importable as `support`."""
