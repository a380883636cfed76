"""`python -m collector` / `metrics-collector`: run the collector until SIGTERM or SIGINT.

It needs the [server] extra (gRPC, psutil), and says so when it is missing.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from metrics_shared.fd_limit import raise_open_file_limit

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from collector.config import parse_config
        from collector.security import StartupRefused
        from collector.server import CollectorServer
    except ModuleNotFoundError as exc:
        print(
            f"metrics-collector needs {exc.name}: pip install 'metrics-bridge[server]'",
            file=sys.stderr,
        )
        return 1
    config = parse_config(argv)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    limit = raise_open_file_limit()
    logging.getLogger("collector").info(
        "open-file limit %d (hard %d, was %d)", limit.soft, limit.hard, limit.before
    )
    try:
        asyncio.run(CollectorServer(config).serve())
    except (OSError, StartupRefused) as exc:
        logging.getLogger("collector").error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
