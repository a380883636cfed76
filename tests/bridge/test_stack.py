"""`make run` (python -m bridge.stack): collector and bridge together, Ctrl-C stops both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.processes import REPO
from tests.support.timing import scaled, wait_until


def lines_of(stream: object) -> tuple[list[str], threading.Thread]:
    lines: list[str] = []

    def read() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.decode(errors="replace"))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return lines, thread


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=scaled(5)) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@pytest.fixture
def stack() -> Iterator[tuple[subprocess.Popen[bytes], list[str]]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "METRICS_COLLECTOR_LISTEN": "127.0.0.1:0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.stack", "--listen", "127.0.0.1:0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines, _ = lines_of(process.stdout)
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_run_serves_the_dashboard_and_ctrl_c_stops_both_processes(
    stack: tuple[subprocess.Popen[bytes], list[str]],
) -> None:
    process, lines = stack

    def dashboard_url() -> str | None:
        match = re.search(r"dashboard: (http://\S+/)", "".join(lines))
        return match.group(1) if match else None

    wait_until(lambda: dashboard_url() is not None, 30, "the dashboard URL to be printed")
    url = dashboard_url()
    assert url is not None
    wait_until(lambda: status_of(url + "readyz") == 200, 20, "the bridge to follow its collector")
    assert status_of(url) == 200

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert process.wait(timeout=scaled(30)) == 0
    children = subprocess.run(
        ["pgrep", "-s", str(process.pid)], capture_output=True, text=True, check=False
    )
    assert children.stdout.strip() == "", f"left running: {children.stdout}"
