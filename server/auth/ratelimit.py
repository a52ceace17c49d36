"""Slows password guessing: failed logins are counted per client address and per login name.

The `limits` library keeps moving windows in memory (per server process: several processes behind
a load balancer each allow the rate). Only failures count, so an operator who types the password
right is never held up; once either window is full, every attempt for that address or name is
answered 429 with Retry-After until the window has room again, the right password included.
A guesser can so hold a name's logins off for one window; that is the price of stopping them.

Attempts still being checked count too: a password check takes tens of milliseconds (argon2), so
without them a burst of parallel guesses would all pass the window before the first failure was
counted (40 parallel guesses against a limit of 3 got 33 checks). `begin` looks at the windows and
reserves the attempt under one lock; `end` releases it and counts it if it failed.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


def parse_rate(text: str) -> RateLimitItem:
    """A rate such as "10/minute" or "5 per 15 minutes"; ValueError when `text` is not one."""
    try:
        return parse(text)
    except ValueError as e:
        raise ValueError(f"not a rate like 10/minute: {e}") from None


@dataclass(frozen=True)
class Refusal:
    """A refused attempt: which limit ("address" or "user") and how long to wait, in whole seconds."""

    reason: str
    retry_after: int


class LoginLimiter:
    """Failed-login windows per address and per name, plus the attempts being checked right now."""

    def __init__(self, per_address: str, per_user: str) -> None:
        self._per_address = parse_rate(per_address)
        self._per_user = parse_rate(per_user)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()  # logins are checked in the server's worker threads
        self._checking: Counter[tuple[str, str]] = Counter()

    def _keys(self, address: str, name: str) -> tuple[tuple[str, RateLimitItem, str], ...]:
        return (("address", self._per_address, address), ("user", self._per_user, name.lower()))

    def begin(self, address: str, name: str) -> Refusal | None:
        """Reserve an attempt from `address` for `name` (None: go on, then call `end`), or why not."""
        with self._lock:
            keys = self._keys(address, name)
            for reason, item, key in keys:
                stats = self._limiter.get_window_stats(item, reason, key)
                if stats.remaining - self._checking[(reason, key)] <= 0:
                    wait = max(1, math.ceil(stats.reset_time - time.time()))
                    return Refusal(reason, wait)
            for reason, _, key in keys:
                self._checking[(reason, key)] += 1
            return None

    def end(self, address: str, name: str, *, failed: bool) -> None:
        """Release an attempt `begin` reserved; a failed one is counted against both windows."""
        with self._lock:
            for reason, item, key in self._keys(address, name):
                self._checking[(reason, key)] -= 1
                if not self._checking[(reason, key)]:
                    del self._checking[(reason, key)]
                if failed:
                    self._limiter.hit(item, reason, key)
