"""The browser fixtures of tests/web, for the installed dashboard."""

from tests.web.conftest import browser, console, page

__all__ = ["browser", "console", "page"]
