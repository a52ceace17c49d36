"""Waiting for an `asyncio.Event` with a deadline, in loops that are stopped by cancelling them.

Not `asyncio.wait_for`: on Python 3.11 it returns the result instead of raising CancelledError when
the task is cancelled just as the event is set (the inner wait is already done, CPython gh-86296,
fixed in 3.12). A background loop so cancelled runs on, and whoever awaits it after `cancel()`
waits forever: a server start that failed at that moment never ended. `asyncio.timeout` keeps the
cancellation.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set (True) or `timeout` seconds have passed (False)."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
