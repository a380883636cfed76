"""Converters from option text to values, refusing bad text with a message that
says what was expected (argparse shows it as a usage error)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

__all__ = ["at_least"]

Number = TypeVar("Number", int, float)


def at_least(kind: Callable[[str], Number], minimum: float = 1) -> Callable[[str], Number]:
    """`kind(text)`, refused below `minimum`."""

    def convert(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value

    return convert
