"""`metrics-bridge tail`: a live terminal view of one channel, built on bridge.client.

On a terminal the view is redrawn in place; when stdout is not a TTY every
sync prints the whole channel and every update prints the series it changed,
one `channel seq key value unit` line each, so the output can be piped.
Resyncs the bridge marked (data replaced for staleness or overflow,
docs/protocol.md "Freshness") are counted in the terminal's header, and
told on stderr when piped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from bridge.client import (
    BridgeClient,
    CatalogReceived,
    ChannelSynced,
    ChannelUpdated,
    ChannelView,
    ConnectionRejected,
    Disconnected,
    SeriesValue,
    ServerError,
)
from bridge.client.token import TokenSource
from metrics_bridge.v1 import bridge_pb2, metrics_pb2
from metrics_shared.address import BRIDGE_ADDRESS
from metrics_shared.argument_types import at_least
from metrics_shared.options import LOG_LEVELS, CommandLine, option
from metrics_shared.version import package_version

__all__ = ["TailOptions", "main", "parse_args", "tail", "tls_context", "token_source"]

ENV_PREFIX = "METRICS_BRIDGE_TAIL_"
_UNITS_SHOWN_RAW = {"", "1"}


@dataclass(frozen=True)
class TailOptions:
    """tail's options; the variables keep the names tail has always read."""

    url: str = field(
        default=f"ws://{BRIDGE_ADDRESS}/",
        metadata=option(
            "bridge WebSocket URL", metavar="URL", env="METRICS_BRIDGE_URL", positional=True
        ),
    )
    channel: str | None = field(
        default=None,
        metadata=option(
            "channel to show, '<collector>/<source>'",
            metavar="CHANNEL",
            shown_default="the first host channel in the bridge's catalog",
        ),
    )
    match: str = field(
        default="",
        metadata=option(
            "only show series whose name contains this text",
            metavar="TEXT",
            shown_default="every series",
        ),
    )
    once: bool = field(
        default=False,
        metadata=option("print the channel's values once and exit", switch=True),
    )
    count: int = field(
        default=0,
        metadata=option(
            "exit after N views: the first sync and N-1 updates; 0 = run until interrupted",
            at_least(int, 0),
            metavar="N",
        ),
    )
    timeout: float = field(
        default=0.0,
        metadata=option(
            "give up with exit code 1 after this long; 0 = never", float, metavar="SECONDS"
        ),
    )
    compression: str = field(
        default="deflate",
        metadata=option("offer permessage-deflate", choices=("deflate", "none")),
    )
    token: str | None = field(
        default=None,
        metadata=option(
            "token for a bridge run with --auth jwt (sent as Connect{token}); prefer the "
            "variable or --token-file, since flags show in the process list",
            metavar="JWT",
            env="METRICS_BRIDGE_TOKEN",
        ),
    )
    token_file: str | None = field(
        default=None,
        metadata=option(
            "file holding the token; read again before each connection and before the "
            "token's exp, so a rotated file refreshes the token in-band",
            metavar="PATH",
            env="METRICS_BRIDGE_TOKEN_FILE",
        ),
    )
    ca_file: str | None = field(
        default=None,
        metadata=option(
            "PEM CA certificates to trust for a wss:// URL instead of the system's",
            metavar="PATH",
            env="METRICS_BRIDGE_CA_FILE",
        ),
    )
    log_level: str = field(
        default="WARNING",
        metadata=option(
            "logging level on stderr", str.upper, choices=LOG_LEVELS, env="METRICS_BRIDGE_LOG_LEVEL"
        ),
    )


def command_line() -> CommandLine:
    return CommandLine(
        TailOptions,
        prog="metrics-bridge tail",
        description="Show a bridge channel's live values in the terminal. "
        "Every option also reads the environment variable named in its help; a flag wins.",
        env_prefix=ENV_PREFIX,
        version=package_version(),
    )


def parse_args(argv: Sequence[str], env: Mapping[str, str] | None = None) -> TailOptions:
    options = TailOptions(**command_line().parse(argv, os.environ if env is None else env))
    return replace(options, count=1) if options.once else options


def token_source(args: TailOptions) -> TokenSource | None:
    """--token-file (read each time a token is needed), else --token / METRICS_BRIDGE_TOKEN."""
    path = args.token_file
    if path is not None:
        return lambda: Path(path).read_text().strip()
    return args.token or None


def tls_context(args: TailOptions) -> ssl.SSLContext | None:
    if args.ca_file is None:
        return None
    return ssl.create_default_context(cafile=args.ca_file)


def format_number(series: SeriesValue) -> str:
    if series.histogram is not None:
        h = series.histogram
        return f"count={h.count} sum={h.sum:.6g}"
    if series.number is None:
        return "-"
    return f"{series.number:.6g}"


def first_host_channel(channels: Sequence[bridge_pb2.ChannelInfo]) -> str | None:
    for info in channels:
        if info.kind == metrics_pb2.SOURCE_KIND_HOST:
            return info.channel
    return None


def resync_summary(view: ChannelView) -> str:
    """The view's resyncs by reason, e.g. `stale 3, overflow 1`; empty when none."""
    return ", ".join(f"{reason} {count}" for reason, count in sorted(view.resyncs.items()))


class Printer:
    """Writes views: redrawn in place on a terminal, as lines otherwise."""

    def __init__(self, out: TextIO, match: str, err: TextIO | None = None) -> None:
        self.out = out
        self.err = err
        self.match = match
        self.tty = out.isatty()

    def show(self, view: ChannelView, changed: set[int] | None, resync: str | None = None) -> None:
        """`resync`: the reason the shown frame was marked with, if any."""
        series = [s for s in view.series() if self.match in s.name]
        position = view.position
        seq = position.seq if position is not None else 0
        if self.tty:
            self._redraw(view, series, changed)
            return
        if resync is not None and self.err is not None:
            print(
                f"{view.channel} resynced at seq {seq}: {resync} ({resync_summary(view)})",
                file=self.err,
            )
        for item in series:
            if changed is None or item.id in changed:
                unit = "" if item.unit in _UNITS_SHOWN_RAW else f" {item.unit}"
                print(f"{view.channel} {seq} {item.key} {format_number(item)}{unit}", file=self.out)
        self.out.flush()

    def _redraw(
        self, view: ChannelView, series: list[SeriesValue], changed: set[int] | None
    ) -> None:
        position = view.position
        stamp = time.strftime("%H:%M:%S", time.localtime(view.time_unix_ms / 1000))
        resyncs = resync_summary(view)
        lines = [
            f"\x1b[H\x1b[2J{view.channel}  epoch {position.epoch if position else 0:016x}"
            f"  seq {position.seq if position else 0}  at {stamp}"
            + (f"  resynced: {resyncs}" if resyncs else ""),
            "",
        ]
        width = max((len(s.key) for s in series), default=0)
        for item in series:
            mark = "*" if changed is not None and item.id in changed else " "
            unit = "" if item.unit in _UNITS_SHOWN_RAW else item.unit
            lines.append(f"{mark} {item.key:<{width}}  {format_number(item):>14} {unit}")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()


def changed_ids(update: metrics_pb2.Update) -> set[int]:
    ids = set(update.values.ids)
    ids.update(update.values.delta_ids)
    ids.update(h.id for h in update.values.histograms)
    ids.update(d.id for d in update.added)
    return ids


async def tail(args: TailOptions, out: TextIO, err: TextIO) -> int:
    channel: str | None = args.channel
    compression = None if args.compression == "none" else "deflate"
    printer = Printer(out, args.match, err)
    shown = 0
    async with BridgeClient(
        args.url,
        [channel] if channel else [],
        compression=compression,
        token=token_source(args),
        ssl=tls_context(args),
    ) as c:
        async for event in c.events():
            if isinstance(event, CatalogReceived) and channel is None:
                channel = first_host_channel(event.channels)
                if channel is None:
                    print("no host channel in the bridge's catalog; pass --channel", file=err)
                    return 1
                await c.subscribe([channel])
            elif isinstance(event, ChannelSynced | ChannelUpdated) and event.channel == channel:
                changed = changed_ids(event.update) if isinstance(event, ChannelUpdated) else None
                printer.show(c.views[channel], changed, event.resync)
                shown += 1
                if args.count and shown >= args.count:
                    return 0
            elif isinstance(event, ServerError):
                print(f"bridge error on {event.channel or 'connection'}: {event.message}", file=err)
                if event.channel == channel:
                    return 1
            elif isinstance(event, Disconnected):
                print(f"disconnected ({event.code} {event.reason}); reconnecting", file=err)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)

    async def run() -> int:
        if args.timeout <= 0:
            return await tail(args, sys.stdout, sys.stderr)
        try:
            async with asyncio.timeout(args.timeout):
                return await tail(args, sys.stdout, sys.stderr)
        except TimeoutError:
            print(f"timed out after {args.timeout:g}s", file=sys.stderr)
            return 1

    try:
        return asyncio.run(run())
    except ConnectionRejected as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`tail ... | head`): exit quietly, like other filters.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
