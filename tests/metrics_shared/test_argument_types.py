"""at_least: a number converter with a lower bound."""

from __future__ import annotations

import argparse

import pytest

from metrics_shared.argument_types import at_least


def test_at_least_converts_and_accepts_the_minimum() -> None:
    assert at_least(int, 0)("0") == 0
    assert at_least(float, 0.5)("0.5") == 0.5


def test_at_least_refuses_values_below_the_minimum() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be at least 1, got '0'"):
        at_least(int)("0")


def test_at_least_refuses_text_that_is_not_of_its_kind() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"not a int: '1.5'"):
        at_least(int)("1.5")
