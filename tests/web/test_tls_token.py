"""The JS client in Node and the dashboard in Chromium, over wss:// with a token, against
a real bridge run with `--auth jwt --tls-cert ...` (a trustme CA made here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.bridge.stack import bridge, collector
from tests.support.processes import ServerProcess
from tests.support.secure_bridge import SecureBridgeFiles
from tests.support.timing import scaled
from tests.support.tokens import token
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, HOST_SOURCE, ms
from tests.web.dashboard import Dashboard
from tests.web.follower import NodeFollower

CHANNEL = f"c1/{HOST_SOURCE}"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SecureBridgeFiles, ServerProcess]]:
    files = SecureBridgeFiles(tmp_path_factory.mktemp("web-tls"))
    with (
        collector("--host-source", HOST_SOURCE) as col,
        bridge(col.addresses["grpc"], *files.args) as br,
    ):
        yield files, br


@pytest.mark.node
async def test_the_js_client_connects_with_a_token_and_refreshes_it_in_band(
    stack: tuple[SecureBridgeFiles, ServerProcess], tmp_path: Path
) -> None:
    files, process = stack
    token_file = tmp_path / "token"
    token_file.write_text(token(ttl=2))  # refreshed at 80% of its life, 1.6 s
    env = {"NODE_EXTRA_CA_CERTS": str(files.ca_file), "METRICS_BRIDGE_TOKEN_FILE": str(token_file)}
    async with NodeFollower(process.addresses["url"], CHANNEL, env=env) as js:
        await js.wait_data(1, within=20)
        token_file.write_text(token(ttl=600))
        # Past the first token's exp plus the bridge's 5 s leeway: without the
        # refresh the bridge would have closed with 4001 and the client reconnected.
        await asyncio.sleep(scaled(8))
        seen = len(js.data)
        await js.wait_data(seen + 2)
        states = [d["state"] for d in js.of("connection")]
        assert states.count("connecting") == 1, js.events


@pytest.mark.node
async def test_the_js_client_stops_on_a_bad_token_with_4501(
    stack: tuple[SecureBridgeFiles, ServerProcess],
) -> None:
    files, process = stack
    bad = token(b"not-the-bridges-secret-but-32-bytes-long")
    env = {"NODE_EXTRA_CA_CERTS": str(files.ca_file), "METRICS_BRIDGE_TOKEN": bad}
    async with NodeFollower(process.addresses["url"], CHANNEL, env=env) as js:
        closed = await js.wait_event("connection", lambda d: d["state"] == "closed")
    assert closed["code"] == 4501


@pytest.mark.browser
def test_the_dashboard_over_https_takes_its_token_from_the_fragment_and_hides_it(
    stack: tuple[SecureBridgeFiles, ServerProcess], tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run `make browser-deps`")
    files, process = stack
    # Chromium trusts the bridge's trustme-issued key through an SPKI pin (its own
    # certificate store is NSS, which a test cannot populate without certutil).
    pin = f"--ignore-certificate-errors-spki-list={files.spki_sha256()}"
    base = "https://" + process.addresses["ws"] + "/"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, pin],
            headless=True,
        )
        try:
            context.set_default_timeout(ms(30))
            page = context.pages[0] if context.pages else context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            dashboard = Dashboard(page).open(f"{base}#token={token()}&channel={CHANNEL}")
            assert "token=" not in page.url, "the token stayed in the address bar"
            dashboard.wait_badge("live", timeout=20)
            dashboard.wait_value("system_cpu_percent", timeout=20)
            assert page.inner_text("#channel-title") == CHANNEL
            assert page.url.endswith(f"#channel={CHANNEL}")
            page.reload()  # the token is kept in this tab's sessionStorage
            Dashboard(page).wait_badge("live", timeout=20)
            assert errors == []
        finally:
            context.close()
