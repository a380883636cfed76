"""A bridge under a low open-file limit (soft = hard = 256) and 400 clients at once.

It says at start that --max-connections does not fit and caps the connections;
every client is either served (Hello) or refused cleanly (1013, or 503
before the upgrade once refusals in flight eat half the headroom), never
dropped (1006); the log has one line per burst and no
traceback; afterwards the bridge is healthy and serves new clients.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from metrics_bridge.v1 import bridge_pb2
from metrics_shared.fd_limit import connection_cap, headroom, raise_open_file_limit
from tests.support.processes import ServerProcess, running
from tests.support.timing import scaled

LIMIT = 256
CLIENTS = 400
PROTOCOL = Subprotocol("metrics-bridge.v1")
UNDER_LIMIT = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({LIMIT}, {LIMIT})); "
    "sys.argv[0] = 'bridge'; runpy.run_module('bridge', run_name='__main__')"
)
CAP = connection_cap(1000, LIMIT, headroom(1)).allowed


@pytest.fixture(scope="module")
def bridge() -> Iterator[ServerProcess]:
    raise_open_file_limit()  # this test process opens 400 sockets
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2 * CLIENTS:
        pytest.skip("this test process cannot open 800 descriptors")
    with running("collector", ["--listen", "127.0.0.1:0"]) as collector:
        args = [
            "--listen",
            "127.0.0.1:0",
            "--collector",
            f"c1={collector.addresses['grpc']}",
            "--max-connections",
            "1000",
        ]
        server = ServerProcess("bridge", args, command=[sys.executable, "-c", UNDER_LIMIT])
        try:
            yield server.start()
        finally:
            server.cleanup()


async def attempt(url: str, hold: asyncio.Event) -> str:
    try:
        async with connect(url, subprotocols=[PROTOCOL], open_timeout=scaled(30)) as ws:
            first = bridge_pb2.ServerMessage.FromString(await ws.recv())  # type: ignore[arg-type]
            assert first.WhichOneof("body") == "hello"
            await hold.wait()
            return "served"
    except InvalidStatus as error:
        return f"http {error.response.status_code}"
    except ConnectionClosed as error:
        return f"close {error.rcvd.code if error.rcvd else 1006}"
    except OSError as error:
        return f"os {error.errno}"


async def burst(url: str) -> Counter[str]:
    hold = asyncio.Event()
    tasks = [asyncio.create_task(attempt(url, hold)) for _ in range(CLIENTS)]
    done: set[asyncio.Task[str]] = set()
    async with asyncio.timeout(scaled(60)):
        while True:
            done = {t for t in tasks if t.done()}
            served_now = CLIENTS - len(done)
            if served_now <= CAP and len(done) >= CLIENTS - CAP:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        # While the served ones stay open, one more is refused with 1013.
        late = await attempt(url, hold) if served_now == CAP else "close 1013"
        hold.set()
        outcomes = await asyncio.gather(*tasks)
    return Counter([*outcomes, f"late {late}"])


def test_a_bridge_under_a_low_limit_serves_what_fits_and_refuses_the_rest_cleanly(
    bridge: ServerProcess,
) -> None:
    startup = bridge.log()
    assert f"exceeds the open-file limit {LIMIT}" in startup
    assert f"serving at most {CAP} connections" in startup

    outcomes = asyncio.run(burst(bridge.addresses["url"]))
    print(dict(outcomes))
    assert outcomes["served"] >= CAP // 2
    assert outcomes["served"] <= CAP
    assert outcomes.pop("late close 1013") == 1
    assert set(outcomes) <= {"served", "http 503", "close 1013"}, outcomes
    assert sum(outcomes.values()) == CLIENTS

    log = bridge.log()
    assert "Traceback" not in log
    assert "Too many open files" not in log
    assert log.count("at capacity") + log.count("out of file descriptors") <= 3

    base = f"http://{bridge.addresses['ws']}"
    with urllib.request.urlopen(f"{base}/healthz", timeout=scaled(10)) as reply:
        assert reply.status == 200
    again = asyncio.run(burst_of_one(bridge.addresses["url"]))
    assert again == "served"


async def burst_of_one(url: str) -> str:
    hold = asyncio.Event()
    hold.set()
    return await attempt(url, hold)
