"""The ready file: written whole, read back, absent until written."""

from __future__ import annotations

from pathlib import Path

from metrics_shared.ready_file import read_ready_file, write_ready_file


def test_what_is_written_is_read_back_and_no_temporary_file_remains(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    write_ready_file(path, {"grpc": "127.0.0.1:5"})
    assert read_ready_file(path) == {"grpc": "127.0.0.1:5"}
    assert [p.name for p in tmp_path.iterdir()] == ["ready.json"]


def test_a_ready_file_not_written_yet_reads_as_none(tmp_path: Path) -> None:
    assert read_ready_file(tmp_path / "ready.json") is None


def test_writing_again_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    write_ready_file(str(path), {"ws": "a:1"})
    write_ready_file(str(path), {"ws": "b:2"})
    assert read_ready_file(path) == {"ws": "b:2"}
