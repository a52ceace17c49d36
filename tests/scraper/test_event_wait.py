"""A background loop waiting on an event with a deadline stops when cancelled, even when the event
is set at the same moment (asyncio.wait_for on Python 3.11 lost that cancellation, and a server
whose start failed then never finished stopping)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from scraper.event_wait import wait_event


async def cancelled_as_the_event_is_set(
    wait: Callable[[asyncio.Event, float], Awaitable[object]], steps: int
) -> None:
    event = asyncio.Event()

    async def background_loop() -> None:
        for _ in range(2):  # bounded: a lost cancellation fails the test instead of hanging it
            await wait(event, 3.0)
            event.clear()

    task = asyncio.create_task(background_loop())
    for _ in range(steps):  # the loop is waiting now (how deep its wait is set up depends on `steps`)
        await asyncio.sleep(0)
    event.set()
    task.cancel()  # in the same step: the wait is done before the cancellation reaches the loop
    done, _ = await asyncio.wait({task}, timeout=2)
    assert done == {task}, "the loop went on waiting: the cancellation was lost"
    assert task.cancelled()


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_a_loop_cancelled_as_its_event_is_set_stops(steps: int) -> None:
    asyncio.run(cancelled_as_the_event_is_set(wait_event, steps))


def test_the_wait_says_whether_the_event_came() -> None:
    async def main() -> tuple[bool, bool]:
        event = asyncio.Event()
        missed = await wait_event(event, 0.01)
        asyncio.get_running_loop().call_soon(event.set)
        return missed, await wait_event(event, 5)

    assert asyncio.run(main()) == (False, True)
