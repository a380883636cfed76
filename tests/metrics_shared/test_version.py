"""`--version` and Hello's server_version come from the package metadata."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from bridge.server import server_version
from metrics_shared.version import package_version
from tests.support.processes import REPO


def test_the_version_is_the_installed_distributions() -> None:
    assert package_version() == metadata.version("metrics-bridge")
    assert server_version() == package_version()


@pytest.mark.parametrize(
    ("module", "prog"),
    [("collector", "metrics-collector"), ("bridge", "metrics-bridge")],
)
def test_both_commands_print_their_version(module: str, prog: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == f"{prog} {package_version()}\n"
