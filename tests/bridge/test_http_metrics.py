"""/metrics and /readyz: the exposition parses, its counters move, readiness follows collectors."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from websockets.datastructures import Headers
from websockets.http11 import Request

from bridge.client import BridgeClient, ChannelSynced, ChannelUpdated
from bridge.config import BridgeConfig
from bridge.http import HttpRoutes
from bridge.hub import Hub
from bridge.prometheus import metrics_endpoint
from tests.bridge.stack import RawClient
from tests.support.processes import ServerProcess, running
from tests.support.stack import COLLECTOR, bridge_args, gauge, push
from tests.support.timing import scaled, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def get(address: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=scaled(10)) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(address: str) -> Samples:
    status, body = get(address, "/metrics")
    assert status == 200, body
    return parse(body)


def counter(samples: Samples, name: str) -> float:
    return samples[(f"metrics_bridge_{name}_total", ())]


def test_metrics_route_serves_the_exposition_in_prometheus_text_format(tmp_path: Path) -> None:
    config = BridgeConfig()
    hub = Hub(
        limits=config.limits(),
        timers=config.timers(),
        policy=config.client_policy(),
        max_connections=10,
        server_version="test",
    )
    routes = HttpRoutes(tmp_path, lambda: True, metrics=metrics_endpoint(hub))
    response = routes.handle(Request("/metrics", Headers()))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert counter(parse(response.body.decode()), "connections_accepted") == 0


def test_without_a_metrics_source_there_is_no_metrics_route(tmp_path: Path) -> None:
    routes = HttpRoutes(tmp_path, lambda: True)
    assert routes.handle(Request("/metrics", Headers())).status_code == 404


async def test_metrics_counters_move_as_clients_connect_receive_and_get_resynced() -> None:
    slow_flags = ["--send-buffer-bytes", "4096", "--client-buffer-bytes", "16384"]
    with running("collector", ["--listen", "127.0.0.1:0", "--interval", "0.2"]) as col:
        address = col.addresses["grpc"]
        await asyncio.to_thread(push, address, "svc", [[gauge("depth", 1.0)]])
        with running("bridge", bridge_args(address, ["--heartbeat", "0.5", *slow_flags])) as br:
            http = br.addresses["ws"]
            before = scrape(http)
            assert before[("metrics_bridge_connections", ())] == 0
            channel = f"{COLLECTOR}/svc"
            async with BridgeClient(br.addresses["url"], [channel]) as client:
                events = client.events()
                async with asyncio.timeout(scaled(20)):
                    async for event in events:
                        if isinstance(event, ChannelSynced):
                            break
                await asyncio.to_thread(push, address, "svc", [[gauge("depth", 2.0)]])
                async with asyncio.timeout(scaled(20)):
                    async for event in events:
                        if isinstance(event, ChannelUpdated):
                            break
                during = scrape(http)
                assert during[("metrics_bridge_connections", ())] == 1
                subscribers = ("metrics_bridge_channel_subscribers", (("channel", channel),))
                assert during[subscribers] == 1
                for name in ("connections_accepted", "frames_sent", "bytes_sent", "subscriptions"):
                    assert counter(during, name) > counter(before, name), name

            slow = RawClient(br.addresses["url"])
            slow.subscribe(channel)
            big = [[gauge("load", float(k), i=str(i)) for i in range(300)] for k in range(100)]
            await asyncio.to_thread(push, address, "svc", big)
            await asyncio.to_thread(slow.read_for, scaled(2))
            await asyncio.to_thread(push, address, "svc", [[gauge("depth", 3.0)]])
            await asyncio.to_thread(slow.read_for, scaled(2))
            after = scrape(http)
            assert counter(after, "updates_skipped") > counter(during, "updates_skipped")
            assert counter(after, "resyncs") > counter(during, "resyncs")
            slow.sock.close()


def test_readyz_turns_unready_when_every_collector_is_down_and_ready_again_after() -> None:
    with running("collector", ["--listen", "127.0.0.1:0", "--interval", "0.2"]) as col:
        address = col.addresses["grpc"]
        with running("bridge", bridge_args(address)) as br:
            http = br.addresses["ws"]
            wait_until(lambda: get(http, "/readyz")[0] == 200, 20, "ready")
            col.stop()
            wait_until(lambda: get(http, "/readyz")[0] == 503, 20, "unready")
            assert get(http, "/healthz")[0] == 200, "alive while unready"
            port = address.rsplit(":", 1)[1]
            restarted = ServerProcess(
                "collector", ["--listen", f"127.0.0.1:{port}", "--interval", "0.2"]
            ).start()
            try:
                wait_until(lambda: get(http, "/readyz")[0] == 200, 60, "ready again")
            finally:
                restarted.cleanup()
