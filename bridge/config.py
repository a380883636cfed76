"""The bridge's options. `BridgeConfig` is the one place each default and its
help live; the command line, `--help`, the README table (checked by a test) and
the core's limit objects (`limits()`, `timers()`, `client_policy()`,
`keepalive()`) all come from it.

Every option is a flag and an environment variable METRICS_BRIDGE_<FLAG NAME>
(e.g. --max-connections / METRICS_BRIDGE_MAX_CONNECTIONS); a flag wins over its
variable. --collector is repeatable; its variable holds a comma-separated list.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from bridge.discovery import DNS_SCHEME, split_dns_target
from bridge.history import HistoryBudget, HistoryLimits
from bridge.hub import ClientPolicy
from bridge.origin import is_loopback
from bridge.session import Limits, Timers
from bridge.tiers import parse_tiers
from metrics_shared.address import COLLECTOR_ADDRESS, Address, parse_address
from metrics_shared.argument_types import at_least
from metrics_shared.options import LOG_LEVELS, CommandLine, option
from metrics_shared.tls import ClientTls, TlsFileError
from metrics_shared.version import package_version

__all__ = [
    "AUTH_MODES",
    "COMPRESSION",
    "ENV_PREFIX",
    "LOG_LEVELS",
    "BridgeConfig",
    "CollectorTarget",
    "Keepalive",
    "command_line",
    "parse_collector",
    "parse_config",
]

ENV_PREFIX = "METRICS_BRIDGE_"
TLS_SETTINGS = ("ca", "cert", "key")
COMPRESSION = ("none", "deflate")
AUTH_MODES = ("none", "jwt")


def parse_collector(text: str) -> CollectorTarget:
    """[NAME=]HOST:PORT[;ca=PATH][;cert=PATH][;key=PATH]: TLS files of this collector
    only, laid over --collector-ca/--collector-cert/--collector-key."""
    target, *settings = text.strip().split(";")
    name, sep, address = target.rpartition("=")
    if sep and (not name or "/" in name):
        raise argparse.ArgumentTypeError(f"collector name must be non-empty without '/': {text!r}")
    files: dict[str, str] = {}
    for setting in settings:
        key, sep, path = setting.partition("=")
        if key not in TLS_SETTINGS or not sep or not path or key in files:
            raise argparse.ArgumentTypeError(
                f"after HOST:PORT, expected ';ca=PATH', ';cert=PATH' or ';key=PATH' "
                f"(each once): {setting!r} in {text!r}"
            )
        files[key] = path
    host_port = split_dns_target(address)
    if host_port is not None and sep:
        raise argparse.ArgumentTypeError(
            f"a dns:/// target stands for several collectors, each named by what it reports: "
            f"drop the NAME= in {text!r}"
        )
    return CollectorTarget(
        parse_address(address if host_port is None else host_port),
        name,
        tls=ClientTls(**files),
        resolve=host_port is not None,
    )


def default_send_threads() -> int:
    """2 when the process may run on more than one core (its affinity, not the machine's)."""
    return 2 if len(os.sched_getaffinity(0)) > 1 else 1


@dataclass(frozen=True)
class BridgeConfig:
    listen: Address = field(
        default=Address("127.0.0.1", 8765),
        metadata=option(
            "HOST:PORT to serve WebSocket and HTTP on; port 0 picks a free port",
            parse_address,
            metavar="HOST:PORT",
        ),
    )
    collectors: tuple[CollectorTarget, ...] = field(
        default_factory=lambda: (CollectorTarget(COLLECTOR_ADDRESS),),
        metadata=option(
            "a collector to follow; repeatable. Channels are named NAME/SOURCE; without NAME, "
            "the name the collector reports (its host source) is used. A suffix "
            "';ca=PATH;cert=PATH;key=PATH' (any of them) sets this collector's own TLS files, "
            "over --collector-ca/--collector-cert/--collector-key. 'dns:///HOST:PORT' follows "
            "every address HOST resolves to (e.g. a Kubernetes headless service), looked up "
            "again every --collector-resolve-interval",
            parse_collector,
            metavar="[NAME=]HOST:PORT",
            flag="--collector",
            repeatable=True,
        ),
    )
    collector_resolve_interval: float = field(
        default=30.0,
        metadata=option(
            "seconds between lookups of a dns:/// collector target; an address gone from two "
            "answers in a row is dropped (its channels are removed), a failed lookup changes "
            "nothing",
            at_least(float, 1.0),
            metavar="SECONDS",
        ),
    )
    upstream_keepalive: float = field(
        default=10.0,
        metadata=option(
            "seconds without data from a collector before the bridge pings it (HTTP/2 PING); "
            "at least 1 (collectors accept a ping every 0.5 s)",
            at_least(float, 1.0),
            metavar="SECONDS",
        ),
    )
    upstream_keepalive_timeout: float = field(
        default=5.0,
        metadata=option(
            "seconds to wait for the collector's ping ack; without it the collector counts as "
            "hung (a stopped process, a frozen VM, a path that drops packets): its channels go "
            "STALE and the bridge reconnects and resumes",
            at_least(float, 0.1),
            metavar="SECONDS",
        ),
    )
    heartbeat: float = field(
        default=15.0,
        metadata=option(
            "seconds between Heartbeat frames", at_least(float, 0.01), metavar="SECONDS"
        ),
    )
    ping_interval: float = field(
        default=20.0,
        metadata=option(
            "seconds between WebSocket pings", at_least(float, 0.01), metavar="SECONDS"
        ),
    )
    ping_timeout: float = field(
        default=20.0,
        metadata=option(
            "seconds to wait for a pong before closing (1011)",
            at_least(float, 0.01),
            metavar="SECONDS",
        ),
    )
    resume_window: int = field(
        default=256,
        metadata=option(
            "updates held per channel for gapless resume", at_least(int, 0), metavar="N"
        ),
    )
    history_window: int = field(
        default=900,
        metadata=option(
            "updates held per channel for history on subscribe (900: 15 minutes at 1 s); "
            "also bounded by --history-channel-bytes and --history-total-bytes",
            at_least(int, 0),
            metavar="N",
        ),
    )
    history_channel_bytes: int = field(
        default=1024 * 1024,
        metadata=option(
            "bytes of updates held per channel for history and resume",
            at_least(int, 0),
            metavar="N",
        ),
    )
    history_total_bytes: int = field(
        default=256 * 1024 * 1024,
        metadata=option(
            "bytes of updates held for history and resume by all channels together; a "
            "channel over it gives up its oldest updates",
            at_least(int, 0),
            metavar="N",
        ),
    )
    rate_tiers: tuple[int, ...] = field(
        default=(1000, 5000, 10000),
        metadata=option(
            "the rate tiers a subscription may ask for (at most one merged update per tier "
            "interval), comma-separated milliseconds; empty: every update to everyone",
            parse_tiers,
            metavar="MS,...",
            shown_default="1000,5000,10000",
        ),
    )
    max_connections: int = field(
        default=10_000,
        metadata=option(
            "WebSocket connections; more are closed with 1013", at_least(int, 1), metavar="N"
        ),
    )
    max_message_bytes: int = field(
        default=64 * 1024,
        metadata=option(
            "largest client message; larger ones close with 1009", at_least(int, 64), metavar="N"
        ),
    )
    max_subscriptions: int = field(
        default=100,
        metadata=option("channels one connection may subscribe to", at_least(int, 1), metavar="N"),
    )
    max_client_rate: float = field(
        default=20.0,
        metadata=option(
            "client messages per second (bursts of twice that); over it: 1008",
            at_least(float, 0.1),
            metavar="N",
        ),
    )
    client_buffer_bytes: int = field(
        default=256 * 1024,
        metadata=option(
            "outbound buffer per client; over it updates are skipped "
            "and the client is resynced with a snapshot once drained",
            at_least(int, 1024),
            metavar="N",
        ),
    )
    max_staleness: float = field(
        default=1.0,
        metadata=option(
            "oldest data any stage may hold for a channel while newer data exists; past it the "
            "queued updates are dropped for the latest state (resync STALE); 0 turns it off",
            at_least(float, 0),
            metavar="SECONDS",
        ),
    )
    send_buffer_bytes: int = field(
        default=64 * 1024,
        metadata=option(
            "kernel send buffer (SO_SNDBUF) per client socket; 0 leaves it to the OS, which "
            "lets it grow to megabytes for a client that stops reading",
            at_least(int, 0),
            metavar="N",
        ),
    )
    send_threads: int = field(
        default_factory=default_send_threads,
        metadata=option(
            "threads making the fan-out's send() calls (the event loop's included); a second "
            "thread shortens a large fan-out",
            at_least(int, 1),
            metavar="N",
            shown_default="2 (1 on one core)",
        ),
    )
    slow_client_timeout: float = field(
        default=30.0,
        metadata=option(
            "seconds a client may stay behind before it is closed (4000)",
            at_least(float, 0.01),
            metavar="SECONDS",
        ),
    )
    handshake_timeout: float = field(
        default=10.0,
        metadata=option(
            "seconds allowed for the opening handshake", at_least(float, 0.01), metavar="SECONDS"
        ),
    )
    compression: str = field(
        default="deflate",
        metadata=option(
            "permessage-deflate: 'deflate' accepts it without context takeover, so each "
            "frame is compressed once for all clients; 'none' declines it",
            choices=COMPRESSION,
        ),
    )
    static_dir: str = field(
        default="",
        metadata=option(
            "directory of dashboard files served over HTTP",
            metavar="PATH",
            shown_default="the packaged dashboard",
        ),
    )
    ready_file: str | None = field(
        default=None,
        metadata=option(
            'once serving, write {"ws": "HOST:PORT", "url": "ws://HOST:PORT/"} here '
            "(wss:// with --tls-cert)",
            metavar="PATH",
        ),
    )
    collector_ca: str | None = field(
        default=None,
        metadata=option(
            "connect to collectors over TLS, trusting this PEM CA (without it, TLS is still "
            "used when --collector-cert is given, with gRPC's default roots); one collector's "
            "own: --collector 'HOST:PORT;ca=PATH'",
            metavar="PATH",
        ),
    )
    collector_cert: str | None = field(
        default=None,
        metadata=option(
            "client certificate (PEM chain) for collectors that require one (mTLS, their "
            "--client-ca); needs --collector-key; one collector's own: ';cert=PATH'",
            metavar="PATH",
        ),
    )
    collector_key: str | None = field(
        default=None,
        metadata=option(
            "the PEM private key of --collector-cert; one collector's own: ';key=PATH'",
            metavar="PATH",
        ),
    )
    log_level: str = field(
        default="INFO",
        metadata=option("logging level", str.upper, choices=LOG_LEVELS),
    )
    # Browsers and WebSocket: Origin allowlist, tokens, TLS (README "Security").
    allowed_origin: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "an Origin (glob, e.g. https://*.example.com) allowed to open a WebSocket; "
            "repeatable. Others get HTTP 403; requests without Origin are allowed",
            metavar="ORIGIN",
            repeatable=True,
            shown_default="own origin; on loopback also localhost",
        ),
    )
    auth: str = field(
        default="none",
        metadata=option(
            "'jwt': a connection's first message must be Connect{token} with a valid JWT; "
            "'none': no token (on a non-loopback --listen only with --allow-anonymous)",
            choices=AUTH_MODES,
        ),
    )
    allow_anonymous: bool = field(
        default=False,
        metadata=option(
            "serve without tokens on a non-loopback address (otherwise the bridge refuses "
            "to start)",
            switch=True,
        ),
    )
    token_timeout: float = field(
        default=5.0,
        metadata=option(
            "with --auth jwt, seconds a new connection has to send Connect{token} (else 4500); "
            "under the clients' 10 s wait for Hello, so a client without a token is told why",
            at_least(float, 0.01),
            metavar="SECONDS",
        ),
    )
    jwt_secret_file: str | None = field(
        default=None,
        metadata=option("HS256: file holding the shared secret (32+ bytes)", metavar="PATH"),
    )
    jwt_public_key_file: str | None = field(
        default=None,
        metadata=option("RS256/ES256: PEM public key file", metavar="PATH"),
    )
    jwt_jwks_file: str | None = field(
        default=None,
        metadata=option("RS256/ES256: JWKS file (keys chosen by the token's kid)", metavar="PATH"),
    )
    jwt_audience: str | None = field(
        default=None,
        metadata=option("the aud a token must name", metavar="AUD"),
    )
    jwt_issuer: str | None = field(
        default=None,
        metadata=option("the iss a token must carry", metavar="ISS"),
    )
    tls_cert: str | None = field(
        default=None,
        metadata=option(
            "PEM certificate chain: serve wss:// and https:// (reloaded on SIGHUP)",
            metavar="PATH",
        ),
    )
    tls_key: str | None = field(
        default=None,
        metadata=option("PEM private key of --tls-cert", metavar="PATH"),
    )

    def limits(self) -> Limits:
        """What one client session may do (sent to clients in Hello)."""
        return Limits(
            max_message_bytes=self.max_message_bytes,
            max_subscriptions=self.max_subscriptions,
            resume_window=self.resume_window,
            messages_per_second=self.max_client_rate,
            history_window=self.history_window,
            rate_tiers_ms=self.rate_tiers,
        )

    def history_limits(self) -> HistoryLimits:
        """What each channel holds for resume and history, and the bridge-wide budget."""
        return HistoryLimits(
            max(self.resume_window, self.history_window),
            self.history_channel_bytes,
            HistoryBudget(self.history_total_bytes),
        )

    def timers(self) -> Timers:
        return Timers(
            heartbeat_interval=self.heartbeat,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )

    def client_policy(self) -> ClientPolicy:
        return ClientPolicy(
            buffer_bytes=self.client_buffer_bytes,
            slow_timeout=self.slow_client_timeout,
            max_staleness=self.max_staleness,
        )

    def collector_tls(self) -> ClientTls:
        """The bridge-wide TLS settings for collectors."""
        return ClientTls(self.collector_ca, self.collector_cert, self.collector_key)

    def keepalive(self) -> Keepalive:
        return Keepalive(self.upstream_keepalive, self.upstream_keepalive_timeout)

    @property
    def on_loopback(self) -> bool:
        return is_loopback(self.listen.host)

    def security_problem(self) -> str:
        """Why these security options cannot start a bridge; "" when they can."""
        keys = [self.jwt_secret_file, self.jwt_public_key_file, self.jwt_jwks_file]
        given = sum(key is not None for key in keys)
        if self.auth == "jwt" and given != 1:
            return (
                "--auth jwt needs exactly one of --jwt-secret-file, --jwt-public-key-file, "
                "--jwt-jwks-file"
            )
        if self.auth == "none" and given:
            return "--jwt-* options need --auth jwt"
        if (self.tls_cert is None) != (self.tls_key is None):
            return "--tls-cert and --tls-key go together"
        if self.auth == "none" and not self.on_loopback and not self.allow_anonymous:
            return (
                f"refusing to serve {self.listen} (not loopback) without tokens: "
                "use --auth jwt, or --allow-anonymous to let anyone who reaches the port read "
                "every channel"
            )
        return ""


@dataclass(frozen=True, slots=True)
class Keepalive:
    """HTTP/2 pings on the channel to a collector: one after `interval` seconds
    without data; no ack within `timeout` seconds and the connection is dead."""

    interval: float = BridgeConfig.upstream_keepalive
    timeout: float = BridgeConfig.upstream_keepalive_timeout


@dataclass(frozen=True, slots=True)
class CollectorTarget:
    """One upstream collector; `name` is empty until the collector reports its own."""

    address: Address
    name: str = ""
    keepalive: Keepalive = Keepalive()
    tls: ClientTls = field(default_factory=ClientTls)
    """TLS to this collector (its own settings over the bridge-wide ones); off: plaintext."""
    resolve: bool = False
    """`address` names a set of collectors: every address its host resolves to (dns:///)."""

    def __str__(self) -> str:
        if self.resolve:
            return f"{DNS_SCHEME}{self.address}"
        return f"{self.name}={self.address}" if self.name else str(self.address)


def command_line() -> CommandLine:
    return CommandLine(
        BridgeConfig,
        prog="metrics-bridge",
        description=(
            "Follow metrics collectors over gRPC and serve their channels to browsers over "
            "WebSocket (subprotocol metrics-bridge.v1, protobuf binary frames). "
            "Subcommands: 'serve' (the default) and 'tail' (print a bridge's stream)."
        ),
        epilog=(
            "Every option can also be set with the environment variable named in its help, "
            f"{ENV_PREFIX}<OPTION>, e.g. {ENV_PREFIX}MAX_CONNECTIONS=500; flags win."
        ),
        env_prefix=ENV_PREFIX,
        version=package_version(),
    )


def parse_config(argv: Sequence[str], env: Mapping[str, str] | None = None) -> BridgeConfig:
    cli = command_line()
    values = cli.parse(argv, os.environ if env is None else env)
    names = [c.name for c in values["collectors"] if c.name]
    if len(names) != len(set(names)):
        cli.error(f"collector names must be unique: {names}")
    config = BridgeConfig(**values)
    problem = config.security_problem()
    if problem:
        cli.error(problem)
    keepalive = config.keepalive()
    defaults = config.collector_tls()
    collectors = tuple(
        replace(c, keepalive=keepalive, tls=c.tls.over(defaults)) for c in config.collectors
    )
    for target in collectors:
        try:
            if target.tls.enabled:
                target.tls.credentials()  # checks the files now, not at the first handshake
        except TlsFileError as exc:
            cli.error(f"collector {target.address}: {exc}")
    return replace(config, collectors=collectors)
