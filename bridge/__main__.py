"""`metrics-bridge [serve] [options]` runs the bridge; `metrics-bridge tail ...` prints a stream.

`tail` needs only the Python client's dependencies (`pip install metrics-bridge`);
serving needs the [server] extra, and says so when it is missing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

__all__ = ["SERVER_EXTRA", "main"]

SERVER_EXTRA = "pip install 'metrics-bridge[server]'"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "tail":
        from bridge import tail

        return tail.main(args[1:])
    if args and args[0] == "serve":
        args = args[1:]
    try:
        from bridge.config import parse_config
        from bridge.server import serve_forever
    except ModuleNotFoundError as exc:
        print(f"metrics-bridge: serving needs {exc.name}: {SERVER_EXTRA}", file=sys.stderr)
        return 1
    config = parse_config(args)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    serve_forever(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
