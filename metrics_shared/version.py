"""The installed package's version, the one `--version` prints and Hello carries."""

from __future__ import annotations

from importlib import metadata

__all__ = ["DISTRIBUTION", "package_version"]

DISTRIBUTION = "metrics-bridge"


def package_version() -> str:
    """The version in the package metadata (pyproject.toml's, once installed);
    "0+unknown" when the code runs from a tree that was never installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"
