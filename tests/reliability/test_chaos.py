"""The short chaos run (make chaos has the long ones): 50 clients drop at random
for 30 s (abrupt, clean, blackhole), reconnect and resume; 0 gaps, and every
final state equals the reference client's at that position."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.processes import REPO
from tests.support.timing import scaled


def test_fifty_clients_dropping_at_random_for_30_s_see_no_gap(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    command = [sys.executable, "-m", "bench.chaos", "--clients", "50", "--seconds", "30"]
    result = subprocess.run(
        [*command, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text())
    assert figures["gaps"] == 0
    assert figures["mismatched"] == 0
    assert figures["checked"] >= 40
    assert figures["cycles"] >= 100
    assert all(count > 0 for count in figures["drops"].values())
    assert figures["recovered"] > 0
