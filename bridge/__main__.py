"""`metrics-bridge [serve] [options]` runs the bridge; `metrics-bridge tail ...` prints a stream."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from bridge import tail
from bridge.config import parse_config

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "tail":
        return tail.main(args[1:])
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
