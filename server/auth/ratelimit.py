"""Slows password guessing: failed logins are counted per client address and per login name.

The `limits` library keeps moving windows in memory (per server process: several processes behind
a load balancer each allow the rate). Only failures count, so an operator who types the password
right is never held up; once either window is full, every attempt for that address or name is
answered 429 with Retry-After until the window has room again, the right password included.
A guesser can so hold a name's logins off for one window; that is the price of stopping them.
"""

from __future__ import annotations

import math
import time
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
    """Failed-login windows per address and per name."""

    def __init__(self, per_address: str, per_user: str) -> None:
        self._per_address = parse_rate(per_address)
        self._per_user = parse_rate(per_user)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, address: str, name: str) -> Refusal | None:
        """Whether an attempt from `address` for `name` may be tried now (None), or why not."""
        for reason, item, key in (
            ("address", self._per_address, address),
            ("user", self._per_user, name.lower()),
        ):
            if not self._limiter.test(item, reason, key):
                stats = self._limiter.get_window_stats(item, reason, key)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                return Refusal(reason, wait)
        return None

    def failed(self, address: str, name: str) -> None:
        """Count a failed attempt against both windows."""
        self._limiter.hit(self._per_address, "address", address)
        self._limiter.hit(self._per_user, "user", name.lower())
