"""The signals that stop a server process gracefully: SIGTERM (service managers,
`kill`) and SIGINT (Ctrl-C) are handled alike."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

__all__ = ["STOP_SIGNALS", "on_stop_signal"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signal(loop: asyncio.AbstractEventLoop, stop: Callable[[], object]) -> None:
    """Call `stop` in `loop` on SIGTERM or SIGINT instead of dying at once."""
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop)
