"""OTLP/HTTP metrics (`POST /v1/metrics`, protobuf or JSON) next to OTLP/gRPC.

`OtlpHttpEndpoint.handle` holds every rule and does no I/O; `OtlpHttpServer`
is the asyncio + h11 glue that feeds it requests.

Rules:
- Only `/v1/metrics` exists (404 elsewhere); it takes POST (405 otherwise,
  with `Allow`), and OPTIONS for a CORS preflight.
- Content-Type `application/x-protobuf` or `application/json` (OTLP's JSON:
  lowerCamelCase or snake_case field names, enums as numbers); anything else
  is 415. The response has the request's content type.
- Content-Encoding `gzip` or none (415 otherwise). At most 4 MiB of body,
  decompressed too (413), the same bound as a gRPC Export.
- The request is translated and applied exactly like OTLP/gRPC
  (collector.otlp_receiver): 200 with ExportMetricsServiceResponse, whose
  partial_success says what was refused. A body that does not decode is 400.
  Error bodies are text/plain and say why.
- Exemplars are dropped before the JSON is decoded (their trace ids are hex in
  OTLP JSON, not protobuf JSON's base64) and ignored in protobuf.
- Push tokens (`--push-tokens`) hold as on gRPC: `Authorization: Bearer ...`
  is required (401 with `WWW-Authenticate: Bearer` when missing or unknown),
  and every source of the request must be allowed (403, nothing applied).
- CORS is closed by default: a request with an `Origin` header is refused
  (403) unless the origin is listed in `--otlp-http-cors-origins` ("*" = any);
  a listed origin gets `Access-Control-Allow-Origin` on every answer and a
  preflight answer allowing POST with Content-Type, Content-Encoding and
  Authorization. Exporters outside browsers send no Origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import h11
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otlp_service

from collector.errors import CollectorError, PermissionDenied, Unauthenticated
from collector.otlp_receiver import OtlpReceiver
from collector.push_auth import PushAccess
from metrics_shared.address import Address

__all__ = [
    "MAX_BODY_BYTES",
    "PATH",
    "HttpReply",
    "HttpRequest",
    "OtlpHttpEndpoint",
    "OtlpHttpServer",
    "server_ssl_context",
]

log = logging.getLogger(__name__)

PATH = "/v1/metrics"
MAX_BODY_BYTES = 4 * 1024 * 1024
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
IDLE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    target: str
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, message: str, **headers: str) -> HttpReply:
        extra = [(k.replace("_", "-"), v) for k, v in headers.items()]
        plain = ("content-type", "text/plain; charset=utf-8")
        return cls(status, message.encode() + b"\n", [plain, *extra])


class OtlpHttpEndpoint:
    def __init__(
        self,
        receiver: OtlpReceiver,
        *,
        access: PushAccess | None = None,
        cors_origins: Sequence[str] = (),
    ) -> None:
        self.receiver = receiver
        self.access = access or PushAccess.open()
        self.cors_origins = frozenset(cors_origins)

    def handle(self, request: HttpRequest) -> HttpReply:
        reply = self._handle(request)
        origin = request.headers.get("origin")
        if origin is not None and self._allowed(origin):
            reply.headers.extend([("access-control-allow-origin", origin), ("vary", "Origin")])
        return reply

    def _allowed(self, origin: str) -> bool:
        return "*" in self.cors_origins or origin in self.cors_origins

    def _handle(self, request: HttpRequest) -> HttpReply:
        path = request.target.split("?", 1)[0]
        if path != PATH:
            return HttpReply.text(404, f"no such path: only POST {PATH} is served here")
        origin = request.headers.get("origin")
        if origin is not None and not self._allowed(origin):
            return HttpReply.text(
                403,
                f"cross-origin requests from {origin} are not allowed "
                "(the collector's --otlp-http-cors-origins lists the allowed ones)",
            )
        if request.method == "OPTIONS":
            return HttpReply(
                204,
                headers=[
                    ("access-control-allow-methods", "POST"),
                    (
                        "access-control-allow-headers",
                        "Content-Type, Content-Encoding, Authorization",
                    ),
                    ("access-control-max-age", "600"),
                ],
            )
        if request.method != "POST":
            return HttpReply.text(405, f"{PATH} takes POST", allow="POST, OPTIONS")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in (PROTOBUF, JSON):
            return HttpReply.text(
                415, f"Content-Type must be {PROTOBUF} or {JSON}, got {content_type!r}"
            )
        try:
            body = _decoded(request.body, request.headers.get("content-encoding", ""))
            export = _parse(body, content_type)
        except _Refused as exc:
            return HttpReply.text(exc.status, str(exc))
        try:
            grant = self.access.admit(request.headers.get("authorization"))
            translation = self.receiver.translate(export)
            for source in translation.sources:
                self.access.check(grant, source)
        except Unauthenticated as exc:
            return HttpReply.text(401, str(exc), www_authenticate="Bearer")
        except PermissionDenied as exc:
            return HttpReply.text(403, str(exc))
        except CollectorError as exc:
            return HttpReply.text(400, str(exc))
        response = self.receiver.apply(translation)
        if content_type == JSON:
            data = json_format.MessageToJson(response, indent=None).encode()
        else:
            data = response.SerializeToString()
        return HttpReply(200, data, [("content-type", content_type)])


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _decoded(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise _Refused(415, f"Content-Encoding must be gzip or none, got {encoding!r}")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise _Refused(400, f"the gzip body does not decompress: {exc}") from None
    if len(data) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise _Refused(413, f"the body is over {MAX_BODY_BYTES} bytes decompressed")
    return data


def _parse(body: bytes, content_type: str) -> otlp_service.ExportMetricsServiceRequest:
    request = otlp_service.ExportMetricsServiceRequest()
    if content_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise _Refused(400, f"not an ExportMetricsServiceRequest: {exc}") from None
        return request
    try:
        document = _without_exemplars(json.loads(body))
        if not isinstance(document, dict):
            raise ValueError("the body is not a JSON object")
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (ValueError, json_format.ParseError) as exc:
        raise _Refused(400, f"not an OTLP JSON ExportMetricsServiceRequest: {exc}") from None
    return request


def _without_exemplars(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_exemplars(v) for k, v in value.items() if k != "exemplars"}
    if isinstance(value, list):
        return [_without_exemplars(v) for v in value]
    return value


def server_ssl_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS for the HTTP listener from the same files as the gRPC listeners."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class OtlpHttpServer:
    """asyncio glue: HTTP/1.1 (keep-alive) connections parsed by h11."""

    def __init__(self, endpoint: OtlpHttpEndpoint, ssl_context: ssl.SSLContext | None = None):
        self.endpoint = endpoint
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, address: Address) -> str:
        """Listen on `address` (port 0: any); returns the bound HOST:PORT."""
        try:
            self._server = await asyncio.start_server(
                self._connection, address.host, address.port, ssl=self.ssl_context
            )
        except OSError as exc:
            raise OSError(f"cannot listen on {address}: {exc}") from None
        port = self._server.sockets[0].getsockname()[1]
        return str(Address(address.host, port))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, TimeoutError, h11.ProtocolError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            event = await _next_event(conn, reader)
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                return
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            body = await _read_body(conn, reader)
            if body is None:
                reply = HttpReply.text(413, f"the body is over {MAX_BODY_BYTES} bytes")
            else:
                request = HttpRequest(event.method.decode(), event.target.decode(), headers, body)
                reply = self.endpoint.handle(request)
            await _send(conn, writer, reply, close=body is None)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await asyncio.wait_for(reader.read(65536), IDLE_SECONDS)
        conn.receive_data(data)


async def _read_body(conn: h11.Connection, reader: asyncio.StreamReader) -> bytes | None:
    """The request body, or None when it is over MAX_BODY_BYTES (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await _next_event(conn, reader)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise h11.RemoteProtocolError("unexpected event in a request body")


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, reply: HttpReply, close: bool
) -> None:
    headers = [*reply.headers, ("content-length", str(len(reply.body)))]
    if close:
        headers.append(("connection", "close"))
    data = conn.send(h11.Response(status_code=reply.status, headers=headers))
    assert data is not None
    writer.write(data)
    if reply.body:
        body = conn.send(h11.Data(data=reply.body))
        assert body is not None
        writer.write(body)
    end = conn.send(h11.EndOfMessage())
    assert end is not None
    writer.write(end)
    await writer.drain()
