"""Plain HTTP on the bridge's port: health, readiness, dashboard files."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bridge.stack import bridge, collector
from tests.support.processes import ServerProcess, running
from tests.support.timing import wait_until


def get(process: ServerProcess, path: str) -> tuple[int, str, bytes]:
    host, port = process.addresses["ws"].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("static")
    (root / "index.html").write_text("<!doctype html><title>dash</title>")
    (root / "assets").mkdir()
    (root / "assets" / "app.js").write_text("console.log('hi')")
    (root.parent / "secret.txt").write_text("secret")
    return root


@pytest.fixture(scope="module")
def served(static_dir: Path) -> Iterator[ServerProcess]:
    with collector() as col, bridge(col.addresses["grpc"], "--static-dir", str(static_dir)) as br:
        yield br


def test_healthz_answers_ok(served: ServerProcess) -> None:
    assert get(served, "/healthz")[0] == 200


def test_readyz_answers_ok_once_a_collector_stream_is_live(served: ServerProcess) -> None:
    wait_until(lambda: get(served, "/readyz")[0] == 200, 20, "readyz 200")


def test_readyz_answers_503_without_a_live_collector() -> None:
    with running("bridge", ["--listen", "127.0.0.1:0", "--collector", "c1=127.0.0.1:1"]) as br:
        status, _type, body = get(br, "/readyz")
    assert status == 503
    assert b"collector" in body


def test_root_serves_index_html(served: ServerProcess) -> None:
    status, content_type, body = get(served, "/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert b"<title>dash</title>" in body


def test_static_file_is_served_with_its_content_type(served: ServerProcess) -> None:
    status, content_type, body = get(served, "/assets/app.js")
    assert status == 200
    assert "javascript" in content_type
    assert body == b"console.log('hi')"


def test_missing_file_is_404(served: ServerProcess) -> None:
    assert get(served, "/nope.css")[0] == 404


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"]
)
def test_paths_outside_the_static_dir_are_404(served: ServerProcess, path: str) -> None:
    status, _type, body = get(served, path)
    assert status == 404
    assert b"secret" not in body
