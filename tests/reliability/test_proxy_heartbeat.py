"""Heartbeats against a proxy's own read timeout (Debian's nginx running deploy/'s config).

nginx closes a proxied WebSocket after `proxy_read_timeout` without a frame
from the bridge; the bridge's heartbeats are those frames for an idle client
(docs: keep --heartbeat under the proxy's timeout).
- Heartbeat longer than the proxy timeout (2 s vs 5 s here): nginx closes the
  idle client before its first heartbeat, exactly as the docs warn, and the
  client reconnects through nginx and resumes the channel with no gap (make test).
- proxy_read_timeout 30 s and --heartbeat 15 s, as deployed: an idle client
  stays connected for 2 minutes (METRICS_BRIDGE_LONG_TESTS=1, make net-faults).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import pytest

from bridge.client import (
    BridgeClient,
    ChannelSynced,
    ChannelUpdated,
    Connected,
    Disconnected,
    GapDetected,
    ReconnectPolicy,
)
from tests.bridge.stack import Pusher
from tests.deploy.nginx import NGINX, Nginx
from tests.support.processes import ServerProcess
from tests.support.timing import scaled
from tests.web.conftest import wait_bridge_ready

pytestmark = pytest.mark.deploy
CHANNEL = "c1/svc"


@dataclass
class Proxied:
    nginx: Nginx
    pusher: Pusher


@contextmanager
def behind_nginx(read_timeout: int, heartbeat: float) -> Iterator[Proxied]:
    if shutil.which(NGINX) is None:
        pytest.skip("nginx is missing: run `make deploy-deps`")
    collector = ServerProcess("collector", ["--listen", "127.0.0.1:0"]).start()
    bridge: ServerProcess | None = None
    nginx: Nginx | None = None
    pusher: Pusher | None = None
    try:
        args = ["--listen", "127.0.0.1:0", "--collector", f"c1={collector.addresses['grpc']}"]
        # WebSocket pings far apart: heartbeats alone are what the proxy sees.
        args += ["--heartbeat", str(heartbeat), "--ping-interval", "600", "--ping-timeout", "600"]
        bridge = ServerProcess("bridge", args).start()
        wait_bridge_ready(bridge.addresses["ws"])
        pusher = Pusher(collector.addresses["grpc"], "svc")
        pusher.push(1.0)
        nginx = Nginx([bridge.addresses["ws"]], read_timeout)
        yield Proxied(nginx, pusher)
    finally:
        if pusher is not None:
            pusher.close()
        if nginx is not None:
            nginx.stop()
        if bridge is not None:
            bridge.cleanup()
        collector.cleanup()


@asynccontextmanager
async def following(url: str) -> AsyncIterator[BridgeClient]:
    client = BridgeClient(url, [CHANNEL], policy=ReconnectPolicy(base=0.2))
    async with client:
        yield client


async def test_a_heartbeat_longer_than_the_proxy_timeout_is_cut_and_the_client_resumes() -> None:
    read_timeout, heartbeat = 2, 5.0
    with behind_nginx(read_timeout, heartbeat) as proxied:
        connected_at: list[float] = []
        disconnected_at: list[float] = []
        synced: list[ChannelSynced] = []
        seqs: list[int] = []
        gaps: list[GapDetected] = []
        async with asyncio.timeout(scaled(40)), following(proxied.nginx.url) as client:
            async for event in client.events():
                if isinstance(event, Connected):
                    connected_at.append(time.monotonic())
                elif isinstance(event, Disconnected):
                    disconnected_at.append(time.monotonic())
                elif isinstance(event, ChannelSynced):
                    synced.append(event)
                    if len(synced) == 2:  # resumed through nginx: one more update
                        await asyncio.to_thread(proxied.pusher.push, 2.0)
                elif isinstance(event, ChannelUpdated):
                    seqs.append(event.position.seq)
                    break
                elif isinstance(event, GapDetected):
                    gaps.append(event)
        idle = disconnected_at[0] - connected_at[0]
        print(f"nginx cut the idle client after {idle:.2f} s (proxy_read_timeout {read_timeout} s)")
        assert read_timeout - 0.5 <= idle < heartbeat  # the proxy, before any heartbeat
        assert len(connected_at) >= 2
        assert synced[1].recovered and synced[1].position.seq == synced[0].position.seq
        assert seqs == [synced[0].position.seq + 1]
        assert gaps == []


@pytest.mark.skipif(
    os.environ.get("METRICS_BRIDGE_LONG_TESTS") != "1",
    reason="2 minutes: make net-faults (METRICS_BRIDGE_LONG_TESTS=1)",
)
@pytest.mark.timeout(300)
async def test_an_idle_client_stays_two_minutes_behind_a_30_s_proxy_with_15_s_heartbeats() -> None:
    with behind_nginx(30, 15.0) as proxied:
        disconnects: list[Disconnected] = []
        started = time.monotonic()
        async with following(proxied.nginx.url) as client:

            async def watch() -> None:
                async for event in client.events():
                    if isinstance(event, Disconnected):
                        disconnects.append(event)

            watcher = asyncio.create_task(watch())
            await asyncio.sleep(120)
            watcher.cancel()
        print(f"idle behind nginx for {time.monotonic() - started:.0f} s: {disconnects}")
        assert disconnects == []
