"""Command-line options declared on a config dataclass, read from flags and from
environment variables.

A config dataclass is the one place an option's default and help live (as in
uvicorn's `Config`): each option is a field whose `metadata` is `option(...)`.
`CommandLine` builds the argparse parser from those fields and resolves every
value: the flag if given, else its environment variable, else the field's
default. The variable is the prefix plus the flag's name (`--max-sources` with
prefix METRICS_COLLECTOR_ reads METRICS_COLLECTOR_MAX_SOURCES) unless the option
names its own; a repeatable option's variable holds a comma-separated list; a
switch's variable is on unless empty or "0". A bad variable is a usage error
that names it. `--help` shows each option's default (or that it is off unless
set) and its variable; given a `version`, `--version` prints it and exits.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = ["LOG_LEVELS", "CommandLine", "ConfigOption", "Option", "option"]

METADATA_KEY = "option"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class Option:
    """How a config field is set from the command line (see `option`)."""

    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    env: str | None = None
    shown_default: str | None = None
    repeatable: bool = False
    switch: bool = False
    positional: bool = False


def option(
    help: str,
    type: Callable[[str], Any] | None = None,
    *,
    metavar: str | None = None,
    choices: Sequence[str] | None = None,
    flag: str | None = None,
    env: str | None = None,
    shown_default: str | None = None,
    repeatable: bool = False,
    switch: bool = False,
    positional: bool = False,
) -> dict[str, Option]:
    """Field metadata making a config field an option.

    `type` converts the text (argparse style: ArgumentTypeError or ValueError
    for bad text); `flag` defaults to the field name with dashes ("--max-sources");
    `env` names the variable when prefix + flag does not fit; `shown_default` is
    what `--help` says when the field's default would read poorly (a computed
    value, "" meaning "derived"); `repeatable` options hold a tuple; `switch`es
    take no value; a `positional` option is an optional positional argument.
    """
    spec = Option(
        help,
        type,
        metavar,
        tuple(choices) if choices is not None else None,
        flag,
        env,
        shown_default,
        repeatable,
        switch,
        positional,
    )
    return {METADATA_KEY: spec}


@dataclass(frozen=True, slots=True)
class ConfigOption:
    """One option of a config dataclass, resolved: names, default, its text."""

    name: str
    flag: str
    variable: str
    default: Any
    spec: Option

    @property
    def default_text(self) -> str:
        """The default as `--help` and the README show it; "off" for None or False."""
        if self.spec.shown_default is not None:
            return self.spec.shown_default
        return show(self.default)

    @property
    def off_unless_set(self) -> bool:
        return self.spec.shown_default is None and (self.default is None or self.default is False)


def show(value: Any) -> str:
    if value is None or value is False:
        return "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return ",".join(show(item) for item in value)
    return str(value)


def options_of(config: type[Any], env_prefix: str) -> Iterator[ConfigOption]:
    for item in dataclasses.fields(config):
        spec = item.metadata.get(METADATA_KEY)
        if spec is None:
            continue
        if item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = None
        flag = spec.flag or (item.name if spec.positional else "--" + item.name.replace("_", "-"))
        variable = spec.env or env_prefix + flag.lstrip("-").replace("-", "_").upper()
        yield ConfigOption(item.name, flag, variable, default, spec)


class CommandLine:
    """The parser for a config dataclass's options, and the values it resolves."""

    def __init__(
        self,
        config: type[Any],
        *,
        prog: str,
        description: str,
        env_prefix: str,
        epilog: str | None = None,
        version: str | None = None,
    ) -> None:
        self.options = list(options_of(config, env_prefix))
        self.parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
        if version is not None:
            self.parser.add_argument("--version", action="version", version=f"{prog} {version}")
        for item in self.options:
            self._add(item)

    def _add(self, item: ConfigOption) -> None:
        spec = item.spec
        variable = f"{item.variable}=1" if spec.switch else item.variable
        text = f"{spec.help} ({self._default_help(item)}; env {variable}"
        text += ", values separated by commas)" if spec.repeatable else ")"
        kwargs: dict[str, Any] = {"help": text.replace("%", "%%"), "default": None}
        if spec.switch:
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=spec.type, metavar=spec.metavar, choices=spec.choices)
            if spec.repeatable:
                kwargs["action"] = "append"
        if spec.positional:
            self.parser.add_argument(item.name, nargs="?", **kwargs)
        else:
            self.parser.add_argument(item.flag, dest=item.name, **kwargs)

    @staticmethod
    def _default_help(item: ConfigOption) -> str:
        return "off unless set" if item.off_unless_set else f"default: {item.default_text}"

    def format_help(self) -> str:
        return self.parser.format_help()

    def error(self, message: str) -> NoReturn:
        """Print usage and `message`, exit 2 (as for a bad flag)."""
        self.parser.error(message)

    def parse(self, argv: Sequence[str] | None, env: Mapping[str, str]) -> dict[str, Any]:
        """Every option's value by field name: flag, else variable, else default."""
        given = vars(self.parser.parse_args(argv))
        values: dict[str, Any] = {}
        for item in self.options:
            value = given[item.name]
            if value is not None:
                values[item.name] = tuple(value) if item.spec.repeatable else value
            elif item.variable in env:
                values[item.name] = self._from_variable(item, env[item.variable])
            else:
                values[item.name] = item.default
        return values

    def _from_variable(self, item: ConfigOption, text: str) -> Any:
        spec = item.spec
        if spec.switch:
            return text.strip() not in ("", "0")
        if spec.repeatable:
            parts = [part.strip() for part in text.split(",") if part.strip()]
            return tuple(self._convert(item, part) for part in parts)
        return self._convert(item, text)

    def _convert(self, item: ConfigOption, text: str) -> Any:
        convert = item.spec.type or str
        try:
            value = convert(text)
        except argparse.ArgumentTypeError as exc:
            self.error(f"{item.variable}: {exc}")
        except (TypeError, ValueError):
            self.error(f"{item.variable}: invalid value {text!r}")
        choices = item.spec.choices
        if choices is not None and value not in choices:
            self.error(f"{item.variable}: {text!r} is not one of {', '.join(choices)}")
        return value
