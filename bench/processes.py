"""Start the processes under test (`python -m MODULE ... --ready-file F`) and stop them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Server:
    """One server process; `addresses` is what it wrote to its ready file."""

    def __init__(self, module: str, args: list[str], timeout: float = 60.0) -> None:
        self.module = module
        self._dir = tempfile.TemporaryDirectory(prefix=f"bench-{module}-")
        ready = Path(self._dir.name) / "ready.json"
        self.log_path = Path(self._dir.name) / "log.txt"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, *args, "--ready-file", str(ready)],
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not (ready.exists() and ready.stat().st_size > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{module} did not start:\n{self.log()}")
            time.sleep(0.05)
        time.sleep(0.05)
        self.addresses: dict[str, str] = json.loads(ready.read_text())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._dir.cleanup()
