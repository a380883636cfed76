"""The dashboard in headless Chromium against a real collector and bridge."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.support.stack import gauge, push
from tests.web.conftest import CHANNEL, EXPECTED_WHILE_DOWN, Console, WebStack, save_artifact
from tests.web.dashboard import Dashboard

pytestmark = pytest.mark.browser

CPU = "system_cpu_percent"


def test_page_shows_live_values_within_seconds_of_load(stack: WebStack, page: Page) -> None:
    dashboard = Dashboard(page).open(stack.channel_url)
    dashboard.wait_badge("live", timeout=15)
    dashboard.wait_value(CPU, timeout=15)
    assert 0 <= dashboard.value(CPU) <= 100
    assert page.inner_text("#channel-title") == CHANNEL
    dashboard.wait_points(10, timeout=15)
    assert page.is_visible("#chart-cpu-total .uplot")
    assert page.is_visible("#chart-memory .uplot")
    save_artifact(page, "dashboard.png")


def test_table_lists_every_series_of_the_channel(stack: WebStack, page: Page) -> None:
    dashboard = Dashboard(page).open(stack.channel_url)
    dashboard.wait_value(CPU, timeout=15)
    keys = page.eval_on_selector_all("#series tbody tr", "rows => rows.map(r => r.dataset.key)")
    assert 'system_memory_bytes{state="total"}' in keys
    assert "system_uptime_seconds" in keys
    count = page.evaluate(
        "() => { const d = globalThis.metricsBridgeDashboard;"
        " return d.client.channel(d.selected()).series.size; }"
    )
    assert len(keys) == count


def test_killing_the_bridge_shows_reconnecting_and_a_restart_continues_the_charts(
    stack: WebStack, page: Page, console: Console
) -> None:
    console.allowed.append(EXPECTED_WHILE_DOWN)
    dashboard = Dashboard(page).open(stack.channel_url)
    dashboard.wait_badge("live", timeout=15)
    dashboard.wait_points(5)
    before = dashboard.window()

    stack.kill_bridge()
    dashboard.wait_badge("reconnecting", timeout=10)
    assert dashboard.badge_text.startswith("reconnecting")

    stack.start_bridge()
    dashboard.wait_badge("live")
    dashboard.wait_seq_past(before["epoch"], before["seq"])
    dashboard.wait_points(before["points"] + 5)
    after = dashboard.window()
    assert after["first"] == before["first"], "the chart window was reset"
    assert after["last"] > before["last"]


def test_killing_the_collector_shows_stale_and_then_recovers(stack: WebStack, page: Page) -> None:
    dashboard = Dashboard(page).open(stack.channel_url)
    dashboard.wait_badge("live", timeout=15)
    dashboard.wait_points(3)

    stack.kill_collector()
    dashboard.wait_badge("stale", timeout=20)
    assert dashboard.badge_text == "upstream stale"
    stale = dashboard.window()

    stack.start_collector()
    dashboard.wait_badge("live", timeout=60)
    dashboard.wait_seq_past(stale["epoch"], stale["seq"])
    assert dashboard.window()["epoch"] != stale["epoch"], "a restarted collector starts an epoch"
    dashboard.wait_points(stale["points"] + 3)


def test_page_recovers_when_the_bridge_restarts_before_its_collector(
    stack: WebStack, page: Page, console: Console
) -> None:
    console.allowed.append(EXPECTED_WHILE_DOWN)
    dashboard = Dashboard(page).open(stack.channel_url)
    dashboard.wait_badge("live", timeout=15)
    dashboard.wait_points(3)
    before = dashboard.window()

    stack.kill_collector()
    stack.kill_bridge()
    stack.start_bridge()  # knows no channel until its collector answers
    dashboard.wait_badge("unknown")
    assert CHANNEL in page.inner_text("#notice")

    stack.start_collector()
    dashboard.wait_badge("live", timeout=60)
    dashboard.wait_seq_past(before["epoch"], before["seq"])
    assert page.inner_text("#notice") == ""


def test_reload_resumes_from_the_saved_position_and_keeps_the_window(
    stack: WebStack, page: Page
) -> None:
    dashboard = Dashboard(page).open(stack.channel_url)
    dashboard.wait_badge("live", timeout=15)
    dashboard.wait_points(10)
    before = dashboard.window()

    page.reload()
    dashboard.wait_badge("live", timeout=15)
    dashboard.wait_seq_past(before["epoch"], before["seq"])
    after = dashboard.window()
    assert after["recovered"] is True, "the bridge should replay what the page missed"
    assert after["first"] == before["first"], "the chart window did not survive the reload"
    assert after["points"] > before["points"]
    assert after["epoch"] == before["epoch"]


def test_choosing_a_pushed_service_shows_its_series(stack: WebStack, page: Page) -> None:
    push(stack.grpc_address, "checkout", [[gauge("queue_depth", 42.5, queue="emails")]])
    dashboard = Dashboard(page).open(stack.page_url)
    dashboard.wait_badge("live", timeout=15)
    page.click('#channels button[data-channel="c1/checkout"]')
    key = 'queue_depth{queue="emails"}'
    dashboard.wait_value(key)
    assert dashboard.value(key) == 42.5
    assert page.inner_text("#channel-title") == "c1/checkout"
    assert page.url.endswith("#channel=c1/checkout"), "the choice is kept in the URL"
