"""The Python client and `tail` with a token over wss:// (a trustme CA), against a real
bridge run with `--auth jwt --tls-cert ...`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.client import BridgeClient, ChannelUpdated, ConnectionRejected
from tests.bridge.stack import bridge, collector
from tests.support.processes import REPO, ServerProcess
from tests.support.secure_bridge import SecureBridgeFiles
from tests.support.timing import async_wait_until, scaled
from tests.support.tokens import token

CHANNEL = "c1/host"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SecureBridgeFiles, ServerProcess]]:
    files = SecureBridgeFiles(tmp_path_factory.mktemp("client-tls"))
    with collector() as col, bridge(col.addresses["grpc"], *files.args) as br:
        yield files, br


async def test_the_client_refreshes_its_token_in_band_and_keeps_its_connection(
    stack: tuple[SecureBridgeFiles, ServerProcess], tmp_path: Path
) -> None:
    files, process = stack
    token_file = tmp_path / "token"
    token_file.write_text(token(ttl=2))  # refreshed at 80% of its life, 1.6 s

    def read_token() -> str:
        return token_file.read_text()

    client = BridgeClient(
        process.addresses["url"], [CHANNEL], token=read_token, ssl=files.client_ssl()
    )
    async with client:
        await async_wait_until(lambda: CHANNEL in client.views, 20, "the first snapshot")
        token_file.write_text(token(ttl=600))
        # Past the first token's exp plus the bridge's 5 s leeway: without the
        # refresh the bridge would have closed the connection with 4001.
        await asyncio.sleep(scaled(8))
        updates: list[ChannelUpdated] = []

        async def one_update() -> None:
            async for event in client.events():
                if isinstance(event, ChannelUpdated):
                    updates.append(event)
                    return

        await asyncio.wait_for(one_update(), scaled(10))
    assert client.stats.connections == 1 and client.stats.disconnects <= 1


async def test_a_bad_token_stops_the_client_with_4501(
    stack: tuple[SecureBridgeFiles, ServerProcess],
) -> None:
    files, process = stack
    bad = token(b"not-the-bridges-secret-but-32-bytes-long")
    client = BridgeClient(process.addresses["url"], [CHANNEL], token=bad, ssl=files.client_ssl())
    with pytest.raises(ConnectionRejected) as rejected:
        await asyncio.wait_for(client.run(), scaled(20))
    assert rejected.value.code == 4501


async def test_an_expired_fixed_token_stops_the_client_with_4001_instead_of_retrying_it(
    stack: tuple[SecureBridgeFiles, ServerProcess],
) -> None:
    files, process = stack
    expired = token(ttl=-60)
    client = BridgeClient(
        process.addresses["url"], [CHANNEL], token=expired, ssl=files.client_ssl()
    )
    with pytest.raises(ConnectionRejected) as rejected:
        await asyncio.wait_for(client.run(), scaled(20))
    assert rejected.value.code == 4001
    assert "cannot be renewed" in rejected.value.reason
    assert client.stats.connections == 1


def tail(url: str, ca_file: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "tail", url, "--count", "2", "--ca-file", str(ca_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )


def test_tail_reads_its_token_from_the_environment_and_trusts_a_ca_file(
    stack: tuple[SecureBridgeFiles, ServerProcess],
) -> None:
    files, process = stack
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_BRIDGE_")}
    result = tail(process.addresses["url"], files.ca_file, {**env, "METRICS_BRIDGE_TOKEN": token()})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f"{CHANNEL} ")
    refused = tail(process.addresses["url"], files.ca_file, env)
    assert refused.returncode == 1
    assert "4500" in refused.stderr and "Connect" in refused.stderr
