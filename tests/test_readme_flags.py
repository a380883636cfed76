"""README's flag tables ("Bridge configuration", "Collector configuration")
agree with the options and defaults of the config dataclasses and `--help`."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from bridge import config as bridge_config
from collector import config as collector_config
from metrics_shared.options import CommandLine
from tests.support.processes import REPO

SECTIONS: dict[str, Callable[[], CommandLine]] = {
    "Bridge configuration": bridge_config.command_line,
    "Collector configuration": collector_config.command_line,
}
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def readme_defaults(section: str) -> dict[str, str]:
    """flag -> default, from the `| flag | default | what |` table of a README section."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    defaults: dict[str, str] = {}
    for line in text[start : end if end >= 0 else None].splitlines():
        if not line.startswith("| `-"):
            continue
        cells = [cell.strip() for cell in CELL_SEPARATOR.split(line)[1:-1]]
        flag = cells[0].strip("`").split()[0]
        assert flag not in defaults, f"{flag} is in the {section} table twice"
        defaults[flag] = cells[1].replace("`", "")
    return defaults


@pytest.mark.parametrize("section", SECTIONS)
def test_readme_table_lists_every_option_with_its_default(section: str) -> None:
    options = {option.flag: option.default_text for option in SECTIONS[section]().options}
    assert readme_defaults(section) == options


@pytest.mark.parametrize("section", SECTIONS)
def test_help_shows_the_readme_default_of_every_option(section: str) -> None:
    command_line = SECTIONS[section]()
    help_text = " ".join(command_line.format_help().split())
    readme = readme_defaults(section)
    for option in command_line.options:
        shown = (
            "off unless set" if readme[option.flag] == "off" else f"default: {readme[option.flag]}"
        )
        assert f"({shown}; env {option.variable}" in help_text, option.flag
