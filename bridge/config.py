"""The bridge's options. Every option is a flag and an environment variable
METRICS_BRIDGE_<FLAG NAME> (e.g. --max-connections / METRICS_BRIDGE_MAX_CONNECTIONS);
a flag wins over its variable. --collector is repeatable; its variable holds a
comma-separated list."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from collector.config import Address, at_least, parse_address

__all__ = [
    "Address",
    "BridgeConfig",
    "CollectorTarget",
    "Keepalive",
    "parse_address",
    "parse_config",
]

ENV_PREFIX = "METRICS_BRIDGE_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
COMPRESSION = ("none", "deflate")
KEEPALIVE = 10.0
KEEPALIVE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Keepalive:
    """HTTP/2 pings on the channel to a collector: one after `interval` seconds
    without data; no ack within `timeout` seconds and the connection is dead."""

    interval: float = KEEPALIVE
    timeout: float = KEEPALIVE_TIMEOUT


@dataclass(frozen=True, slots=True)
class CollectorTarget:
    """One upstream collector; `name` is empty until the collector reports its own."""

    address: Address
    name: str = ""
    keepalive: Keepalive = Keepalive()


@dataclass(frozen=True)
class BridgeConfig:
    listen: Address = Address("127.0.0.1", 8765)
    collectors: tuple[CollectorTarget, ...] = field(
        default_factory=lambda: (CollectorTarget(Address("127.0.0.1", 50051)),)
    )
    upstream_keepalive: float = KEEPALIVE
    upstream_keepalive_timeout: float = KEEPALIVE_TIMEOUT
    heartbeat: float = 15.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    resume_window: int = 256
    max_connections: int = 10_000
    max_message_bytes: int = 64 * 1024
    max_subscriptions: int = 100
    max_client_rate: float = 20.0
    client_buffer_bytes: int = 256 * 1024
    send_buffer_bytes: int = 64 * 1024
    send_threads: int = field(default_factory=lambda: 2 if (os.cpu_count() or 1) > 1 else 1)
    slow_client_timeout: float = 30.0
    handshake_timeout: float = 10.0
    compression: str = "deflate"
    static_dir: str = ""
    ready_file: str | None = None
    log_level: str = "INFO"


def parse_collector(text: str) -> CollectorTarget:
    """[NAME=]HOST:PORT."""
    name, sep, address = text.strip().rpartition("=")
    if sep and (not name or "/" in name):
        raise argparse.ArgumentTypeError(f"collector name must be non-empty without '/': {text!r}")
    return CollectorTarget(parse_address(address), name)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    defaults = BridgeConfig()
    parser = argparse.ArgumentParser(
        prog="metrics-bridge",
        description=(
            "Follow metrics collectors over gRPC and serve their channels to browsers over "
            "WebSocket (subprotocol metrics-bridge.v1, protobuf binary frames). "
            "Subcommands: 'serve' (the default) and 'tail' (print a bridge's stream)."
        ),
        epilog=(
            "Every option can also be set with an environment variable "
            f"{ENV_PREFIX}<OPTION>, e.g. {ENV_PREFIX}MAX_CONNECTIONS=500; flags win."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def option(flag: str, help: str, **kwargs: Any) -> None:
        variable = ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()
        kwargs["help"] = f"{help} [env {variable}]"
        if variable in env:
            if kwargs.get("action") == "append":
                kwargs["default"] = [
                    kwargs["type"](part) for part in env[variable].split(",") if part.strip()
                ]
            else:
                kwargs["default"] = env[variable]
        parser.add_argument(flag, **kwargs)

    option(
        "--listen",
        "HOST:PORT to serve WebSocket and HTTP on; port 0 picks a free port",
        type=parse_address,
        default=defaults.listen,
    )
    option(
        "--collector",
        "[NAME=]HOST:PORT of a collector to follow; repeatable. Channels are named "
        "NAME/SOURCE; without NAME, the name the collector reports (its host source) is used. "
        "When none is given: 127.0.0.1:50051",
        type=parse_collector,
        metavar="[NAME=]HOST:PORT",
        action="append",
        dest="collectors",
        default=None,
    )
    option(
        "--upstream-keepalive",
        "seconds without data from a collector before the bridge pings it (HTTP/2 PING); "
        "at least 1 (collectors accept a ping every 0.5 s)",
        type=at_least(float, 1.0),
        metavar="SECONDS",
        default=defaults.upstream_keepalive,
    )
    option(
        "--upstream-keepalive-timeout",
        "seconds to wait for the collector's ping ack; without it the collector counts as "
        "hung (a stopped process, a frozen VM, a path that drops packets): its channels go "
        "STALE and the bridge reconnects and resumes",
        type=at_least(float, 0.1),
        metavar="SECONDS",
        default=defaults.upstream_keepalive_timeout,
    )
    option(
        "--heartbeat",
        "seconds between Heartbeat frames",
        type=at_least(float, 0.01),
        default=defaults.heartbeat,
    )
    option(
        "--ping-interval",
        "seconds between WebSocket pings",
        type=at_least(float, 0.01),
        default=defaults.ping_interval,
    )
    option(
        "--ping-timeout",
        "seconds to wait for a pong before closing (1011)",
        type=at_least(float, 0.01),
        default=defaults.ping_timeout,
    )
    option(
        "--resume-window",
        "updates held per channel for gapless resume",
        type=at_least(int, 0),
        default=defaults.resume_window,
    )
    option(
        "--max-connections",
        "WebSocket connections; more are closed with 1013",
        type=at_least(int, 1),
        default=defaults.max_connections,
    )
    option(
        "--max-message-bytes",
        "largest client message; larger ones close with 1009",
        type=at_least(int, 64),
        default=defaults.max_message_bytes,
    )
    option(
        "--max-subscriptions",
        "channels one connection may subscribe to",
        type=at_least(int, 1),
        default=defaults.max_subscriptions,
    )
    option(
        "--max-client-rate",
        "client messages per second (bursts of twice that); over it: 1008",
        type=at_least(float, 0.1),
        default=defaults.max_client_rate,
    )
    option(
        "--client-buffer-bytes",
        "outbound buffer per client; over it updates are skipped "
        "and the client is resynced with a snapshot once drained",
        type=at_least(int, 1024),
        default=defaults.client_buffer_bytes,
    )
    option(
        "--send-buffer-bytes",
        "kernel send buffer (SO_SNDBUF) per client socket; 0 leaves it to the OS, which "
        "lets it grow to megabytes for a client that stops reading",
        type=at_least(int, 0),
        default=defaults.send_buffer_bytes,
    )
    option(
        "--send-threads",
        "threads making the fan-out's send() calls (the event loop's included); a second "
        "thread shortens a large fan-out (default: 2 on a machine with more than one core, "
        "else 1)",
        type=at_least(int, 1),
        default=defaults.send_threads,
    )
    option(
        "--slow-client-timeout",
        "seconds a client may stay behind before it is closed (4000)",
        type=at_least(float, 0.01),
        default=defaults.slow_client_timeout,
    )
    option(
        "--handshake-timeout",
        "seconds allowed for the opening handshake",
        type=at_least(float, 0.01),
        default=defaults.handshake_timeout,
    )
    option(
        "--compression",
        "permessage-deflate: 'deflate' accepts it without context takeover, so each "
        "frame is compressed once for all clients; 'none' declines it",
        choices=COMPRESSION,
        default=defaults.compression,
    )
    option(
        "--static-dir",
        "directory of dashboard files served over HTTP (default: web/dist next to the package)",
        default=defaults.static_dir,
    )
    option(
        "--ready-file",
        'write {"ws": HOST:PORT, "url": ws://HOST:PORT/} here once serving',
        default=defaults.ready_file,
    )
    option(
        "--log-level",
        "logging level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=defaults.log_level,
    )
    return parser


def parse_config(argv: Sequence[str], env: Mapping[str, str] | None = None) -> BridgeConfig:
    env = os.environ if env is None else env
    parser = build_parser(env)
    args = parser.parse_args(argv)
    values = vars(args)
    keepalive = Keepalive(values["upstream_keepalive"], values["upstream_keepalive_timeout"])
    values["collectors"] = tuple(
        replace(target, keepalive=keepalive)
        for target in values["collectors"] or BridgeConfig().collectors
    )
    names = [c.name for c in values["collectors"] if c.name]
    if len(names) != len(set(names)):
        parser.error(f"collector names must be unique: {names}")
    # argparse converts string defaults (from the environment) but does not check choices.
    if values["compression"] not in COMPRESSION:
        parser.error(f"compression must be one of {COMPRESSION}")
    if values["log_level"] not in LOG_LEVELS:
        parser.error(f"log level must be one of {LOG_LEVELS}")
    return BridgeConfig(**values)
