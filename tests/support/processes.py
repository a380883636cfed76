"""Start the collector and the bridge as real subprocesses on ephemeral ports.

Both servers take `--ready-file PATH`: once they serve, they write a JSON
object of their bound addresses there (e.g. {"grpc": "127.0.0.1:41234"}), so
tests can listen on port 0 and never race a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.timing import scaled, wait_until

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    module: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # An installed command (e.g. a venv's metrics-bridge) instead of `python -m module`.
    command: Sequence[str] | None = None
    cwd: Path = REPO
    proc: subprocess.Popen[bytes] | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    _dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def log_path(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name) / "log.txt"

    def start(self, timeout: float = 20) -> ServerProcess:
        self._dir = tempfile.TemporaryDirectory(prefix=f"{self.module}-")
        ready = Path(self._dir.name) / "ready.json"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "wb") as log:
            command = self.command or [sys.executable, "-m", self.module]
            self.proc = subprocess.Popen(
                [*command, *self.args, "--ready-file", str(ready)],
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def is_ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.module} exited with {self.proc.returncode}:\n{self.log()}"
                )
            return ready.exists() and ready.stat().st_size > 0

        wait_until(is_ready, timeout, f"{self.module} to become ready")
        self.addresses = json.loads(ready.read_text())
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=scaled(timeout))

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()


@contextmanager
def running(
    module: str, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(module, list(args), env or {}).start()
    try:
        yield server
    finally:
        server.cleanup()
