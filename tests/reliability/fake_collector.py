"""A scripted collector in the test process: a real gRPC server whose Subscribe
stream sends whatever bytes the test queues, good or bad.

`truth` is what GetSnapshot answers per source (the collector's real state);
`send(data)` puts raw bytes on the Subscribe stream as one message.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from metrics_bridge.v1 import collector_pb2, metrics_pb2

__all__ = ["FakeCollector"]

SERVICE = "metrics_bridge.v1.MetricsCollector"


class FakeCollector:
    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.truth: dict[str, metrics_pb2.Snapshot] = {}
        self.snapshot_requests: list[str] = []
        self.subscribes = 0
        self._streams: list[queue.Queue[bytes | None]] = []
        self.server = grpc.server(ThreadPoolExecutor(max_workers=8))
        handlers = {
            "ListSources": grpc.unary_unary_rpc_method_handler(
                self._list,
                request_deserializer=collector_pb2.ListSourcesRequest.FromString,
                response_serializer=collector_pb2.ListSourcesResponse.SerializeToString,
            ),
            "GetSnapshot": grpc.unary_unary_rpc_method_handler(
                self._get_snapshot,
                request_deserializer=collector_pb2.GetSnapshotRequest.FromString,
                response_serializer=metrics_pb2.Snapshot.SerializeToString,
            ),
            "Subscribe": grpc.unary_stream_rpc_method_handler(
                self._subscribe,
                request_deserializer=collector_pb2.SubscribeRequest.FromString,
                response_serializer=None,
            ),
        }
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, handlers)]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeCollector:
        self.server.start()
        return self

    def stop(self) -> None:
        for stream in self._streams:
            stream.put(None)
        self.server.stop(grace=0)

    def send(self, data: bytes) -> None:
        for stream in self._streams:
            stream.put(data)

    def _list(
        self, request: collector_pb2.ListSourcesRequest, context: grpc.ServicerContext
    ) -> collector_pb2.ListSourcesResponse:
        response = collector_pb2.ListSourcesResponse(collector=self.name)
        for name, snapshot in sorted(self.truth.items()):
            info = response.sources.add(name=name, kind=snapshot.kind)
            info.position.epoch, info.position.seq = snapshot.epoch, snapshot.seq
        return response

    def _get_snapshot(
        self, request: collector_pb2.GetSnapshotRequest, context: grpc.ServicerContext
    ) -> metrics_pb2.Snapshot:
        self.snapshot_requests.append(request.source)
        snapshot = self.truth.get(request.source)
        if snapshot is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no source {request.source}")
            raise AssertionError("abort raises")
        return snapshot

    def _subscribe(
        self, request: collector_pb2.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        self.subscribes += 1
        stream: queue.Queue[bytes | None] = queue.Queue()
        for snapshot in self.truth.values():
            stream.put(collector_pb2.CollectorEvent(snapshot=snapshot).SerializeToString())
        self._streams.append(stream)
        while context.is_active():
            try:
                data = stream.get(timeout=0.2)
            except queue.Empty:
                continue
            if data is None:
                return
            yield data
