"""What `pip install` of the built package gives an operator: both commands run
from a fresh venv outside the repository (the repository is not on sys.path),
and the dashboard they serve at `/` shows live data in Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from metrics_bridge.v1 import bridge_pb2
from tests.support.processes import REPO, ServerProcess
from tests.support.timing import scaled
from tests.web.conftest import ms, wait_bridge_ready
from tests.web.dashboard import Dashboard

pytestmark = pytest.mark.browser

PROTOCOL = "metrics-bridge.v1"


def run(*command: str | Path, cwd: Path) -> str:
    """Run a command with the repository nowhere in its environment; its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_the_wheel_installs_both_commands_and_serves_a_live_dashboard(
    tmp_path: Path, page: Page
) -> None:
    dist = tmp_path / "dist"
    # The sdist first, then the wheel built from it: both hold what the processes need.
    output = run(sys.executable, "-m", "build", "--outdir", dist, REPO, cwd=tmp_path)
    assert "deprecat" not in output.lower(), output
    (wheel,) = dist.glob("metrics_bridge-*.whl")
    assert len(list(dist.glob("metrics_bridge-*.tar.gz"))) == 1

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bin_dir = venv / "bin"
    run(bin_dir / "python", "-m", "pip", "install", "-q", f"{wheel}[server]", cwd=tmp_path)
    where = run(
        bin_dir / "python", "-c", "import bridge, sys; print(bridge.__file__)", cwd=tmp_path
    )
    assert Path(where.strip()).is_relative_to(venv), where
    version = run(bin_dir / "python", "-m", "pip", "show", "metrics-bridge", cwd=tmp_path)
    number = next(line.split()[1] for line in version.splitlines() if line.startswith("Version:"))
    assert run(bin_dir / "metrics-collector", "--version", cwd=tmp_path) == (
        f"metrics-collector {number}\n"
    )
    assert (
        run(bin_dir / "metrics-bridge", "--version", cwd=tmp_path) == f"metrics-bridge {number}\n"
    )

    env = {"PYTHONPATH": "", "VIRTUAL_ENV": ""}
    collector = ServerProcess(
        "collector",
        ["--listen", "127.0.0.1:0", "--interval", "0.2", "--host-source", "wheelhost"],
        env,
        command=[str(bin_dir / "metrics-collector")],
        cwd=tmp_path,
    )
    bridge = ServerProcess(
        "bridge", [], env, command=[str(bin_dir / "metrics-bridge")], cwd=tmp_path
    )
    try:
        collector.start()
        bridge.args = ["--listen", "127.0.0.1:0", "--collector", collector.addresses["grpc"]]
        bridge.start()
        ws = bridge.addresses["ws"]
        wait_bridge_ready(ws)
        dashboard = Dashboard(page).open(f"http://{ws}/")
        dashboard.wait_badge("live", timeout=20)
        tile = '.tile[data-channel="wheelhost/wheelhost"][data-state="live"]'
        page.wait_for_selector(tile, timeout=ms(20))  # the landing view: the fleet overview
        page.click(tile)
        dashboard.wait_value("system_cpu_percent", timeout=20)
        assert page.inner_text("#channel-title") == "wheelhost/wheelhost"
        with connect(bridge.addresses["url"], subprotocols=[Subprotocol(PROTOCOL)]) as hello:
            frame = hello.recv(timeout=scaled(10))
        assert isinstance(frame, bytes)
        first = bridge_pb2.ServerMessage.FromString(frame)
        assert first.hello.server_version == number
    finally:
        bridge.cleanup()
        collector.cleanup()

    # Without [server], the Python client and `tail` work and nothing of gRPC is installed.
    client_venv = tmp_path / "client-venv"
    run(sys.executable, "-m", "venv", client_venv, cwd=tmp_path)
    python = client_venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    installed = run(python, "-m", "pip", "list", "--format=freeze", cwd=tmp_path).lower()
    assert "grpcio" not in installed and "psutil" not in installed, installed
    run(python, "-c", "import bridge.client, bridge.tail", cwd=tmp_path)
    run(client_venv / "bin" / "metrics-bridge", "tail", "--help", cwd=tmp_path)
    serve = subprocess.run(
        [client_venv / "bin" / "metrics-bridge"], capture_output=True, text=True, timeout=60
    )
    assert serve.returncode == 1
    assert "pip install 'metrics-bridge[server]'" in serve.stderr
