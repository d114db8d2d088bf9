"""A real browser for end-to-end tests: Debian's Chromium, headless, driven by Playwright.

Fixtures (registered in tests/e2e/conftest.py):

- ``browser`` (session): one headless Chromium for the whole run. The binary is ``$CHROMIUM``
  or what ``scripts/ensure-chromium`` finds or installs (apt-get); Playwright's own browser
  download is never used, only its bundled driver.
- ``page`` (function): a new page in a fresh context (no cookies or storage shared between
  tests) that records every console error, uncaught page error and failed request.

Helpers:

- ``assert_no_browser_errors(page, ignore=())`` fails with every problem the page recorded.
- ``browser_problems(page)`` the same problems as a list of lines, to look at them in a test.
- ``save_screenshot(page, name)`` writes ``build/screenshots/<name>.png`` (the whole page) and
  returns its path: a test artifact a person can open.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    ViewportSize,
    sync_playwright,
)

PROJECT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT / "build" / "screenshots"
ENSURE_CHROMIUM = PROJECT / "scripts" / "ensure-chromium"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# Chromium asks for /favicon.ico by itself and logs a console error when the server has none
# (the orders API answers a route it lacks with 403, as API Gateway does). A page of ours avoids
# the request with <link rel="icon" href="data:,">; one that is not ours (a JSON document) can't.
ALWAYS_IGNORED = (r"/favicon\.ico\b",)


def chromium_executable() -> str:
    """``$CHROMIUM``, else the path scripts/ensure-chromium prints (installing it if missing)."""
    if found := os.environ.get("CHROMIUM"):
        return found
    completed = subprocess.run(
        ["bash", str(ENSURE_CHROMIUM)], capture_output=True, text=True, timeout=900
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        pytest.fail(f"scripts/ensure-chromium found no Chromium:\n{completed.stderr}")
    return lines[-1]


@dataclass
class BrowserProblems:
    """What went wrong in one page: console errors, uncaught exceptions, failed requests."""

    lines: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            where = message.location.get("url") or "page"
            self.lines.append(f"console.{message.type} ({where}): {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.lines.append(f"uncaught error: {error}")

    def on_request_failed(self, request: Request) -> None:
        self.lines.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            request = response.request
            self.lines.append(f"HTTP {response.status}: {request.method} {request.url}")


_problems: dict[Page, BrowserProblems] = {}


def watch(page: Page) -> BrowserProblems:
    """Start recording a page's problems (the ``page`` fixture does it for its page)."""
    problems = _problems.setdefault(page, BrowserProblems())
    page.on("console", problems.on_console)
    page.on("pageerror", problems.on_page_error)
    page.on("requestfailed", problems.on_request_failed)
    page.on("response", problems.on_response)
    return problems


def browser_problems(page: Page) -> list[str]:
    """Every problem recorded so far on a watched page, one line each."""
    if page not in _problems:
        raise ValueError("this page is not watched: use the `page` fixture or watch(page)")
    return list(_problems[page].lines)


def assert_no_browser_errors(page: Page, ignore: Iterable[str] = ()) -> None:
    """Fail if the page logged a console error, threw, or had a request fail (HTTP >= 400 too).

    ``ignore``: regular expressions; a problem line any of them matches (re.search) is allowed,
    as is a missing /favicon.ico (ALWAYS_IGNORED).
    """
    patterns = [re.compile(pattern) for pattern in (*ALWAYS_IGNORED, *ignore)]
    left = [
        line
        for line in browser_problems(page)
        if not any(pattern.search(line) for pattern in patterns)
    ]
    assert not left, f"the browser reported {len(left)} problem(s) on {page.url}:\n" + "\n".join(
        left
    )


def save_screenshot(page: Page, name: str) -> Path:
    """Screenshot of the whole page to build/screenshots/<name>.png; returns the path."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"screenshot name {name!r}: use letters, digits, '_', '-', '.'")
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's), launched once per session through Playwright's driver."""
    executable = chromium_executable()
    playwright = sync_playwright().start()
    try:
        # No sandbox: Chromium refuses its sandbox as root (CI here runs as root), and containers
        # often lack the user namespaces it needs otherwise; it only visits local test pages.
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, chromium_sandbox=False
        )
        yield launched
        launched.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (own context) whose console errors, page errors and failed requests are
    recorded: check them with assert_no_browser_errors(page)."""
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    watch(opened)
    yield opened
    _problems.pop(opened, None)
    context.close()
