"""The collector's options. `CollectorConfig` is the one place each default and
its help live; the command line, `--help`, the README table (checked by a test)
and the hub's limits (`hub_limits()`) all come from it.

Every option is a flag and an environment variable METRICS_COLLECTOR_<FLAG NAME>
(e.g. --max-sources / METRICS_COLLECTOR_MAX_SOURCES); a flag wins over its variable.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from collector.hub import HubLimits
from collector.otlp_instances import DEFAULT_KEPT, ResourceRules
from collector.validation import check_source_name, sanitize_source_name
from metrics_shared.address import COLLECTOR_ADDRESS, Address, parse_address
from metrics_shared.argument_types import at_least
from metrics_shared.options import LOG_LEVELS, CommandLine, option
from metrics_shared.tls import ServerTls
from metrics_shared.version import package_version

__all__ = ["ENV_PREFIX", "LOG_LEVELS", "CollectorConfig", "command_line", "parse_config"]

ENV_PREFIX = "METRICS_COLLECTOR_"


def source_name(text: str) -> str:
    problem = check_source_name(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


@dataclass(frozen=True)
class CollectorConfig:
    listen: Address = field(
        default=COLLECTOR_ADDRESS,
        metadata=option(
            "gRPC address (MetricsCollector, OTLP Export, health, reflection); port 0 = any",
            parse_address,
            metavar="HOST:PORT",
        ),
    )
    otlp_listen: Address | None = field(
        default=None,
        metadata=option(
            "extra listener for OTLP exporters, conventionally 127.0.0.1:4317",
            parse_address,
            metavar="HOST:PORT",
        ),
    )
    otlp_http_listen: Address | None = field(
        default=None,
        metadata=option(
            "OTLP/HTTP listener (POST /v1/metrics, protobuf or JSON), conventionally "
            "127.0.0.1:4318; port 0 = any",
            parse_address,
            metavar="HOST:PORT",
        ),
    )
    otlp_http_cors_origins: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "browser origins (scheme://host[:port]) allowed to POST OTLP/HTTP; '*' = any; "
            "none: requests with an Origin header are refused (403)",
            metavar="ORIGIN",
            repeatable=True,
            shown_default="none",
        ),
    )
    otlp_keep_attributes: tuple[str, ...] = field(
        default=DEFAULT_KEPT,
        metadata=option(
            "OTLP resource attributes kept as labels on every series of the resource "
            "(otel.scope.name and otel.scope.version name the scope); the instance "
            "attributes make the `instance` label anyway; others are dropped; "
            "'' = keep none",
            metavar="ATTRIBUTE",
            repeatable=True,
            shown_default=", ".join(DEFAULT_KEPT),
        ),
    )
    ready_file: str | None = field(
        default=None,
        metadata=option(
            'once serving, write {"grpc": "HOST:PORT"[, "otlp": ..., "otlp_http": ...]} here',
            metavar="PATH",
        ),
    )
    interval: float = field(
        default=1.0,
        metadata=option("host sampling interval", at_least(float, 0.01), metavar="SECONDS"),
    )
    host_source: str = field(
        default="",
        metadata=option(
            "name of the host source, also the collector's name in ListSources",
            source_name,
            metavar="NAME",
            shown_default="hostname",
        ),
    )
    resume_window: int = field(
        default=1024,
        metadata=option(
            "updates held per source for Subscribe resume", at_least(int, 0), metavar="N"
        ),
    )
    max_series_per_source: int = field(
        default=10_000,
        metadata=option(
            "series a source may hold; more is refused with RESOURCE_EXHAUSTED",
            at_least(int),
            metavar="N",
        ),
    )
    max_sources: int = field(
        default=1000,
        metadata=option(
            "sources the collector holds; a new one beyond is refused (RESOURCE_EXHAUSTED)",
            at_least(int),
            metavar="N",
        ),
    )
    source_ttl: float = field(
        default=300.0,
        metadata=option(
            "remove a push/OTLP source after this long without an accepted batch: its "
            "subscribers get SourceRemoved and its --max-sources place is freed; a later push "
            "starts it over with a new epoch. Checked every --interval; 0 = never; the host "
            "source never expires",
            at_least(float, 0),
            metavar="SECONDS",
        ),
    )
    max_batch_samples: int = field(
        default=10_000,
        metadata=option(
            "samples in one Push batch; more is refused with INVALID_ARGUMENT",
            at_least(int),
            metavar="N",
        ),
    )
    subscriber_queue: int = field(
        default=4096,
        metadata=option(
            "updates queued per subscriber; one that falls behind is resynced with a snapshot",
            at_least(int),
            metavar="N",
        ),
    )
    """About 200 ms at the 20,000 events/s one collector carries: the bridge's Subscribe
    stream holds only 64 KiB in flight (no bandwidth-delay probing), so this queue
    absorbs a bridge's pauses. A queued update costs its subscriber one reference: the
    queued event and its encoding are shared by every subscriber."""
    max_staleness: float = field(
        default=1.0,
        metadata=option(
            "oldest update a subscriber queue may hold for a source while newer ones wait; past "
            "it they are dropped for a snapshot (resync STALE); 0 turns it off",
            at_least(float, 0),
            metavar="SECONDS",
        ),
    )
    max_subscribers: int = field(
        default=1000,
        metadata=option(
            "concurrent Subscribe streams; more are refused (RESOURCE_EXHAUSTED)",
            at_least(int),
            metavar="N",
        ),
    )
    shutdown_grace: float = field(
        default=5.0,
        metadata=option(
            "on SIGTERM/SIGINT, time in-flight calls get before cancellation",
            at_least(float, 0),
            metavar="SECONDS",
        ),
    )
    tls_cert: str | None = field(
        default=None,
        metadata=option(
            "serve TLS on every listener with this PEM certificate chain (needs --tls-key)",
            metavar="PATH",
        ),
    )
    tls_key: str | None = field(
        default=None,
        metadata=option("the PEM private key of --tls-cert", metavar="PATH"),
    )
    client_ca: str | None = field(
        default=None,
        metadata=option(
            "require a client certificate signed by this PEM CA on every listener (mTLS; needs "
            "--tls-cert); it guards Subscribe, ListSources and GetSnapshot, which take no token",
            metavar="PATH",
        ),
    )
    push_tokens: str | None = field(
        default=None,
        metadata=option(
            "Push and OTLP Export need 'authorization: Bearer TOKEN' metadata with a token "
            "from this file, one 'TOKEN SOURCE-GLOB[,GLOB...]' per line (see README "
            "Security); a token pushes only the sources it names, never the host source",
            metavar="PATH",
        ),
    )
    allow_insecure: bool = field(
        default=False,
        metadata=option(
            "start even when a listener is not on loopback and TLS, --client-ca or "
            "--push-tokens is missing (without it the collector refuses, saying what is "
            "missing); a warning is logged",
            switch=True,
        ),
    )
    log_level: str = field(
        default="INFO",
        metadata=option("logging level", str.upper, choices=LOG_LEVELS),
    )

    def server_tls(self) -> ServerTls | None:
        """The listeners' TLS settings; None: plaintext."""
        if not (self.tls_cert and self.tls_key):
            return None
        return ServerTls(self.tls_cert, self.tls_key, self.client_ca)

    def tls_problem(self) -> str | None:
        if bool(self.tls_cert) != bool(self.tls_key):
            return "--tls-cert and --tls-key go together"
        if self.client_ca and not self.tls_cert:
            return "--client-ca needs --tls-cert and --tls-key (client certificates need TLS)"
        return None

    def otlp_rules(self) -> ResourceRules:
        return ResourceRules(tuple(a for a in self.otlp_keep_attributes if a))

    def hub_limits(self) -> HubLimits:
        return HubLimits(
            resume_window=self.resume_window,
            max_series_per_source=self.max_series_per_source,
            max_sources=self.max_sources,
            subscriber_queue=self.subscriber_queue,
            max_subscribers=self.max_subscribers,
            source_ttl=self.source_ttl,
            max_staleness=self.max_staleness,
        )


def command_line() -> CommandLine:
    return CommandLine(
        CollectorConfig,
        prog="metrics-collector",
        description=(
            "Samples this host with psutil, accepts metrics pushed over gRPC (MetricsCollector."
            "Push) and OTLP/gRPC (MetricsService/Export), and streams snapshots and updates to "
            "subscribers (MetricsCollector.Subscribe). Every option can also be set with the "
            f"environment variable named in its help, {ENV_PREFIX}<OPTION>; a flag wins over "
            "its variable."
        ),
        env_prefix=ENV_PREFIX,
        version=package_version(),
    )


def parse_config(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> CollectorConfig:
    cli = command_line()
    values = cli.parse(argv, os.environ if env is None else env)
    values["host_source"] = values["host_source"] or hostname_source()
    config = CollectorConfig(**values)
    problem = config.tls_problem()
    if problem:
        cli.error(problem)
    return config


def hostname_source() -> str:
    """This machine's hostname, made a valid source name."""
    return sanitize_source_name(socket.gethostname()) or "host"
