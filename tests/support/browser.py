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


#: The sizes the UI is checked at: a laptop and a phone (CSS pixels).
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _open_page(chromium, viewport, color_scheme):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport=viewport, color_scheme=color_scheme)
    new_page = context.new_page()
    errors = ConsoleErrors()
    new_page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    new_page.console_errors = errors
    return context, new_page, errors


def _close_page(context, new_page, errors, name):  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        new_page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"console errors in the page: {errors}"


@pytest.fixture
def page(chromium, request):  # type: ignore[no-untyped-def]
    """A fresh page that fails the test on any console error; its screenshot is kept."""
    context, new_page, errors = _open_page(chromium, {"width": 1280, "height": 900}, "light")
    yield new_page
    _close_page(context, new_page, errors, request.node.name)


@pytest.fixture
def open_page(chromium, request):  # type: ignore[no-untyped-def]
    """``open_page(viewport, color_scheme)``: pages of other sizes and themes, checked like ``page``.

    Each fails the test on any console error, and its final view is kept as
    ``<test>-<width>x<height>-<scheme>[-n].png`` in test-artifacts/.
    """
    opened = []

    def make(viewport=DESKTOP, color_scheme="light"):  # type: ignore[no-untyped-def]
        context, new_page, errors = _open_page(chromium, viewport, color_scheme)
        name = f"{request.node.name}-{viewport['width']}x{viewport['height']}-{color_scheme}-{len(opened)}"
        opened.append((context, new_page, errors, name))
        return new_page

    yield make
    for context, new_page, errors, name in opened:
        _close_page(context, new_page, errors, name)


def sign_in(page, base_url: str, token: str) -> None:  # type: ignore[no-untyped-def]
    """Sign ``page`` in through the web UI's token form (as a person would), landing on the groups list."""
    from playwright.sync_api import expect

    page.goto(base_url.rstrip("/") + "/sign-in")
    page.fill("#token", token)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#index-page")).to_be_visible()
