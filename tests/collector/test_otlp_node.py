"""The same replicas scenario with the OpenTelemetry Node SDK
(@opentelemetry/sdk-metrics + exporter-metrics-otlp-grpc from tests/otel_node,
installed by `make otel-node-deps`), plus an exponential histogram and an
up-down counter."""

from __future__ import annotations

import asyncio
import subprocess

import grpc
import pytest

from collector.series import HistogramData
from tests.collector.conftest import recording
from tests.collector.replicas_check import counters_never_go_back, instances
from tests.support.processes import REPO, running

pytestmark = pytest.mark.node

PACKAGE = REPO / "tests" / "otel_node"
TTL = 2.0
ARGS = ["--listen", "127.0.0.1:0", "--interval", "0.2", "--host-source", "testhost"]
ARGS += ["--source-ttl", str(TTL)]
PODS = ("pod-a", "pod-b", "pod-c")


async def test_node_sdk_replicas_keep_their_own_series_and_a_stopped_one_expires() -> None:
    assert (PACKAGE / "node_modules" / "@opentelemetry" / "sdk-metrics").is_dir(), (
        "run `make otel-node-deps` (make test does)"
    )
    with running("collector", ARGS) as server:
        address = server.addresses["grpc"]
        node = await asyncio.to_thread(
            subprocess.Popen,
            ["node", "replicas.mjs", f"http://{address}", "checkout", *PODS],
            cwd=PACKAGE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert node.stdin is not None and node.stdout is not None
            assert (await asyncio.to_thread(node.stdout.readline)).strip() == "ready"
            async with (
                grpc.aio.insecure_channel(address) as ch,
                recording(ch, ["checkout"]) as rec,
            ):

                def reported() -> bool:
                    source = rec.replicas.get("checkout")
                    if source is None:
                        return False
                    sizes = instances(source, "request_size")
                    return (
                        instances(source, "inflight") == {"pod-a": 111, "pod-b": 222, "pod-c": 333}
                        and instances(source, "queue_length")
                        == {"pod-a": 1, "pod-b": 2, "pod-c": 3}
                        and set(instances(source, "requests")) == set(PODS)
                        and set(sizes) == set(PODS)
                        and all(
                            isinstance(h, HistogramData) and h.count > 0 for h in sizes.values()
                        )
                    )

                await rec.wait_for(reported, 20, "every replica's series")
                source = rec.replicas["checkout"]
                size = instances(source, "request_size")["pod-a"]
                assert isinstance(size, HistogramData)
                assert size.count % 50 == 0 and size.sum == size.count / 50 * 1275
                assert (size.min, size.max) == (1, 50) and len(size.bounds) <= 128
                units = {d.name: d.unit for d in source.descriptors.values()}
                assert units["request_size"] == "By" and units["requests"] == "1"
                kinds = {d.name: d.kind for d in source.descriptors.values()}
                assert kinds == {"inflight": 1, "queue_length": 1, "requests": 2, "request_size": 3}

                node.stdin.write("stop pod-c\n")
                node.stdin.flush()
                await rec.wait_for(
                    lambda: (
                        set(instances(rec.replicas["checkout"], "requests")) == {"pod-a", "pod-b"}
                    ),
                    TTL + 15,
                    "pod-c's series to expire",
                )
                source = rec.replicas["checkout"]
                assert instances(source, "inflight") == {"pod-a": 111, "pod-b": 222}
                assert set(instances(source, "request_size")) == {"pod-a", "pod-b"}
                assert rec.of("checkout", "source_removed") == []
                assert counters_never_go_back(rec.events, "checkout") > 10
        finally:
            if node.stdin is not None:
                node.stdin.close()
            try:
                await asyncio.to_thread(node.wait, 15)
            except subprocess.TimeoutExpired:
                node.kill()
                await asyncio.to_thread(node.wait)
