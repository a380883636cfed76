"""`make run`: a collector and a bridge together with their defaults; Ctrl-C stops both.

Extra arguments go to the bridge (e.g. `python -m bridge.stack --heartbeat 5`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metrics_shared.ready_file import read_ready_file

__all__ = ["main"]

READY_TIMEOUT = 30.0


def start(module: str, args: list[str], ready: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module, *args, "--ready-file", str(ready)])


def wait_ready(process: subprocess.Popen[bytes], ready: Path, name: str) -> dict[str, str]:
    deadline = time.monotonic() + READY_TIMEOUT
    while (addresses := read_ready_file(ready)) is None:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start within {READY_TIMEOUT:.0f}s")
        time.sleep(0.05)
    return addresses


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in reversed(processes):
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    bridge_args = sys.argv[1:] if argv is None else argv
    processes: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, interrupt)
    with tempfile.TemporaryDirectory(prefix="metrics-bridge-run-") as tmp:
        try:
            collector_ready = Path(tmp) / "collector.json"
            processes.append(start("collector", [], collector_ready))
            grpc_address = wait_ready(processes[0], collector_ready, "collector")["grpc"]
            bridge_ready = Path(tmp) / "bridge.json"
            processes.append(
                start("bridge", ["--collector", grpc_address, *bridge_args], bridge_ready)
            )
            ws = wait_ready(processes[1], bridge_ready, "bridge")["ws"]
            print(
                f"\n  dashboard: http://{ws}/\n  websocket: ws://{ws}/ (subprotocol "
                f"metrics-bridge.v1)\n  collector: {grpc_address} (gRPC)\n  Ctrl-C stops both.\n",
                flush=True,
            )
            while all(p.poll() is None for p in processes):
                time.sleep(0.2)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            stop(processes)


if __name__ == "__main__":
    sys.exit(main())
