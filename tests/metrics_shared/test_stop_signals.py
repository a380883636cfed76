"""SIGTERM and SIGINT both ask a server to stop, through its event loop."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from metrics_shared.stop_signals import STOP_SIGNALS, on_stop_signal


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_calls_stop_in_the_loop(sig: signal.Signals) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    on_stop_signal(loop, stopped.set)
    try:
        os.kill(os.getpid(), sig)
        async with asyncio.timeout(5):
            await stopped.wait()
    finally:
        for each in STOP_SIGNALS:
            loop.remove_signal_handler(each)
