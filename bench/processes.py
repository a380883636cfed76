"""Start the processes under test (`COMMAND ... --ready-file F`) and stop them.

`Server.module` runs `python -m MODULE`, `Server.node` a script of bench/node
(its packages installed by `make bench-deps`). Each writes the addresses it
bound as JSON to its ready file once it serves.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NODE_DIR = REPO / "bench" / "node"


class Server:
    """One server process; `addresses` is what it wrote to its ready file."""

    def __init__(self, name: str, command: list[str], timeout: float = 60.0) -> None:
        self.name = name
        self._dir = tempfile.TemporaryDirectory(prefix=f"bench-{name}-")
        ready = Path(self._dir.name) / "ready.json"
        self.log_path = Path(self._dir.name) / "log.txt"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*command, "--ready-file", str(ready)],
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not (ready.exists() and ready.stat().st_size > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start:\n{self.log()}")
            time.sleep(0.05)
        time.sleep(0.05)
        self.addresses: dict[str, str] = json.loads(ready.read_text())

    @classmethod
    def module(cls, module: str, args: list[str], timeout: float = 60.0) -> Server:
        """`python -m MODULE ARGS` with this interpreter."""
        return cls(module, [sys.executable, "-m", module, *args], timeout)

    @classmethod
    def node(cls, script: str, args: list[str], timeout: float = 60.0) -> Server:
        """`node bench/node/SCRIPT ARGS`; its packages must be installed (make bench-deps)."""
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed (the ws baseline needs Node 20)")
        if not (NODE_DIR / "node_modules").is_dir():
            raise RuntimeError(f"{NODE_DIR}/node_modules is missing: run `make bench-deps`")
        return cls(script, [node, str(NODE_DIR / script), *args], timeout)

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
