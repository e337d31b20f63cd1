"""A real headless Chromium (Debian's), driven by Playwright through its executable path."""

from __future__ import annotations

import os
import shutil
from typing import Iterator, List

import pytest

from support.paths import ROOT

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"


def _chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "Debian's chromium is not installed (scripts/install-system-deps installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class ConsoleErrors(List[str]):
    """Console errors and uncaught page errors seen while a test ran."""


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """One browser for the session."""
    executable = _chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request):  # type: ignore[no-untyped-def]
    """A fresh page that fails the test on any console error; its screenshot is kept."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    new_page = context.new_page()
    errors = ConsoleErrors()
    new_page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    new_page.console_errors = errors
    yield new_page
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        new_page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"console errors in the page: {errors}"
