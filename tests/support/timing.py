"""Generous, scalable timeouts for tests that wait on real processes.

Set METRICS_BRIDGE_TEST_TIMEOUT_SCALE (e.g. 3) on a slow machine; tests never
sleep for a fixed time to let something happen, they wait for it up to
`scaled(seconds)`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

SCALE = float(os.environ.get("METRICS_BRIDGE_TEST_TIMEOUT_SCALE", "1"))


def scaled(seconds: float) -> float:
    return seconds * SCALE


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until true or fail after `scaled(timeout)` seconds."""
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.1f}s waiting for {what}")
        time.sleep(0.02)


async def async_wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    what: str,
) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.1f}s waiting for {what}")
        await asyncio.sleep(0.02)
