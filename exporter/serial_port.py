"""Opening the serial port, and the exponential backoff between attempts.

The port is opened with `serial.serial_for_url` (any device or pyserial URL) and read with a short
timeout (`serial.read_timeout`; in poll mode at most half the answer timeout), so the reader thread
notices `stop()` quickly and never blocks elsewhere. A test may hand in another opener with the same
signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import serial

from exporter.config import SerialConfig

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0

Opener = Callable[..., Any]


def open_port(config: SerialConfig, opener: Opener | None = None) -> Any:
    """An open port for `config`. Raises whatever the opener raises (SerialException, OSError, ...)."""
    return (opener or serial.serial_for_url)(
        config.port,
        baudrate=config.baudrate,
        bytesize=config.bytesize,
        parity=config.parity,
        stopbits=config.stopbits,
        timeout=config.port_timeout,
        write_timeout=config.port_timeout,
    )


class Backoff:
    """Delays between attempts: `initial`, doubling up to `maximum`; `reset()` after a success."""

    def __init__(self, initial: float = INITIAL_BACKOFF, maximum: float = MAX_BACKOFF) -> None:
        self.initial = initial
        self.maximum = maximum
        self._delay = initial

    def next(self) -> float:
        """The delay to wait now; the following one is twice as long (at most `maximum`)."""
        delay = self._delay
        self._delay = min(self._delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._delay = self.initial
