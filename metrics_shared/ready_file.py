"""The ready file: a JSON object of the addresses a process serves on, written
once it serves. Launchers (tests, `make run`, the bench) poll for it, so it is
written atomically: a reader sees no file or the whole object."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["read_ready_file", "write_ready_file"]


def write_ready_file(path: str | Path, addresses: Mapping[str, str]) -> None:
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(dict(addresses)))
    os.replace(temporary, target)


def read_ready_file(path: str | Path) -> dict[str, str] | None:
    """The addresses written to `path`, or None while there is no file yet."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    addresses: dict[str, str] = json.loads(text)
    return addresses
