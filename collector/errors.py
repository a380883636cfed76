"""Every error the collector reports, and the gRPC status each one becomes.

    CollectorError                      (base; never raised itself)
    ├── InvalidBatch          INVALID_ARGUMENT    a pushed batch breaks a rule; `field`
    │                                            names the offending field, e.g.
    │                                            "samples[3].labels[1].name"
    ├── SourceConflict        FAILED_PRECONDITION the source name belongs to another
    │                                            kind of source (host, push, OTLP)
    ├── SeriesLimitExceeded   RESOURCE_EXHAUSTED  a source would hold more series than
    │                                            --max-series-per-source
    ├── TooManySources        RESOURCE_EXHAUSTED  a new source would exceed --max-sources
    ├── TooManySubscribers    RESOURCE_EXHAUSTED  a new Subscribe would exceed
    │                                            --max-subscribers
    ├── UnknownSource         NOT_FOUND           GetSnapshot for a source not held
    ├── Unauthenticated       UNAUTHENTICATED     Push/Export without a known bearer
    │                                            token (--push-tokens)
    └── PermissionDenied      PERMISSION_DENIED   the token may not push that source;
                                                 the message names the source

A rejected request changes nothing: every check runs before any state moves.
Besides these, a Subscribe stream ends with RESOURCE_EXHAUSTED when its
subscriber is behind by more source removals than its queue holds
(`SubscriberQueue.lost`, collector/fanout.py); it should subscribe again.
"""

from __future__ import annotations

import grpc

__all__ = [
    "CollectorError",
    "InvalidBatch",
    "PermissionDenied",
    "SeriesLimitExceeded",
    "SourceConflict",
    "TooManySources",
    "TooManySubscribers",
    "Unauthenticated",
    "UnknownSource",
]


class CollectorError(Exception):
    """Base of the collector's errors; `status` is the gRPC code a client sees."""

    status: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidBatch(CollectorError):
    status = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class SourceConflict(CollectorError):
    status = grpc.StatusCode.FAILED_PRECONDITION


class SeriesLimitExceeded(CollectorError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class TooManySources(CollectorError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class TooManySubscribers(CollectorError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnknownSource(CollectorError):
    status = grpc.StatusCode.NOT_FOUND


class Unauthenticated(CollectorError):
    status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(CollectorError):
    status = grpc.StatusCode.PERMISSION_DENIED
