"""`metrics-bridge tail`: a live terminal view of one channel, built on bridge.client.

On a terminal the view is redrawn in place; when stdout is not a TTY every
sync prints the whole channel and every update prints the series it changed,
one `channel seq key value unit` line each, so the output can be piped.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
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
from metrics_bridge.v1 import bridge_pb2, metrics_pb2

DEFAULT_URL = "ws://127.0.0.1:8765/"
_UNITS_SHOWN_RAW = {"", "1"}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="metrics-bridge tail",
        description="Show a bridge channel's live values in the terminal. "
        "Every option also reads an environment variable, named in its help.",
    )
    parser.add_argument(
        "url",
        nargs="?",
        default=env("METRICS_BRIDGE_URL", DEFAULT_URL),
        help="bridge WebSocket URL (METRICS_BRIDGE_URL; default %(default)s)",
    )
    parser.add_argument(
        "--channel",
        default=env("METRICS_BRIDGE_TAIL_CHANNEL"),
        help="channel to show, '<collector>/<source>' (METRICS_BRIDGE_TAIL_CHANNEL; "
        "default: the first host channel in the bridge's catalog)",
    )
    parser.add_argument(
        "--match",
        default=env("METRICS_BRIDGE_TAIL_MATCH", ""),
        help="only show series whose name contains this text (METRICS_BRIDGE_TAIL_MATCH)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        default=env("METRICS_BRIDGE_TAIL_ONCE", "") not in ("", "0"),
        help="print the channel's values once and exit (METRICS_BRIDGE_TAIL_ONCE=1)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=env("METRICS_BRIDGE_TAIL_COUNT", "0"),
        metavar="N",
        help="exit after N views: the first sync and N-1 updates (METRICS_BRIDGE_TAIL_COUNT; "
        "default 0 = run until interrupted)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=env("METRICS_BRIDGE_TAIL_TIMEOUT", "0"),
        metavar="SECONDS",
        help="give up with exit code 1 after this long (METRICS_BRIDGE_TAIL_TIMEOUT; "
        "default 0 = never)",
    )
    parser.add_argument(
        "--compression",
        choices=["deflate", "none"],
        default=env("METRICS_BRIDGE_TAIL_COMPRESSION", "deflate"),
        help="offer permessage-deflate (METRICS_BRIDGE_TAIL_COMPRESSION; default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default=env("METRICS_BRIDGE_LOG_LEVEL", "WARNING"),
        help="logging level on stderr (METRICS_BRIDGE_LOG_LEVEL; default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("--count must be 0 or more")
    if args.once:
        args.count = 1
    return args


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


class Printer:
    """Writes views: redrawn in place on a terminal, as lines otherwise."""

    def __init__(self, out: TextIO, match: str) -> None:
        self.out = out
        self.match = match
        self.tty = out.isatty()

    def show(self, view: ChannelView, changed: set[int] | None) -> None:
        series = [s for s in view.series() if self.match in s.name]
        position = view.position
        seq = position.seq if position is not None else 0
        if self.tty:
            self._redraw(view, series, changed)
            return
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
        lines = [
            f"\x1b[H\x1b[2J{view.channel}  epoch {position.epoch if position else 0:016x}"
            f"  seq {position.seq if position else 0}  at {stamp}",
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
    ids.update(h.id for h in update.values.histograms)
    ids.update(d.id for d in update.added)
    return ids


async def tail(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    channel: str | None = args.channel
    compression = None if args.compression == "none" else "deflate"
    printer = Printer(out, args.match)
    shown = 0
    async with BridgeClient(args.url, [channel] if channel else [], compression=compression) as c:
        async for event in c.events():
            if isinstance(event, CatalogReceived) and channel is None:
                channel = first_host_channel(event.channels)
                if channel is None:
                    print("no host channel in the bridge's catalog; pass --channel", file=err)
                    return 1
                await c.subscribe([channel])
            elif isinstance(event, ChannelSynced | ChannelUpdated) and event.channel == channel:
                changed = changed_ids(event.update) if isinstance(event, ChannelUpdated) else None
                printer.show(c.views[channel], changed)
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
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)

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
