"""`metrics-bridge [serve] [options]` runs the bridge; `metrics-bridge tail ...` prints a stream."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from bridge.config import parse_config


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "tail":
        try:
            tail = importlib.import_module("bridge.tail")
        except ModuleNotFoundError as exc:
            if exc.name != "bridge.tail":
                raise
            print(
                "metrics-bridge tail: not available in this build (bridge/tail.py is missing)",
                file=sys.stderr,
            )
            return 2
        return int(tail.main(args[1:]))
    if args and args[0] == "serve":
        args = args[1:]
    config = parse_config(args)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from bridge.server import serve_forever

    serve_forever(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
