"""What a test reads off the dashboard page: the badge, the table, the chart window."""

from __future__ import annotations

from typing import Any, cast

from playwright.sync_api import Page

from tests.web.conftest import ms


class Dashboard:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, url: str) -> Dashboard:
        self.page.goto(url)
        return self

    @property
    def badge(self) -> str:
        return cast(str, self.page.get_attribute("#status", "data-state"))

    @property
    def badge_text(self) -> str:
        return self.page.inner_text("#status")

    def wait_badge(self, state: str, timeout: float = 30) -> None:
        self.page.wait_for_selector(f'#status[data-state="{state}"]', timeout=ms(timeout))

    def value(self, key: str) -> float:
        """The raw number of one series in the table."""
        cell = self.page.locator(f'#series tr[data-key="{_css(key)}"] td.value')
        return float(cast(str, cell.get_attribute("data-raw")))

    def wait_value(self, key: str, timeout: float = 30) -> None:
        self.page.wait_for_selector(
            f'#series tr[data-key="{_css(key)}"] td.value[data-raw]', timeout=ms(timeout)
        )

    def window(self) -> dict[str, Any]:
        """The chart window (row count, first and last time), the channel's position and
        whether its last Subscribed recovered the missed updates."""
        return cast(
            dict[str, Any],
            self.page.evaluate(
                """() => {
                    const d = globalThis.metricsBridgeDashboard;
                    const w = d.window();
                    const state = d.client.channel(d.selected());
                    return {
                        points: w.length,
                        first: w.times[0] ?? null,
                        last: w.lastTime,
                        epoch: state?.epoch ?? null,
                        seq: state?.seq ?? null,
                        recovered: d.lastSubscribed()?.recovered ?? null,
                    };
                }"""
            ),
        )

    def wait_points(self, at_least: int, timeout: float = 30) -> None:
        self.page.wait_for_function(
            "n => globalThis.metricsBridgeDashboard?.window().length >= n",
            arg=at_least,
            timeout=ms(timeout),
        )

    def wait_seq_past(self, epoch: str | None, seq: int, timeout: float = 30) -> None:
        """Until the channel moved past (epoch, seq): a later seq or another epoch."""
        self.page.wait_for_function(
            """([epoch, seq]) => {
                const d = globalThis.metricsBridgeDashboard;
                const s = d?.client.channel(d.selected());
                return !!s && s.epoch !== null && (s.epoch !== epoch || s.seq > seq);
            }""",
            arg=[epoch, seq],
            timeout=ms(timeout),
        )


def _css(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
