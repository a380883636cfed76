"""Options declared on a config dataclass: flag, else environment variable,
else the field's default; help shows defaults and variables."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from metrics_shared.argument_types import at_least
from metrics_shared.options import CommandLine, option


@dataclass(frozen=True)
class Example:
    size: int = field(default=3, metadata=option("how many", at_least(int), metavar="N"))
    ratio: float = field(default=0.5, metadata=option("how much", float))
    mode: str = field(default="fast", metadata=option("which way", choices=("fast", "slow")))
    names: tuple[str, ...] = field(
        default=("a",), metadata=option("a name; repeatable", flag="--name", repeatable=True)
    )
    verbose: bool = field(default=False, metadata=option("say more", switch=True))
    target: str = field(
        default="here", metadata=option("where to", positional=True, env="EXAMPLE_TARGET")
    )
    path: str | None = field(default=None, metadata=option("a file", metavar="PATH"))
    computed: int = field(
        default_factory=lambda: 7, metadata=option("derived", type=int, shown_default="seven")
    )
    internal: str = "not an option"


def command_line() -> CommandLine:
    return CommandLine(Example, prog="example", description="An example.", env_prefix="EX_")


def parse(argv: list[str], env: dict[str, str] | None = None) -> Example:
    return Example(**command_line().parse(argv, env or {}))


def test_without_flags_or_variables_every_field_keeps_its_default() -> None:
    assert parse([]) == Example(computed=7)


def test_flags_set_options() -> None:
    config = parse(
        ["there", "--size", "5", "--mode", "slow", "--name", "b", "--name", "c", "--verbose"]
    )
    assert (config.target, config.size, config.mode) == ("there", 5, "slow")
    assert (config.names, config.verbose) == (("b", "c"), True)


def test_variables_are_named_after_the_flag_unless_the_option_names_its_own() -> None:
    env = {
        "EX_SIZE": "9",
        "EX_NAME": "x, y,,",
        "EX_VERBOSE": "1",
        "EXAMPLE_TARGET": "yonder",
        "EX_PATH": "/tmp/p",
    }
    config = parse([], env)
    assert (config.size, config.names, config.verbose) == (9, ("x", "y"), True)
    assert (config.target, config.path) == ("yonder", "/tmp/p")


@pytest.mark.parametrize(("text", "on"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_a_switch_variable_is_on_unless_empty_or_0(text: str, on: bool) -> None:
    assert parse([], {"EX_VERBOSE": text}).verbose is on


def test_a_flag_wins_over_its_variable_even_a_bad_one() -> None:
    assert parse(["--size", "4"], {"EX_SIZE": "lots"}).size == 4
    assert parse(["--name", "z"], {"EX_NAME": "x,y"}).names == ("z",)


@pytest.mark.parametrize(
    ("variable", "text", "problem"),
    [
        ("EX_SIZE", "0", "EX_SIZE: must be at least 1, got '0'"),
        ("EX_RATIO", "half", "EX_RATIO: invalid value 'half'"),
        ("EX_MODE", "odd", "EX_MODE: 'odd' is not one of fast, slow"),
    ],
)
def test_a_bad_variable_is_a_usage_error_naming_it(
    variable: str, text: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse([], {variable: text})
    assert caught.value.code == 2
    assert problem in capsys.readouterr().err


def test_a_bad_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse(["--mode", "odd"])
    assert caught.value.code == 2
    assert "invalid choice: 'odd'" in capsys.readouterr().err


def test_help_shows_defaults_variables_and_what_is_off_unless_set() -> None:
    text = " ".join(command_line().format_help().split())
    assert "--size N how many (default: 3; env EX_SIZE)" in text
    assert "how much (default: 0.5; env EX_RATIO)" in text
    assert "(default: a; env EX_NAME, values separated by commas)" in text
    assert "say more (off unless set; env EX_VERBOSE=1)" in text
    assert "where to (default: here; env EXAMPLE_TARGET)" in text
    assert "--path PATH a file (off unless set; env EX_PATH)" in text
    assert "derived (default: seven; env EX_COMPUTED)" in text
    assert "internal" not in text


def test_options_list_flags_variables_and_shown_defaults() -> None:
    rows = [(o.flag, o.variable, o.default_text) for o in command_line().options]
    assert rows == [
        ("--size", "EX_SIZE", "3"),
        ("--ratio", "EX_RATIO", "0.5"),
        ("--mode", "EX_MODE", "fast"),
        ("--name", "EX_NAME", "a"),
        ("--verbose", "EX_VERBOSE", "off"),
        ("target", "EXAMPLE_TARGET", "here"),
        ("--path", "EX_PATH", "off"),
        ("--computed", "EX_COMPUTED", "seven"),
    ]


def test_version_prints_the_program_and_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    cli = CommandLine(Example, prog="example", description="", env_prefix="EX_", version="1.2.3")
    with pytest.raises(SystemExit) as exited:
        cli.parse(["--version"], {})
    assert exited.value.code == 0
    assert capsys.readouterr().out == "example 1.2.3\n"
