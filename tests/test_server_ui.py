"""The group page in a real headless Chromium: canvas drawing, tooltip, zoom, recommendations."""

from __future__ import annotations

from typing import Any, Tuple

import pytest
from fixtures_server import LiveServer, ingest_profile, make_profile, unique_name
from playwright.sync_api import expect
from test_analyzer_builders import lambda_profile

from greenflame.analyzer.model import Frame

EVIL = "<img src=x onerror=alert(1)>"
ROW = 18  # ROW_HEIGHT in flamegraph.js


@pytest.fixture(scope="module")
def ui_group(live_server: LiveServer) -> str:
    """cpu tree: all -> <module> -> [EVIL (7), app.handler (6) -> app.parse (5)]."""
    name = unique_name("ui")
    key = live_server.create_group(name)
    profile = make_profile(name)
    profile.add([Frame("<module>", "/srv/main.py", 1), Frame(EVIL, "/srv/evil.py", 3)], [7, 7])
    assert ingest_profile(live_server, key, profile).status_code == 202
    return name


def open_group(page: Any, server: LiveServer, name: str) -> Tuple[float, float, float]:
    page.goto(server.api(f"/groups/{name}"))
    expect(page.locator("#flamegraph-status")).to_contain_text("samples")
    box = page.locator("#flamegraph").bounding_box()
    return box["x"], box["y"], box["width"]


def hover(page: Any, origin: Tuple[float, float, float], fraction: float, depth: int) -> str:
    x, y, width = origin
    page.mouse.move(x + width * fraction, y + depth * ROW + ROW / 2)
    tooltip = page.locator("#flamegraph-tooltip")
    tooltip.wait_for(state="visible")
    text: str = tooltip.inner_text()
    return text


def test_canvas_tooltip_shows_frame_details_as_text(page: Any, live_server: LiveServer, ui_group: str) -> None:
    origin = open_group(page, live_server, ui_group)
    assert page.locator("#flamegraph").evaluate("c => c.height") >= 4 * ROW
    text = hover(page, origin, 0.2, 2)  # the first 7/13 of row 2 is EVIL (names sort '<' before 'a')
    assert EVIL in text and "/srv/evil.py:3" in text
    assert "Self: 7 samples (53.8%)" in text and "Total: 7 samples (53.8%)" in text
    assert page.locator("img").count() == 0  # the name stayed text


def test_click_zooms_and_reset_restores(page: Any, live_server: LiveServer, ui_group: str) -> None:
    origin = open_group(page, live_server, ui_group)
    assert "app.handler" in hover(page, origin, 0.8, 2)
    page.mouse.click(origin[0] + origin[2] * 0.8, origin[1] + 2 * ROW + ROW / 2)
    assert "app.handler" in hover(page, origin, 0.1, 2)  # the zoomed frame now spans the width
    assert "app.parse" in hover(page, origin, 0.5, 3)
    page.click("#reset-zoom")
    assert EVIL in hover(page, origin, 0.2, 2)


def test_wall_view_and_empty_range(page: Any, live_server: LiveServer, ui_group: str) -> None:
    open_group(page, live_server, ui_group)
    page.select_option("#type", "wall")
    expect(page.locator("#flamegraph-status")).to_contain_text("19 samples")
    page.select_option("#range", "now-1h")
    expect(page.locator("#flamegraph-status")).to_contain_text("No samples")


def test_recommendations_table(page: Any, live_server: LiveServer) -> None:
    name = unique_name("ui-brown")
    key = live_server.create_group(name)
    profile = lambda_profile()
    profile.group = name
    assert ingest_profile(live_server, key, profile).status_code == 202
    page.goto(live_server.api(f"/groups/{name}"))
    row = page.locator("#recommendations tbody tr")
    row.first.wait_for()
    assert row.count() == 1
    cells = row.first.locator("td").all_inner_texts()
    assert cells[0].startswith("AWS SDK client created on every invocation")
    assert cells[2].endswith("%") and "% (" in cells[3] and "over)" in cells[3]
    assert cells[4].startswith("$") and float(cells[5]) > 0
