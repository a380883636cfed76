"""bench.run's options: sections, pinning, and keeping the sections not run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.run import SECTIONS, kept_sections, parse_args


def test_every_section_runs_by_default_with_servers_on_core_0() -> None:
    settings = parse_args([])
    assert settings.sections == list(SECTIONS)
    if len(os.sched_getaffinity(0)) > 1 and 0 in os.sched_getaffinity(0):
        assert settings.server_cores == [0]
        assert 0 not in settings.rest_cores


def test_sections_and_cores_can_be_chosen_and_pinning_turned_off() -> None:
    settings = parse_args(["--sections", "overload,budget", "--server-cores", ""])
    assert settings.sections == ["overload", "budget"]
    assert not settings.plan.enabled
    with pytest.raises(SystemExit):
        parse_args(["--sections", "overload,bogus"])


def test_a_partial_run_keeps_the_other_sections_of_the_last_results(tmp_path: Path) -> None:
    previous = tmp_path / "latest.json"
    previous.write_text(
        json.dumps(
            {
                "runs": [{"server": "bridge"}],
                "settings": {"clients": [100]},
                "machine": {"started": "then"},
                "overload": [{"old": True}],
                "section_times": {"fanout": {"seconds": 500}, "overload": {"seconds": 60}},
            }
        )
    )
    new = {
        "runs": [],
        "settings": {"clients": [20]},
        "machine": {"started": "now"},
        "overload": [{"new": True}],
        "section_times": {"overload": {"seconds": 70}},
    }
    merged = kept_sections(new, previous, ["overload"])
    assert merged["runs"] == [{"server": "bridge"}]
    assert (merged["settings"], merged["machine"]) == ({"clients": [100]}, {"started": "then"})
    assert merged["overload"] == [{"new": True}]
    assert merged["section_times"] == {"fanout": {"seconds": 500}, "overload": {"seconds": 70}}
    assert kept_sections(new, previous, list(SECTIONS)) is new
    assert kept_sections(new, tmp_path / "missing.json", ["overload"]) is new
