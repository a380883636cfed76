"""What a front-end developer installs: `npm pack` of web/ is the JS client alone
(ES modules, TypeScript types, @bufbuild/protobuf its only dependency, no
dashboard), and an app that installs the tarball follows a live channel."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.bridge.stack import bridge, collector
from tests.support.processes import REPO
from tests.support.timing import scaled
from tests.web.conftest import wait_bridge_ready

pytestmark = pytest.mark.node

WEB = REPO / "web"
CHANNEL = "c1/host"

# What the README shows, plus `ws` (Node 20 has no global WebSocket) and a count.
APP = """
import WebSocket from "ws";
import { MetricsBridgeClient } from "metrics-bridge-client";

const client = new MetricsBridgeClient(process.argv[2], { channels: [process.argv[3]], WebSocket });
let seen = 0;
client.addEventListener("data", (e) => {
  const { channel, state } = e.detail;
  const cpu = state.valuesByKey()["system_cpu_percent"];
  console.log(JSON.stringify({ channel, seq: state.seq, cpu }));
  if (++seen === 5) { client.close(); }
});
client.addEventListener("upstream", (e) => console.error("upstream", e.detail.state));
client.connect();
"""

# Type-checked against the package's declarations (tsc, checkJs).
TYPED = """
import { MetricsBridgeClient, ChannelState } from "metrics-bridge-client";

/** @param {string} url */
export function follow(url) {
  const client = new MetricsBridgeClient(url, { channels: ["c1/host"] });
  client.addEventListener("data", (e) => {
    const state = /** @type {CustomEvent<{state: ChannelState}>} */ (e).detail.state;
    /** @type {number} */
    const seq = state.seq;
    return seq;
  });
  return client;
}
"""


def npm(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        ["npm", *map(str, args), "--no-audit", "--no-fund"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=scaled(180),
    )
    assert done.returncode == 0, f"npm {args} failed:\n{done.stdout}\n{done.stderr}"
    assert "EBADENGINE" not in done.stderr, done.stderr
    return done.stdout


def test_the_packed_client_installs_into_an_app_and_follows_a_live_channel(
    tmp_path: Path,
) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    npm("pack", "--pack-destination", tmp_path, cwd=WEB)
    (tarball,) = tmp_path.glob("metrics-bridge-client-*.tgz")
    with tarfile.open(tarball) as packed:
        names = packed.getnames()
        manifest = json.load(packed.extractfile("package/package.json"))  # type: ignore[arg-type]
    assert "package/types/client.d.ts" in names
    assert "package/src/client.js" in names
    assert not [name for name in names if "dashboard" in name], names
    assert list(manifest["dependencies"]) == ["@bufbuild/protobuf"]

    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "private": true, "type": "module"}\n')
    ws_version = json.loads((WEB / "package.json").read_text())["devDependencies"]["ws"]
    npm("install", "--prefer-offline", tarball, f"ws@{ws_version}", cwd=app)
    (app / "follow.mjs").write_text(APP)
    (app / "typed.js").write_text(TYPED)
    tsc = subprocess.run(
        [
            WEB / "node_modules" / ".bin" / "tsc",
            *("--noEmit", "--allowJs", "--checkJs", "--strict", "--skipLibCheck"),
            *("--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022"),
            *("--lib", "es2022,dom"),
            "typed.js",
        ],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert tsc.returncode == 0, tsc.stdout + tsc.stderr

    with collector() as c, bridge(c.addresses["grpc"]) as b:
        wait_bridge_ready(b.addresses["ws"])
        done = subprocess.run(
            ["node", "follow.mjs", b.addresses["url"], CHANNEL],
            cwd=app,
            capture_output=True,
            text=True,
            timeout=scaled(60),
        )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 5
    assert {line["channel"] for line in lines} == {CHANNEL}
    seqs = [int(line["seq"]) for line in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert all(0 <= line["cpu"] <= 100 for line in lines)
