"""The picows baseline: the fastest Python WebSocket library on PyPI, fed by the same collector.

picows (Cython; https://github.com/tarasko/picows) frames and writes each
message in C. This server follows the collector's Subscribe stream like the
other baselines (bench.baselines), reads the bridge's `ClientMessage`
subscribe, sends the channel's latest snapshot, then each event as
`ServerMessage(channel)` + the collector's bytes: the same payload bytes the
bridge and the raw baseline send, built once per event, handed to
`WSTransport.send` for each subscriber. picows has no permessage-deflate, so
like raw it never compresses.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable

import grpc
from picows import (
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from bench.baselines import SUBSCRIBE, add_server_arguments
from metrics_bridge.v1 import bridge_pb2, collector_pb2
from metrics_shared.ready_file import write_ready_file

__all__ = ["PicowsFanout"]

log = logging.getLogger("bench.picows_baseline")
PROTOCOL = "metrics-bridge.v1"


class PicowsFanout:
    """Subscribers by channel and each channel's latest snapshot payload."""

    def __init__(self, collector_name: str) -> None:
        self.name = collector_name
        self.subscribers: dict[str, set[WSTransport]] = {}
        self.snapshots: dict[str, bytes] = {}
        self.seen: set[str] = set()

    def subscribe(self, transport: WSTransport, payload: bytes) -> list[str]:
        request = bridge_pb2.ClientMessage.FromString(payload)
        channels = [c.channel for c in request.subscribe.channels]
        for channel in channels:
            self.subscribers.setdefault(channel, set()).add(transport)
            if channel in self.snapshots:
                transport.send(WSMsgType.BINARY, self.snapshots[channel])
        return channels

    def publish(self, raw: bytes, on_source: Callable[[str], None]) -> None:
        event = collector_pb2.CollectorEvent.FromString(raw)
        which = event.WhichOneof("event")
        if which == "snapshot":
            source = event.snapshot.source
        elif which == "update":
            source = event.update.source
        else:
            return
        channel = f"{self.name}/{source}"
        payload = bridge_pb2.ServerMessage(channel=channel).SerializeToString() + raw
        if which == "snapshot":
            self.snapshots[channel] = payload
        for transport in self.subscribers.get(channel, ()):
            transport.send(WSMsgType.BINARY, payload)
        if source not in self.seen:
            self.seen.add(source)
            on_source(source)

    async def follow(self, address: str, on_source: Callable[[str], None]) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_stream(
                SUBSCRIBE,
                request_serializer=collector_pb2.SubscribeRequest.SerializeToString,
                response_deserializer=None,
            )(collector_pb2.SubscribeRequest(value_deltas=True))  # the bridge's bytes
            async for raw in call:
                self.publish(raw, on_source)


class Client(WSListener):
    def __init__(self, fanout: PicowsFanout) -> None:
        self.fanout = fanout
        self.channels: list[str] = []

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.BINARY and not self.channels:
            self.channels = self.fanout.subscribe(transport, frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for channel in self.channels:
            self.fanout.subscribers.get(channel, set()).discard(transport)


async def main_async(args: argparse.Namespace) -> int:
    fanout = PicowsFanout(args.name)
    host, port = args.listen.rsplit(":", 1)
    waiting = set(args.wait_source)
    serving: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_source(source: str) -> None:
        waiting.discard(source)
        if not waiting and not serving.done():
            serving.set_result(None)

    def listener(request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
        response = WSUpgradeResponse.create_101_response(
            extra_headers={"Sec-WebSocket-Protocol": PROTOCOL}
        )
        return WSUpgradeResponseWithListener(response, Client(fanout))

    if not waiting:
        serving.set_result(None)
    follower = asyncio.create_task(fanout.follow(args.collector, on_source))
    server = await ws_create_server(listener, host, int(port))
    async with server:
        await asyncio.wait([serving, follower], return_when=asyncio.FIRST_COMPLETED)
        if follower.done():
            follower.result()
            return 1
        bound = server.sockets[0].getsockname()
        address = f"{bound[0]}:{bound[1]}"
        if args.ready_file:
            ready = {"ws": address, "url": f"ws://{address}/"}
            await asyncio.to_thread(write_ready_file, args.ready_file, ready)
        log.info("picows baseline serving ws://%s/", address)
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
        await asyncio.wait([stop, follower], return_when=asyncio.FIRST_COMPLETED)
    follower.cancel()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.picows_baseline", description=__doc__)
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
