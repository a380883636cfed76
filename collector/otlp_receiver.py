"""One OTLP Export request, whatever its transport (gRPC or HTTP), into the hub.

Whatever cannot be taken (unsupported data, invalid points, a source over its
series limit, too many sources) is counted in partial_success with what it
was; the rest of the request is applied, one batch per origin (source,
instance), so each replica's series have their own idle timer. The export
itself succeeds, so exporters do not retry data that would be refused again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otlp_service

from collector.errors import CollectorError
from collector.hub import CollectorHub
from collector.otlp import Translation, translate
from collector.otlp_instances import ResourceRules
from metrics_bridge.v1 import metrics_pb2

__all__ = ["OtlpReceiver"]

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class OtlpReceiver:
    def __init__(
        self,
        hub: CollectorHub,
        rules: ResourceRules | None = None,
        *,
        clock: Callable[[], int] = _now_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.rules = rules or ResourceRules()
        self._clock = clock
        self._monotonic = monotonic

    def translate(self, request: otlp_service.ExportMetricsServiceRequest) -> Translation:
        """The request's samples by origin; nothing is applied yet (a caller may
        check `translation.sources` first, as push authorization does)."""
        return translate(request, self.rules)

    def apply(self, translation: Translation) -> otlp_service.ExportMetricsServiceResponse:
        """Apply every origin's batch; the response reports what was refused."""
        now, received = self._clock(), self._monotonic()
        for origin, by_key in translation.batches.items():
            samples = list(by_key.values())
            try:
                self.hub.apply(
                    origin.source,
                    metrics_pb2.SOURCE_KIND_OTLP,
                    samples,
                    now,
                    received=received,
                    instance=origin.instance,
                )
            except CollectorError as exc:
                translation.reject(len(samples), str(exc))
        response = otlp_service.ExportMetricsServiceResponse()
        if translation.rejected:
            response.partial_success.rejected_data_points = translation.rejected
            response.partial_success.error_message = translation.error_message()
            log.info(
                "OTLP export: rejected %d points: %s",
                translation.rejected,
                response.partial_success.error_message,
            )
        return response

    def export(
        self, request: otlp_service.ExportMetricsServiceRequest
    ) -> otlp_service.ExportMetricsServiceResponse:
        return self.apply(self.translate(request))
