"""OTLP/HTTP: the endpoint's rules without sockets, then the OpenTelemetry
Python SDK's OTLP/HTTP exporter against a real collector's --otlp-http-listen."""

from __future__ import annotations

import asyncio
import gzip
import json
import urllib.request

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from collector.config import CollectorConfig
from collector.hub import CollectorHub
from collector.otlp_http import HttpRequest, OtlpHttpEndpoint
from collector.otlp_receiver import OtlpReceiver
from collector.push_auth import PushAccess
from collector.series import SeriesKey
from tests.collector.conftest import recording
from tests.support.processes import running

JSON_BODY = {
    "resourceMetrics": [
        {
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "web"}},
                    {"key": "service.instance.id", "value": {"stringValue": "tab-1"}},
                ]
            },
            "scopeMetrics": [
                {
                    "metrics": [
                        {
                            "name": "clicks",
                            "sum": {
                                "aggregationTemporality": 2,
                                "isMonotonic": True,
                                "dataPoints": [
                                    {
                                        "asInt": "7",
                                        "startTimeUnixNano": "1000000",
                                        "exemplars": [
                                            {
                                                "asInt": "1",
                                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                            }
                                        ],
                                    }
                                ],
                            },
                        },
                        {"name": "broken"},
                    ]
                }
            ],
        }
    ]
}


def endpoint(**kwargs: object) -> tuple[OtlpHttpEndpoint, CollectorHub]:
    hub = CollectorHub(CollectorConfig().hub_limits())
    return OtlpHttpEndpoint(OtlpReceiver(hub), **kwargs), hub  # type: ignore[arg-type]


def post(body: bytes, content_type: str, **headers: str) -> HttpRequest:
    return HttpRequest("POST", "/v1/metrics", {"content-type": content_type, **headers}, body)


def test_json_is_translated_like_grpc_and_answered_in_json() -> None:
    ep, hub = endpoint()
    reply = ep.handle(post(json.dumps(JSON_BODY).encode(), "application/json"))
    assert reply.status == 200 and ("content-type", "application/json") in reply.headers
    answer = json.loads(reply.body)
    assert answer["partialSuccess"]["rejectedDataPoints"] == "1"
    assert "(broken): a metric without data" in answer["partialSuccess"]["errorMessage"]
    assert hub.get("web").value(SeriesKey.of("clicks", [("instance", "tab-1")])) == 7


def test_gzip_protobuf_is_taken_and_answered_in_protobuf() -> None:
    ep, hub = endpoint()
    request = ExportMetricsServiceRequest()
    json_format.ParseDict(JSON_BODY, request, ignore_unknown_fields=True)
    del request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].exemplars[:]
    body = gzip.compress(request.SerializeToString())
    reply = ep.handle(post(body, "application/x-protobuf", **{"content-encoding": "gzip"}))
    assert reply.status == 200
    assert (
        ExportMetricsServiceResponse.FromString(reply.body).partial_success.rejected_data_points
        == 1
    )
    assert "web" in hub.sources


def test_wrong_path_method_type_and_body_say_why() -> None:
    ep, _ = endpoint()
    assert ep.handle(HttpRequest("POST", "/v1/traces", {})).status == 404
    get = ep.handle(HttpRequest("GET", "/v1/metrics", {}))
    assert get.status == 405 and ("allow", "POST, OPTIONS") in get.headers
    assert ep.handle(post(b"{}", "text/plain")).status == 415
    bad = ep.handle(post(b"\xff\xff", "application/x-protobuf"))
    assert bad.status == 400 and b"not an ExportMetricsServiceRequest" in bad.body
    assert ep.handle(post(b"[1]", "application/json")).status == 400
    assert ep.handle(post(b"x", "application/json", **{"content-encoding": "br"})).status == 415


def test_cors_is_closed_by_default_and_opens_for_listed_origins() -> None:
    closed, hub = endpoint()
    body = json.dumps(JSON_BODY).encode()
    refused = closed.handle(post(body, "application/json", origin="https://evil.example"))
    assert refused.status == 403 and "web" not in hub.sources
    assert not any(name.startswith("access-control") for name, _ in refused.headers)
    open_, _ = endpoint(cors_origins=["https://app.example"])
    preflight = open_.handle(
        HttpRequest("OPTIONS", "/v1/metrics", {"origin": "https://app.example"})
    )
    assert preflight.status == 204
    assert ("access-control-allow-origin", "https://app.example") in preflight.headers
    ok = open_.handle(post(body, "application/json", origin="https://app.example"))
    assert ok.status == 200 and ("access-control-allow-origin", "https://app.example") in ok.headers


def test_push_tokens_hold_on_http_too() -> None:
    access = PushAccess.parse("a-token-of-16-chars web\nanother-16-chars-token other\n", "host")
    ep, hub = endpoint(access=access)
    body = json.dumps(JSON_BODY).encode()
    missing = ep.handle(post(body, "application/json"))
    assert missing.status == 401 and ("www-authenticate", "Bearer") in missing.headers
    denied = ep.handle(
        post(body, "application/json", authorization="Bearer another-16-chars-token")
    )
    assert denied.status == 403 and "web" not in hub.sources
    ok = ep.handle(post(body, "application/json", authorization="Bearer a-token-of-16-chars"))
    assert ok.status == 200 and "web" in hub.sources


async def test_python_sdk_http_exporter_reaches_a_subscriber() -> None:
    args = ["--listen", "127.0.0.1:0", "--otlp-http-listen", "127.0.0.1:0", "--interval", "5"]
    with running("collector", args) as server:
        http = server.addresses["otlp_http"]
        async with (
            grpc.aio.insecure_channel(server.addresses["grpc"]) as ch,
            recording(ch, ["browser-app"]) as rec,
        ):
            exporter = OTLPMetricExporter(endpoint=f"http://{http}/v1/metrics")
            reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
            resource = Resource.create(
                {"service.name": "browser-app", "service.instance.id": "tab-7"}
            )
            provider = MeterProvider(resource=resource, metric_readers=[reader])
            try:
                meter = provider.get_meter("ui")
                meter.create_counter("page.views").add(3)
                meter.create_up_down_counter("open.dialogs").add(2)
                assert await asyncio.to_thread(provider.force_flush)
            finally:
                await asyncio.to_thread(provider.shutdown)
            labels = {"instance": "tab-7", "otel_scope_name": "ui"}
            await rec.wait_for(
                lambda: (
                    "browser-app" in rec.replicas
                    and rec.replicas["browser-app"].get("page_views", **labels) == 3
                    and rec.replicas["browser-app"].get("open_dialogs", **labels) == 2
                ),
                10,
                "the exported counter and up-down counter",
            )
        # a browser page elsewhere cannot post (CORS closed by default)
        request = urllib.request.Request(
            f"http://{http}/v1/metrics",
            data=b"{}",
            headers={"content-type": "application/json", "origin": "https://elsewhere.example"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
        assert refused.value.code == 403
