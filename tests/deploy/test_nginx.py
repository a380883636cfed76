"""deploy/nginx/metrics-bridge.conf in front of two bridges that both follow two
collectors, all real processes (Debian's nginx): a client follows channels of
both collectors through nginx, moves to the other bridge when its own stops and
resumes every channel gaplessly; a stopped collector is STALE on both bridges;
heartbeats keep an idle client past nginx's proxy_read_timeout."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from websockets.exceptions import ConnectionClosed

from bridge.client import (
    BridgeClient,
    ChannelSynced,
    ChannelUpdated,
    Connected,
    Disconnected,
    GapDetected,
    ReconnectPolicy,
)
from metrics_bridge.v1 import bridge_pb2
from tests.bridge.stack import Client, Pusher
from tests.deploy.nginx import NGINX, Nginx
from tests.support.processes import ServerProcess
from tests.support.timing import scaled
from tests.web.conftest import wait_bridge_ready

pytestmark = pytest.mark.deploy

READ_TIMEOUT = 2  # nginx's proxy_read_timeout here, in seconds
HEARTBEAT = 0.5  # the bridges' --heartbeat: well under READ_TIMEOUT
CHANNELS = ["a/svc", "b/svc"]
LIVE: int = bridge_pb2.UPSTREAM_STATE_LIVE
STALE: int = bridge_pb2.UPSTREAM_STATE_STALE


class PushLoop:
    """Pushes 1, 2, 3... to source "svc" of a collector every 50 ms until stopped."""

    def __init__(self, address: str) -> None:
        self.pusher = Pusher(address, "svc")
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        value = 0
        while not self.stopped.wait(0.05):
            value += 1
            try:
                self.pusher.push(float(value))
            except Exception:
                return  # the collector was stopped

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=scaled(10))
        self.pusher.close()


@dataclass
class Deployment:
    collectors: dict[str, ServerProcess] = field(default_factory=dict)
    bridges: list[ServerProcess] = field(default_factory=list)
    pushers: list[PushLoop] = field(default_factory=list)
    nginx: Nginx | None = None

    def connections(self, bridge: ServerProcess) -> int:
        url = f"http://{bridge.addresses['ws']}/metrics"
        with urllib.request.urlopen(url, timeout=scaled(5)) as response:
            text = response.read().decode()
        found = re.search(r"^metrics_bridge_connections (\S+)$", text, re.MULTILINE)
        assert found, text
        return int(float(found.group(1)))

    def cleanup(self) -> None:
        for pusher in self.pushers:
            pusher.stop()
        if self.nginx is not None:
            self.nginx.stop()
        for process in [*self.bridges, *self.collectors.values()]:
            process.cleanup()


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    if shutil.which(NGINX) is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: make test installs Debian's nginx (make deploy-deps)")
        pytest.skip("nginx is missing: run `make deploy-deps`")
    d = Deployment()
    try:
        for name in ("a", "b"):
            args = ["--listen", "127.0.0.1:0", "--interval", "0.5", "--host-source", f"{name}host"]
            d.collectors[name] = ServerProcess("collector", args).start()
            d.pushers.append(PushLoop(d.collectors[name].addresses["grpc"]))
        follow = [f"--collector={n}={c.addresses['grpc']}" for n, c in d.collectors.items()]
        for _ in range(2):
            args = ["--listen", "127.0.0.1:0", *follow, "--heartbeat", str(HEARTBEAT)]
            # WebSocket pings far apart: heartbeats alone keep idle clients open.
            args += ["--ping-interval", "60", "--ping-timeout", "60"]
            d.bridges.append(ServerProcess("bridge", args).start())
        for bridge in d.bridges:
            wait_bridge_ready(bridge.addresses["ws"])
        d.nginx = Nginx([b.addresses["ws"] for b in d.bridges], READ_TIMEOUT)
        yield d
    finally:
        d.cleanup()


async def catalog_states(url: str) -> dict[str, int]:
    client = await Client.open(url)
    try:
        catalog = await client.greeted()
    finally:
        await client.ws.close()
    return {c.channel: c.state for c in catalog.channels}


async def wait_states(url: str, wanted: Mapping[str, int], within: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + scaled(within)
    while True:
        states = await catalog_states(url)
        if all(states.get(channel) == state for channel, state in wanted.items()):
            return
        assert loop.time() < deadline, f"{url}: {states}, wanted {wanted}"
        await asyncio.sleep(0.1)


async def test_an_idle_client_outlives_the_proxy_read_timeout(deployment: Deployment) -> None:
    assert deployment.nginx is not None
    client = await Client.open(deployment.nginx.url, ping_interval=None)
    await client.greeted()
    loop = asyncio.get_running_loop()
    until = loop.time() + 3 * READ_TIMEOUT
    heartbeats = 0
    try:
        while loop.time() < until:
            message = await client.recv(within=READ_TIMEOUT)
            heartbeats += message.HasField("heartbeat")
    except ConnectionClosed as closed:
        raise AssertionError(f"nginx closed an idle client: {closed}") from closed
    finally:
        await client.ws.close()
    assert heartbeats >= 2 * READ_TIMEOUT / HEARTBEAT


async def test_a_client_moves_to_the_other_bridge_and_resumes_every_channel(
    deployment: Deployment,
) -> None:
    assert deployment.nginx is not None
    seqs: dict[str, list[int]] = {channel: [] for channel in CHANNELS}  # of updates
    resumed: dict[str, ChannelSynced] = {}
    resumed_at: dict[str, int] = {}  # the last update seen before
    marks: dict[str, int] = {}
    gaps: list[GapDetected] = []
    stopped: ServerProcess | None = None
    connections = 0
    client = BridgeClient(deployment.nginx.url, CHANNELS, policy=ReconnectPolicy(base=0.2))
    async with asyncio.timeout(scaled(60)), client:
        async for event in client.events():
            if isinstance(event, Connected):
                connections += 1
            elif isinstance(event, ChannelSynced) and connections == 2:
                resumed[event.channel] = event
                resumed_at[event.channel] = seqs[event.channel][-1]
            elif isinstance(event, ChannelUpdated):
                seqs[event.channel].append(event.position.seq)
            elif isinstance(event, GapDetected):
                gaps.append(event)
            elif isinstance(event, Disconnected):
                assert stopped is not None, f"disconnected before any bridge stopped: {event}"
            if stopped is None and all(len(s) >= 10 for s in seqs.values()):
                (on,) = [b for b in deployment.bridges if deployment.connections(b) == 1]
                stopped = on
                on.signal(signal.SIGTERM)
                marks = {channel: len(s) for channel, s in seqs.items()}
            if len(resumed) == len(CHANNELS) and all(
                len(seqs[c]) >= marks[c] + 10 for c in CHANNELS
            ):
                break
    assert stopped is not None and stopped.wait() == 0
    (other,) = [b for b in deployment.bridges if b is not stopped]
    assert connections == 2
    assert gaps == []
    for channel in CHANNELS:
        assert resumed[channel].recovered, f"{channel} was not resumed: {resumed[channel]}"
        assert resumed[channel].position.seq == resumed_at[channel]
        # Every update exactly once, in order: the missed ones replayed by the other bridge.
        observed = seqs[channel]
        assert observed == list(range(observed[0], observed[0] + len(observed))), observed
    assert other.proc is not None and other.proc.poll() is None


async def test_a_stopped_collector_is_stale_on_both_bridges_and_the_other_stays_live(
    deployment: Deployment,
) -> None:
    everything_live = {"a/svc": LIVE, "b/svc": LIVE, "a/ahost": LIVE, "b/bhost": LIVE}
    for bridge in deployment.bridges:
        await wait_states(bridge.addresses["url"], everything_live)
    deployment.collectors["b"].stop()
    b_stale = {"a/svc": LIVE, "a/ahost": LIVE, "b/svc": STALE, "b/bhost": STALE}
    for bridge in deployment.bridges:
        await wait_states(bridge.addresses["url"], b_stale)
