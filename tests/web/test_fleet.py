"""The fleet overview and the channel view in headless Chromium, against two real
collectors, pushed services (gauges and a histogram) and one bridge following both.

One stack serves the module (it must have run a while for history to mean
something); each test opens a fresh browser context. The test that kills a
collector runs last.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from metrics_bridge.v1 import collector_pb2, metrics_pb2
from tests.support.processes import ServerProcess
from tests.support.stack import gauge, push
from tests.support.timing import scaled, wait_until
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, EXPECTED_WHILE_DOWN, ms, wait_bridge_ready

pytestmark = pytest.mark.browser

HOSTS = {"c1": "alpha", "c2": "beta"}
# c1 samples at 10 updates/s (the render-cost case), c2 at 2.
SERVICES = [f"svc{i:02d}" for i in range(26)]  # with 2 hosts, checkout, api: 30 channels
INTERVAL = 0.1  # c1's host sampling: 10 updates/s
INTERVALS = {"c1": INTERVAL, "c2": 0.5}
RUN_FIRST = 12.0  # seconds the stack runs before the first page opens


@dataclass
class Fleet:
    collectors: dict[str, ServerProcess]
    bridge: ServerProcess
    started: float
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://{self.bridge.addresses['ws']}/"


def histogram(step: int) -> collector_pb2.Sample:
    counts = [1 + step % 3, 5, 10 + step % 5, 4, 1, 0]
    return collector_pb2.Sample(
        name="latency",
        kind=metrics_pb2.METRIC_KIND_HISTOGRAM,
        unit="ms",
        histogram=metrics_pb2.Histogram(
            bounds=[5, 10, 25, 50, 100], counts=counts, count=sum(counts), sum=20.0 * sum(counts)
        ),
    )


def pushing(fleet: Fleet) -> None:
    """Every service pushes once a second (checkout, api and the svcNN on c1)."""
    address = fleet.collectors["c1"].addresses["grpc"]
    step = 0
    while not fleet.stop.is_set():
        push(address, "checkout", [[gauge("queue_depth", float(step % 17), queue="emails")]])
        push(address, "api", [[histogram(step)]])
        for name in SERVICES:
            push(address, name, [[gauge("requests_in_flight", float((step + len(name)) % 9))]])
        step += 1
        fleet.stop.wait(1.0)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    collectors: dict[str, ServerProcess] = {}
    bridge: ServerProcess | None = None
    fleet: Fleet | None = None
    thread: threading.Thread | None = None
    try:
        for name, host in HOSTS.items():
            interval = str(INTERVALS[name])
            args = ["--listen", "127.0.0.1:0", "--interval", interval, "--host-source", host]
            collectors[name] = ServerProcess("collector", args).start()
        args = ["--listen", "127.0.0.1:0", "--heartbeat", "1"]
        for name, process in collectors.items():
            args += ["--collector", f"{name}={process.addresses['grpc']}"]
        bridge = ServerProcess("bridge", args).start()
        wait_bridge_ready(bridge.addresses["ws"])
        fleet = Fleet(collectors, bridge, time.monotonic())
        thread = threading.Thread(target=pushing, args=(fleet,), daemon=True)
        thread.start()
        yield fleet
    finally:
        if fleet is not None:
            fleet.stop.set()
        if thread is not None:
            thread.join(timeout=scaled(10))
        for process in [*collectors.values(), *([bridge] if bridge is not None else [])]:
            process.cleanup()


@pytest.fixture
def context(fleet: Fleet) -> Iterator[BrowserContext]:
    """A fresh browser context (no storage) on a stack that has run RUN_FIRST seconds."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run `make browser-deps`")
    remaining = RUN_FIRST - (time.monotonic() - fleet.started)
    if remaining > 0:
        time.sleep(remaining)  # history needs a stack that has been running
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(ms(30))
        try:
            yield context
        finally:
            context.close()
            browser.close()


def open_page(context: BrowserContext, url: str, allowed: tuple[str, ...] = ()) -> Page:
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.goto(url)
    cast(Any, page).errors = errors
    cast(Any, page).allowed = allowed
    return page


def console_errors(page: Page) -> list[str]:
    allowed = cast(Any, page).allowed
    return [e for e in cast(Any, page).errors if not any(a in e for a in allowed)]


def tiles(page: Page) -> dict[str, dict[str, Any]]:
    return cast(
        dict[str, dict[str, Any]],
        page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('.tile')].map(t => [
                t.dataset.channel,
                {state: t.dataset.state ?? null, points: Number(t.dataset.points ?? 0),
                 age: t.querySelector('.age')?.textContent ?? ''}]))"""
        ),
    )


def dashboard(page: Page, expression: str) -> Any:
    return page.evaluate(
        f"() => {{ const d = globalThis.metricsBridgeDashboard; return {expression}; }}"
    )


ALL = [f"{c}/{h}" for c, h in HOSTS.items()] + ["c1/api", "c1/checkout"]
HOST = "c1/alpha"


def test_the_overview_lists_every_channel_of_two_collectors_and_pushed_services_live(
    fleet: Fleet, context: BrowserContext
) -> None:
    page = open_page(context, fleet.url)
    page.wait_for_function(
        "names => names.every(n =>"
        " document.querySelector(`.tile[data-channel='${n}'][data-state='live']`))",
        arg=ALL,
    )
    seen = tiles(page)
    assert len(seen) == 2 + 2 + len(SERVICES)
    assert {seen[name]["state"] for name in ALL} == {"live"}
    page.fill("#filter", "BETA")
    assert page.inner_text("#overview-count") == f"1 of {len(seen)} channels"
    assert page.is_visible(".tile[data-channel='c2/beta']")
    assert not page.is_visible(".tile[data-channel='c1/alpha']")
    assert console_errors(page) == []


def test_sparklines_and_charts_are_full_within_2s_of_the_first_load(
    fleet: Fleet, context: BrowserContext
) -> None:
    held = int(
        (time.monotonic() - fleet.started) / INTERVAL * 0.5
    )  # updates the stack made, halved
    assert held >= 25
    start = time.monotonic()
    page = open_page(context, fleet.url)
    page.wait_for_function(
        "([n, names]) => names.every(c =>"
        " Number(document.querySelector(`.tile[data-channel='${c}']`)?.dataset.points ?? 0) >= n)",
        arg=[held, [HOST]],
        timeout=ms(2),
    )
    filled = time.monotonic() - start
    page.click(f".tile[data-channel='{HOST}']")
    page.wait_for_function(
        "n => Number(document.getElementById('charts').dataset.points) >= n",
        arg=held,
        timeout=ms(2),
    )
    assert page.is_visible("#chart-cpu-total .uplot")
    assert page.inner_text("#channel-title") == HOST
    plotted = page.evaluate(
        "() => { const d = globalThis.metricsBridgeDashboard; return d.window().length; }"
    )
    assert plotted >= held, (plotted, held, filled)
    page.keyboard.press("Escape")
    page.wait_for_selector("#overview:not([hidden])")
    assert console_errors(page) == []


def test_a_hidden_tab_gets_fewer_messages_and_continues_without_a_snapshot(
    fleet: Fleet, context: BrowserContext
) -> None:
    page = open_page(context, f"{fleet.url}#channel={HOST}")
    page.wait_for_function(
        f"() => (globalThis.metricsBridgeDashboard?.received()['{HOST}'] ?? 0) > 20"
    )
    time.sleep(scaled(1))  # the history replay is over; count live messages only

    def received() -> int:
        return int(dashboard(page, f"d.received()['{HOST}'] ?? 0"))

    before = received()
    time.sleep(3)
    visible_rate = (received() - before) / 3
    snapshots = dashboard(page, f"d.snapshots()['{HOST}']")
    window_start = dashboard(page, "d.window().times[0]")

    set_visibility(page, "hidden")
    page.wait_for_function(
        f"() => globalThis.metricsBridgeDashboard.client.session.optionsOf('{HOST}').minIntervalMs"
        " === 10000"
    )
    time.sleep(scaled(0.5))
    before = received()
    time.sleep(3)
    hidden_rate = (received() - before) / 3
    assert visible_rate >= 5, visible_rate  # 10 updates/s at full rate
    assert hidden_rate <= visible_rate / 4, (hidden_rate, visible_rate)

    set_visibility(page, "visible")
    page.wait_for_function(
        f"() => {{ const s = globalThis.metricsBridgeDashboard.lastSubscribed();"
        f" return s && s.channel === '{HOST}' && s.intervalMs === 0; }}"
    )
    assert dashboard(page, "d.lastSubscribed().recovered") is True
    resumed_at = received()
    page.wait_for_function(
        f"n => globalThis.metricsBridgeDashboard.received()['{HOST}'] > n + 5", arg=resumed_at
    )
    assert dashboard(page, f"d.snapshots()['{HOST}']") == snapshots, "resumed with a snapshot"
    assert dashboard(page, "d.window().times[0]") == window_start, "the charts started over"
    assert console_errors(page) == []


def set_visibility(page: Page, state: str) -> None:
    """Emulates the Page Visibility API: the state the page reads, and the event."""
    page.evaluate(
        """state => {
            Object.defineProperty(document, 'visibilityState', {value: state, configurable: true});
            const hidden = state === 'hidden';
            Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }""",
        state,
    )


def test_a_histogram_service_is_charted_as_quantiles_and_buckets(
    fleet: Fleet, context: BrowserContext
) -> None:
    page = open_page(context, f"{fleet.url}#channel=c1/api")
    page.wait_for_selector("#chart-histograms .uplot")
    page.wait_for_selector("#chart-buckets .bar")
    columns = dashboard(page, "[...d.window().columns.keys()].filter(k => !k.startsWith('tile:'))")
    assert sorted(columns) == ["latency p50", "latency p90", "latency p99"]
    p90 = dashboard(page, "d.window().columns.get('latency p90').filter(v => v !== null)")
    assert len(p90) >= 5 and all(10 <= v <= 50 for v in p90), p90
    assert page.locator("#chart-buckets .bar").count() == 5  # the overflow bucket is empty
    assert console_errors(page) == []


def task_share(page: Page, seconds: float) -> float:
    """The renderer's busy share of one core over `seconds` (CDP TaskDuration)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def task_duration() -> float:
        metrics = cdp.send("Performance.getMetrics")["metrics"]
        return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

    first, started = task_duration(), time.monotonic()
    time.sleep(seconds)
    return (task_duration() - first) / (time.monotonic() - started)


def test_render_cost_of_the_channel_view_and_the_overview_stays_under_a_fifth_of_a_core(
    fleet: Fleet, context: BrowserContext
) -> None:
    channel = open_page(context, f"{fleet.url}#channel={HOST}")
    channel.wait_for_selector("#chart-cpu-total .uplot")
    time.sleep(scaled(1))
    channel_share = task_share(channel, 4)
    channel.close()
    overview = open_page(context, fleet.url)
    overview.wait_for_function("() => document.querySelectorAll('.tile[data-points]').length >= 20")
    time.sleep(scaled(1))
    overview_share = task_share(overview, 4)
    print(f"renderer busy: channel view {channel_share:.1%}, overview {overview_share:.1%}")
    assert channel_share < 0.20, channel_share
    assert overview_share < 0.20, overview_share


def test_killing_one_collector_turns_only_its_tiles_stale(
    fleet: Fleet, context: BrowserContext
) -> None:
    page = open_page(context, fleet.url, allowed=(EXPECTED_WHILE_DOWN.pattern,))
    page.wait_for_selector(".tile[data-channel='c2/beta'][data-state='live']")
    fleet.collectors["c2"].kill()
    page.wait_for_selector(".tile[data-channel='c2/beta'][data-state='stale']", timeout=ms(20))
    seen = tiles(page)
    assert {name for name, tile in seen.items() if tile["state"] != "live"} == {"c2/beta"}
    wait_until(lambda: tiles(page)["c2/beta"]["age"].endswith("ago"), 15, "the stale tile's age")
    assert console_errors(page) == []
