"""Fixtures for the browser tests: a real collector and bridge that a test can
kill and restart on the same ports, and headless Debian Chromium driven by
Playwright (never `playwright install`: browsers cannot be downloaded here)."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.support.processes import REPO, ServerProcess
from tests.support.secure_bridge import SecureBridgeFiles
from tests.support.timing import scaled, wait_until
from tests.support.tokens import token

CHROMIUM = Path(os.environ.get("METRICS_BRIDGE_CHROMIUM", "/usr/bin/chromium"))
# The machine's network is closed: without these Chromium spams refused connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "artifacts"
COLLECTOR = "c1"
HOST_SOURCE = "webhost"
CHANNEL = f"{COLLECTOR}/{HOST_SOURCE}"
# What Chromium itself logs while the bridge is down on purpose.
EXPECTED_WHILE_DOWN = re.compile(r"^WebSocket connection to 'wss?://127\.0\.0\.1:\d+/' failed")


def ms(seconds: float) -> float:
    """A scaled timeout in the milliseconds Playwright takes."""
    return scaled(seconds) * 1000


def wait_bridge_ready(
    ws_address: str, timeout: float = 30, tls: ssl.SSLContext | None = None
) -> None:
    """Until the bridge's /readyz says a collector stream is live (its channels are known)."""
    url = f"{'https' if tls else 'http'}://{ws_address}/readyz"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5, context=tls) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    wait_until(ready, timeout, f"bridge at {ws_address} to follow its collector")


@dataclass
class WebStack:
    """A collector and a bridge that keep their ports across kill and restart."""

    heartbeat: float = 0.5
    # Set: the bridge runs with --auth jwt over TLS, and the page gets a token.
    secure: SecureBridgeFiles | None = None
    collector: ServerProcess | None = None
    bridge: ServerProcess | None = None
    grpc_address: str = "127.0.0.1:0"
    ws_address: str = "127.0.0.1:0"
    stopped: list[ServerProcess] = field(default_factory=list)

    @property
    def page_url(self) -> str:
        if self.secure is not None:
            return f"https://{self.ws_address}/#token={token(ttl=3600)}"
        return f"http://{self.ws_address}/"

    @property
    def channel_url(self) -> str:
        """The page opened on the host channel's view (the landing view is the overview)."""
        joiner = "&" if self.secure is not None else "#"
        return f"{self.page_url}{joiner}channel={CHANNEL}"

    def start_collector(self) -> None:
        args = ["--listen", self.grpc_address, "--interval", "0.2", "--host-source", HOST_SOURCE]
        self.collector = ServerProcess("collector", args).start()
        self.grpc_address = self.collector.addresses["grpc"]

    def start_bridge(self) -> None:
        args = [
            "--listen",
            self.ws_address,
            "--collector",
            f"{COLLECTOR}={self.grpc_address}",
            "--heartbeat",
            str(self.heartbeat),
            *(self.secure.args if self.secure is not None else []),
        ]
        self.bridge = ServerProcess("bridge", args).start()
        self.ws_address = self.bridge.addresses["ws"]

    def kill_collector(self) -> None:
        assert self.collector is not None
        self.collector.kill()
        self.stopped.append(self.collector)

    def kill_bridge(self) -> None:
        assert self.bridge is not None
        self.bridge.kill()
        self.stopped.append(self.bridge)

    def cleanup(self) -> None:
        for process in [self.bridge, self.collector, *self.stopped]:
            if process is not None:
                process.cleanup()


@pytest.fixture(params=["ws", "wss-token"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WebStack]:
    """Every dashboard test runs twice: on a plain loopback bridge, as `make run` serves
    it, and over TLS (a trustme CA) with `--auth jwt`, the page given a token."""
    secure = SecureBridgeFiles(tmp_path) if request.param == "wss-token" else None
    web = WebStack(secure=secure)
    try:
        web.start_collector()
        web.start_bridge()
        wait_bridge_ready(web.ws_address, tls=secure.client_ssl() if secure else None)
        yield web
    finally:
        web.cleanup()


@dataclass
class Console:
    """Everything the page reported as an error."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: run `make browser-deps`")
    args = list(CHROMIUM_ARGS)
    stack = request.getfixturevalue("stack") if "stack" in request.fixturenames else None
    if isinstance(stack, WebStack) and stack.secure is not None:
        # Chromium's certificate store is NSS, which a test cannot fill without
        # certutil: it trusts the bridge's trustme-issued key through an SPKI pin.
        args.append(f"--ignore-certificate-errors-spki-list={stack.secure.spki_sha256()}")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=args,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(ms(30))
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def console() -> Iterator[Console]:
    """Fails the test if the page logged an error it did not expect."""
    seen = Console()
    yield seen
    assert seen.unexpected() == [], f"errors on the console: {seen.unexpected()}"


@pytest.fixture
def page(browser: BrowserContext, console: Console, request: pytest.FixtureRequest) -> Page:
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    return page


def save_artifact(page: Page, name: str) -> Path:
    """A full-page screenshot in artifacts/ (gitignored), for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed")
    return path
