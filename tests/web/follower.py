"""The JS client running in node (web/tools/follow.mjs) as a test subprocess.

stdout: one JSON line per applied Snapshot/Update; stderr: `TYPE {json}` lines
for connection, upstream, subscribed, resync and error events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.processes import REPO
from tests.support.timing import async_wait_until

FOLLOW = REPO / "web" / "tools" / "follow.mjs"


class NodeFollower:
    def __init__(self, url: str, channel: str, env: dict[str, str] | None = None) -> None:
        self.env = env
        self.url = url
        self.channel = channel
        self.data: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> NodeFollower:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed (the JS client tests need node >= 20)")
        if not (REPO / "web" / "node_modules" / "ws").exists():
            pytest.fail("web/node_modules is missing: run `make web-deps`")
        self._proc = await asyncio.create_subprocess_exec(
            node,
            str(FOLLOW),
            self.url,
            self.channel,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **self.env} if self.env else None,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self._proc.stdout, self._on_data)),
            asyncio.create_task(self._read(self._proc.stderr, self._on_event)),
        ]
        return self

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            with contextlib.suppress(ProcessLookupError):
                await self._proc.wait()
        for task in self._readers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> NodeFollower:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @staticmethod
    async def _read(stream: asyncio.StreamReader, handle: Callable[[str], None]) -> None:
        while line := await stream.readline():
            handle(line.decode().rstrip("\n"))

    def _on_data(self, line: str) -> None:
        self.data.append(json.loads(line))

    def _on_event(self, line: str) -> None:
        kind, _, payload = line.partition(" ")
        try:
            self.events.append((kind, json.loads(payload)))
        except json.JSONDecodeError:
            self.events.append((kind, {"text": payload}))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [detail for k, detail in self.events if k == kind]

    async def wait_data(self, count: int, within: float = 30) -> None:
        await async_wait_until(
            lambda: len(self.data) >= count, within, f"{count} data lines from the JS client"
        )

    async def wait_event(
        self, kind: str, match: Callable[[dict[str, Any]], bool], within: float = 30
    ) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [d for d in self.of(kind) if match(d)]
            return bool(found)

        await async_wait_until(seen, within, f"a {kind} event from the JS client")
        return found[0]
