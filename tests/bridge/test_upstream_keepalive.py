"""The bridge finds a collector that hangs with its connection open (gRPC keepalive).

SIGSTOP freezes a real collector process: its TCP connection stays open and
the kernel still takes bytes, but nothing answers, as with a frozen VM.
"""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import pytest

from bridge.config import Keepalive, parse_config
from bridge.upstream import channel_options, failure_reason
from metrics_bridge.v1 import bridge_pb2
from tests.bridge.stack import Client, Pusher, bridge, collector, ready_client
from tests.support.processes import running
from tests.support.timing import scaled

STALE = bridge_pb2.UPSTREAM_STATE_STALE
LIVE = bridge_pb2.UPSTREAM_STATE_LIVE
CHANNEL = "c1/host"


def test_keepalive_options_reach_every_collector_target() -> None:
    config = parse_config(
        ["--collector", "a=h:1", "--collector", "h:2", "--upstream-keepalive", "3"],
        env={"METRICS_BRIDGE_UPSTREAM_KEEPALIVE_TIMEOUT": "0.5"},
    )
    assert (config.upstream_keepalive, config.upstream_keepalive_timeout) == (3.0, 0.5)
    assert [c.keepalive for c in config.collectors] == [Keepalive(3.0, 0.5)] * 2


def test_keepalive_defaults_to_a_ping_after_10_s_and_5_s_for_the_ack() -> None:
    assert parse_config([], env={}).collectors[0].keepalive == Keepalive(10.0, 5.0)


def test_keepalive_under_one_second_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--upstream-keepalive", "0.2"], env={})
    assert "--upstream-keepalive: must be at least 1.0" in capsys.readouterr().err


def test_channel_pings_after_the_interval_and_waits_the_timeout_for_any_ack() -> None:
    options = dict(channel_options(Keepalive(2.5, 0.75)))
    assert options["grpc.keepalive_time_ms"] == 2500
    assert options["grpc.keepalive_timeout_ms"] == 750
    assert options["grpc.http2.ping_timeout_ms"] == 750
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.max_pings_without_data"] == 0


def test_unanswered_ping_is_reported_as_a_keepalive_timeout() -> None:
    reason = failure_reason(
        grpc.StatusCode.UNAVAILABLE, "Stream removed (ping timeout)", Keepalive(10, 5)
    )
    assert reason == "did not answer keepalive pings within 5 s"


def test_refused_pings_name_the_server_setting_to_change() -> None:
    reason = failure_reason(grpc.StatusCode.UNAVAILABLE, "Too many pings", Keepalive(1, 5))
    assert "too_many_pings" in reason and "every 1 s" in reason


def test_other_failures_keep_grpc_status_and_details() -> None:
    reason = failure_reason(
        grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", Keepalive()
    )
    assert reason == "unreachable: UNAVAILABLE: failed to connect to all addresses"


async def data_until_status(
    client: Client, seq: int, epoch: int, within: float
) -> tuple[bridge_pb2.Status, int]:
    """Read until a Status frame; every update in between must follow `seq` in `epoch`."""
    try:
        async with asyncio.timeout(scaled(within)):
            while True:
                message = await client.recv(within=within)
                body = message.WhichOneof("body")
                assert body != "snapshot", "the channel was resynced: updates were lost"
                if body == "update":
                    assert (message.update.epoch, message.update.seq) == (epoch, seq + 1)
                    seq = message.update.seq
                elif body == "status":
                    return message.status, seq
    except TimeoutError:
        raise AssertionError(f"no Status within {scaled(within):.1f} s") from None


async def test_stopped_collector_goes_stale_within_the_keepalive_then_resumes_without_a_gap() -> (
    None
):
    interval, timeout = 1.0, 1.0
    keepalive = ["--upstream-keepalive", f"{interval:g}", "--upstream-keepalive-timeout", "1"]
    with collector() as col, bridge(col.addresses["grpc"], *keepalive) as br:
        client = await ready_client(br.addresses["url"], CHANNEL)
        await client.subscribe(CHANNEL)
        snapshot = (await client.next("snapshot")).snapshot
        epoch, seq = snapshot.epoch, snapshot.seq
        for _ in range(3):
            update = (await client.next("update")).update
            assert (update.epoch, update.seq) == (epoch, seq + 1)
            seq = update.seq
        col.signal(signal.SIGSTOP)
        try:
            stopped_at = time.monotonic()
            stale, seq = await data_until_status(client, seq, epoch, (interval + timeout) * 5)
            noticed_after = time.monotonic() - stopped_at
            assert stale.state == STALE
            expected = f"collector c1 at {col.addresses['grpc']} did not answer keepalive pings"
            assert stale.detail == f"{expected} within 1 s"
            assert expected in br.log()
        finally:
            col.signal(signal.SIGCONT)
        status = stale
        while status.state != LIVE:
            status, seq = await data_until_status(client, seq, epoch, 30)
        for _ in range(3):
            message = await client.next("update", "snapshot")
            update = message.update
            # A bridge catching up may merge what it missed (first_seq): not a gap.
            first = message.first_seq or update.seq
            assert (update.epoch, first) == (epoch, seq + 1), "a gap across the freeze"
            seq = update.seq
        await client.close()
    print(f"STALE {noticed_after:.2f} s after SIGSTOP (keepalive {interval:g} s + {timeout:g} s)")


async def test_stopped_quiet_collector_is_found_by_keepalive_pings_alone() -> None:
    """No data flows before the freeze (no host samples, a pushed source at
    rest), so only a keepalive ping can find it; pushes after it carry on."""
    interval, timeout = 1.0, 1.0
    keepalive = ["--upstream-keepalive", f"{interval:g}", "--upstream-keepalive-timeout", "1"]
    with collector("--interval", "3600") as col, bridge(col.addresses["grpc"], *keepalive) as br:
        pusher = Pusher(col.addresses["grpc"])
        try:
            pusher.push(1.0)
            client = await ready_client(br.addresses["url"], "c1/svc")
            await client.subscribe("c1/svc")
            snapshot = (await client.next("snapshot")).snapshot
            col.signal(signal.SIGSTOP)
            try:
                stopped_at = time.monotonic()
                stale, seq = await data_until_status(
                    client, snapshot.seq, snapshot.epoch, (interval + timeout) * 5
                )
                noticed_after = time.monotonic() - stopped_at
                assert stale.state == STALE
                assert "did not answer keepalive pings within 1 s" in stale.detail
            finally:
                col.signal(signal.SIGCONT)
            status = stale
            while status.state != LIVE:
                status, seq = await data_until_status(client, seq, snapshot.epoch, 30)
            pushed = pusher.push(2.0)
            update = (await client.next("update", "snapshot")).update
            assert (
                (update.epoch, update.seq)
                == (snapshot.epoch, snapshot.seq + 1)
                == (
                    pushed.epoch,
                    pushed.seq,
                )
            )
            await client.close()
        finally:
            pusher.close()
    print(f"STALE {noticed_after:.2f} s after SIGSTOP (keepalive {interval:g} s + {timeout:g} s)")


async def test_quiet_collector_pinged_every_second_is_never_disconnected() -> None:
    """No data flows (one host sample an hour), so every ping counts against the
    collector's ping policy; gRPC's default policy would answer the third early
    one with GOAWAY too_many_pings. The bridge's gRPC ping trace counts the acks."""
    args = ["--listen", "127.0.0.1:0", "--interval", "3600", "--host-source", "host"]
    ping_every_second = ["--upstream-keepalive", "1"]
    window = 6.0
    with (
        running("collector", args) as col,
        running(
            "bridge",
            [
                "--listen",
                "127.0.0.1:0",
                "--collector",
                f"c1={col.addresses['grpc']}",
                *ping_every_second,
            ],
            env={"GRPC_TRACE": "http2_ping", "GRPC_VERBOSITY": "debug"},
        ) as br,
    ):
        client = await ready_client(br.addresses["url"], CHANNEL)
        await client.subscribe(CHANNEL)
        await client.next("snapshot")
        acks_before = br.log().count("received ping ack")
        loop = asyncio.get_running_loop()
        until = loop.time() + window
        while (left := until - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(client.ws.recv(), left)
            except TimeoutError:
                break
            assert isinstance(message, bytes)
            received = bridge_pb2.ServerMessage.FromString(message)
            assert not received.HasField("status"), received
        acks = br.log().count("received ping ack") - acks_before
        assert acks >= 3, f"the collector acked {acks} pings in {window:g} s"
        assert "too_many_pings" not in br.log()
        assert br.log().count("following collector c1") == 1
        assert "retrying" not in br.log()
        await client.close()
