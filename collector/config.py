"""The collector's options: every one is a flag and an environment variable
METRICS_COLLECTOR_<FLAG NAME> (e.g. --max-sources / METRICS_COLLECTOR_MAX_SOURCES);
a flag wins over its variable."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "METRICS_COLLECTOR_"


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CollectorConfig:
    listen: Address = Address("127.0.0.1", 50051)
    otlp_listen: Address | None = None
    ready_file: str | None = None
    interval: float = 1.0
    host_source: str = ""
    resume_window: int = 1024
    max_series_per_source: int = 10_000
    max_sources: int = 1000
    source_ttl: float = 300.0
    max_batch_samples: int = 10_000
    subscriber_queue: int = 1024
    max_subscribers: int = 1000
    shutdown_grace: float = 5.0
    log_level: str = "INFO"


def parse_address(text: str) -> Address:
    """HOST:PORT, [IPv6]:PORT; port 0 picks a free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.removeprefix("[").removesuffix("]")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number in {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 in {text!r}")
    return Address(host, number)


def at_least(kind: Callable[[str], Any], minimum: float = 1) -> Callable[[str], Any]:
    """An argparse type: `kind(text)`, refused below `minimum` with a clear message."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value

    return convert


def _source_name(text: str) -> str:
    from collector.validation import check_source_name

    problem = check_source_name(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for options that are off unless set."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metrics-collector",
        description=(
            "Samples this host with psutil, accepts metrics pushed over gRPC (MetricsCollector."
            "Push) and OTLP/gRPC (MetricsService/Export), and streams snapshots and updates to "
            "subscribers (MetricsCollector.Subscribe). Every option can also be set with the "
            f"environment variable {ENV_PREFIX}<OPTION>, e.g. {ENV_PREFIX}LISTEN; a flag wins "
            "over its variable."
        ),
        formatter_class=_HelpFormatter,
    )
    add = parser.add_argument
    add(
        "--listen",
        type=parse_address,
        default=CollectorConfig.listen,
        metavar="HOST:PORT",
        help="gRPC address (MetricsCollector, OTLP Export, health, reflection); port 0 = any",
    )
    add(
        "--otlp-listen",
        type=parse_address,
        default=None,
        metavar="HOST:PORT",
        help="extra listener for OTLP exporters, conventionally 127.0.0.1:4317 (off unless set)",
    )
    add(
        "--ready-file",
        default=None,
        metavar="PATH",
        help='once serving, write {"grpc": "HOST:PORT"[, "otlp": "HOST:PORT"]} here',
    )
    add(
        "--interval",
        type=at_least(float, 0.01),
        default=CollectorConfig.interval,
        metavar="SECONDS",
        help="host sampling interval",
    )
    add(
        "--host-source",
        type=_source_name,
        default=None,
        metavar="NAME",
        help="name of the host source (default: this machine's hostname)",
    )
    add(
        "--resume-window",
        type=at_least(int, 0),
        default=CollectorConfig.resume_window,
        metavar="N",
        help="updates held per source for Subscribe resume",
    )
    add(
        "--max-series-per-source",
        type=at_least(int),
        metavar="N",
        default=CollectorConfig.max_series_per_source,
        help="series a source may hold; more is refused with RESOURCE_EXHAUSTED",
    )
    add(
        "--max-sources",
        type=at_least(int),
        default=CollectorConfig.max_sources,
        metavar="N",
        help="sources the collector holds; a new one beyond is refused (RESOURCE_EXHAUSTED)",
    )
    add(
        "--source-ttl",
        type=at_least(float, 0),
        default=CollectorConfig.source_ttl,
        metavar="SECONDS",
        help=(
            "remove a push/OTLP source after this long without an accepted batch: its "
            "subscribers get SourceRemoved and its --max-sources place is freed; a later push "
            "starts it over with a new epoch. Checked every --interval; 0 = never; the host "
            "source never expires"
        ),
    )
    add(
        "--max-batch-samples",
        type=at_least(int),
        metavar="N",
        default=CollectorConfig.max_batch_samples,
        help="samples in one Push batch; more is refused with INVALID_ARGUMENT",
    )
    add(
        "--subscriber-queue",
        type=at_least(int),
        default=CollectorConfig.subscriber_queue,
        metavar="N",
        help="updates queued per subscriber; one that falls behind is resynced with a snapshot",
    )
    add(
        "--max-subscribers",
        type=at_least(int),
        default=CollectorConfig.max_subscribers,
        metavar="N",
        help="concurrent Subscribe streams; more are refused (RESOURCE_EXHAUSTED)",
    )
    add(
        "--shutdown-grace",
        type=at_least(float, 0),
        default=CollectorConfig.shutdown_grace,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, time in-flight calls get before cancellation",
    )
    add(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=CollectorConfig.log_level,
        help="logging level",
    )
    return parser


def parse_config(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> CollectorConfig:
    parser = build_parser()
    env = os.environ if env is None else env
    defaults: dict[str, Any] = {}
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        variable = ENV_PREFIX + action.dest.upper()
        if variable not in env:
            continue
        text = env[variable]
        try:
            value = action.type(text) if callable(action.type) else text
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{variable}: {exc}")
        if action.choices is not None and value not in action.choices:
            parser.error(f"{variable}: {text!r} is not one of {', '.join(action.choices)}")
        defaults[action.dest] = value
    parser.set_defaults(**defaults)
    ns = parser.parse_args(argv)
    values = vars(ns)
    values["host_source"] = values["host_source"] or _hostname()
    return CollectorConfig(**values)


def _hostname() -> str:
    from collector.validation import sanitize_source_name

    return sanitize_source_name(socket.gethostname()) or "host"
