"""The web UI in a real headless Chromium against a real ``greenflame serve`` with real profiles.

Every page is loaded, clicked, zoomed, searched; a range is dragged on the chart and a
comparison opened. The ``page`` fixture signs in with a read token through the sign-in form,
fails a test on any console error and keeps a screenshot of each test's final view in
test-artifacts/; some tests keep extra ones.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Tuple
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect
from support.browser import ARTIFACTS, sign_in
from support.server import LiveServer, ingest_profile, make_profile, unique_name

from greenflame.analyzer.model import Frame

EVIL = "<img src=x onerror=alert(1)>"
ROW = 18  # ROW_HEIGHT in flamegraph.js
T0 = 1_700_000_000 * 10**9
HOUR = 3600 * 10**9
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:")


def evil_profile(name: str, start: int, scale: int = 1) -> Any:
    """cpu tree: all -> <module> -> [EVIL (7), app.handler (6) -> app.parse (5)], times ``scale``."""
    profile = make_profile(name, start_time_unix_ns=start, scale=scale)
    profile.add([Frame("<module>", "/srv/main.py", 1), Frame(EVIL, "/srv/evil.py", 3)], [7, 7], {"endpoint": EVIL})
    return profile


@pytest.fixture
def page(page: Any, live_server: LiveServer) -> Any:
    """The browser page, signed in with a read token through the sign-in form."""
    sign_in(page, live_server.url, live_server.read_token)
    return page


@pytest.fixture
def open_page(open_page: Any, live_server: LiveServer) -> Any:
    """``open_page(viewport, color_scheme)``, each page signed in with a read token first."""

    def make(*args: Any, **kwargs: Any) -> Any:
        new_page = open_page(*args, **kwargs)
        sign_in(new_page, live_server.url, live_server.read_token)
        return new_page

    return make


@pytest.fixture(scope="module")
def ui_group(live_server: LiveServer) -> str:
    """Three profiles an hour apart; the last one spends twice as much in the handler."""
    name = unique_name("ui")
    key = live_server.create_group(name)
    for n in range(3):
        profile = evil_profile(name, T0 + n * HOUR)
        if n == 2:
            profile.add([Frame("<module>", "/srv/main.py", 1), Frame("app.handler", "/srv/app.py", 10)], [6, 6])
        assert ingest_profile(live_server, key, profile).status_code == 202
    return name


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)


def query(page: Any) -> dict:
    return {key: values for key, values in parse_qs(urlparse(page.url).query).items()}


def open_group(page: Any, server: LiveServer, name: str, search: str = "") -> Tuple[float, float, float]:
    page.goto(server.api(f"/groups/{name}{search}"))
    expect(page.locator("#flamegraph-status")).to_contain_text("samples")
    page.wait_for_load_state("networkidle")  # the page's other parts loaded: the chart stays where it is
    return canvas_origin(page, "#flamegraph")


def canvas_origin(page: Any, selector: str) -> Tuple[float, float, float]:
    box = page.locator(selector).bounding_box()
    return box["x"], box["y"], box["width"]


def hover(
    page: Any, origin: Tuple[float, float, float], fraction: float, depth: int, tip: str = "#flamegraph-tooltip"
) -> str:
    x, y, width = origin
    page.mouse.move(x + width * fraction, y + depth * ROW + ROW / 2)
    tooltip = page.locator(tip)
    tooltip.wait_for(state="visible")
    text: str = tooltip.inner_text()
    return text


def wait_for_findings(server: LiveServer, group: str, timeout_s: float = 60.0) -> None:
    """Poll until the server's analysis pipeline has stored findings for ``group``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = server.session.get(server.api(f"/api/v1/groups/{group}/findings"), timeout=10).json()
        if body.get("findings"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no findings for {group} after {timeout_s} s")


def no_injected_markup(page: Any) -> None:
    assert page.locator("img").count() == 0
    assert page.evaluate("() => window.__pwned === undefined")


def test_group_list_shows_activity_findings_and_anomalies(page: Any, live_server: LiveServer, ui_group: str) -> None:
    page.goto(live_server.url)
    row = page.locator(f'tr[data-group="{ui_group}"]')
    expect(row.locator(".findings-count")).not_to_have_text("…")
    expect(row.locator(".anomalies-count")).not_to_have_text("…")
    painted = row.locator("canvas.sparkline").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
    )
    assert painted > 0
    row.locator("a").first.click()
    expect(page.locator("h1")).to_have_text(ui_group)


def test_tooltip_shows_frame_details_as_text(page: Any, live_server: LiveServer, ui_group: str) -> None:
    origin = open_group(page, live_server, ui_group)
    text = hover(page, origin, 0.2, 2)  # names sort '<' before 'a': EVIL is leftmost in row 2
    assert EVIL in text and "/srv/evil.py:3" in text and "your code" in text
    assert "Self: 21 samples" in text and "Total: 21 samples" in text
    no_injected_markup(page)


def test_click_zoom_breadcrumb_and_url_restore(page: Any, live_server: LiveServer, ui_group: str) -> None:
    origin = open_group(page, live_server, ui_group)
    page.mouse.click(origin[0] + origin[2] * 0.9, origin[1] + 2 * ROW + ROW / 2)
    expect(page.locator("#breadcrumb")).to_contain_text("app.handler")
    assert json.loads(query(page)["zoom"][0]) == ["<module>", "app.handler"]
    assert "app.parse" in hover(page, origin, 0.2, 3)
    page.reload()  # the URL restores the zoom
    expect(page.locator("#flamegraph-status")).to_contain_text("samples")
    origin = canvas_origin(page, "#flamegraph")  # the reloaded page may restore another scroll position
    assert "app.handler" in hover(page, origin, 0.05, 2)
    shot(page, "zoomed")
    page.locator("#breadcrumb button", has_text="all").click()
    assert "zoom" not in query(page)
    assert EVIL in hover(page, origin, 0.2, 2)


def test_zoom_into_evil_frame_keeps_it_text(page: Any, live_server: LiveServer, ui_group: str) -> None:
    origin = open_group(page, live_server, ui_group)
    page.mouse.click(origin[0] + origin[2] * 0.2, origin[1] + 2 * ROW + ROW / 2)
    expect(page.locator("#breadcrumb")).to_contain_text(EVIL)
    expect(page.locator("#flamegraph-selection")).to_contain_text(EVIL)
    no_injected_markup(page)


def test_search_highlights_and_reports_share(page: Any, live_server: LiveServer, ui_group: str) -> None:
    open_group(page, live_server, ui_group)
    page.fill("#search", "app.parse")
    expect(page.locator("#search-share")).to_have_text("Matches: 33.3% of the total")  # 15 of 45 cpu samples
    assert query(page)["search"] == ["app.parse"]
    shot(page, "search")
    page.reload()
    expect(page.locator("#search")).to_have_value("app.parse")
    expect(page.locator("#search-share")).to_have_text("Matches: 33.3% of the total")


def test_wall_view_hotspots_color_my_code_and_label_filter(page: Any, live_server: LiveServer, ui_group: str) -> None:
    origin = open_group(page, live_server, ui_group)
    page.select_option("#type", "wall")
    expect(page.locator("#flamegraph-status")).to_contain_text("63 samples")
    page.select_option("#view", "bottom-up")
    expect(page.locator("#flamegraph-status")).to_contain_text("63 samples")
    assert "time.sleep" in hover(page, origin, 0.99, 1)  # the leaf functions are the first row
    page.select_option("#color", "kind")
    expect(page.locator("#color-legend")).to_be_visible()
    origin = canvas_origin(page, "#flamegraph")  # the legend moved it down
    assert "standard library" in hover(page, origin, 0.98, 1)
    page.select_option("#label", f"endpoint={EVIL}")
    expect(page.locator("#flamegraph-status")).to_contain_text("21 samples")
    assert query(page)["label"] == [f"endpoint={EVIL}"]
    assert query(page)["view"] == ["bottom-up"] and query(page)["type"] == ["wall"]
    shot(page, "hotspots-wall-kinds")
    no_injected_markup(page)


def test_drag_on_the_chart_selects_a_range(page: Any, live_server: LiveServer, ui_group: str) -> None:
    open_group(page, live_server, ui_group)
    chart = page.locator("#timeline").bounding_box()
    y = chart["y"] + chart["height"] / 2
    page.mouse.move(chart["x"] + chart["width"] * 0.6, y)
    page.mouse.down()
    page.mouse.move(chart["x"] + chart["width"] * 0.8, y, steps=5)
    page.mouse.move(chart["x"] + chart["width"] - 2, y, steps=5)
    page.mouse.up()
    expect(page.locator("#flamegraph-status")).to_contain_text("1 profile,")
    params = query(page)
    assert int(params["from"][0]) > T0 // 10**9 + 3600 and "to" in params
    expect(page.locator("#range")).to_have_value("custom")
    shot(page, "range")


def test_functions_table_sorts_filters_and_opens_sandwich(page: Any, live_server: LiveServer, ui_group: str) -> None:
    open_group(page, live_server, ui_group)
    rows = page.locator("#functions tbody tr")
    expect(rows.first).to_contain_text(EVIL)  # by self: EVIL 21, then handler 9...
    page.locator("#functions thead button", has_text="Total").click()
    expect(rows.first).to_contain_text("<module>")
    page.fill("#functions-filter", "app.")
    expect(rows).to_have_count(2)
    rows.locator("button", has_text="app.parse").click()
    expect(page.locator("#sandwich-panel")).to_be_visible()
    expect(page.locator("#sandwich-status")).to_contain_text("15 samples pass through")
    assert query(page)["fn"] == ["app.parse"]
    callers = canvas_origin(page, "#callers")
    # callers are drawn root at the bottom: app.parse (row 2), app.handler (1), <module> (0)
    assert "app.handler" in hover(page, callers, 0.5, 1, "#callers-tooltip")
    shot(page, "sandwich")
    page.locator("#functions-filter").fill("")
    rows.locator("button", has_text=EVIL).click()
    expect(page.locator("#sandwich-name")).to_have_text(EVIL)
    no_injected_markup(page)


def test_keyboard_navigation(page: Any, live_server: LiveServer, ui_group: str) -> None:
    open_group(page, live_server, ui_group)
    page.focus("#flamegraph")
    page.keyboard.press("ArrowDown")  # <module>
    page.keyboard.press("ArrowDown")  # its widest child: EVIL (21) over app.handler (15... 21)
    expect(page.locator("#flamegraph-selection")).to_contain_text("(/srv/")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#flamegraph-selection")).to_contain_text("app.handler")
    page.keyboard.press("Enter")
    expect(page.locator("#breadcrumb")).to_contain_text("app.handler")
    page.keyboard.press("Escape")
    expect(page.locator("#breadcrumb span")).to_have_text("<module>")


def test_compare_two_ranges_has_its_own_url(page: Any, live_server: LiveServer, ui_group: str) -> None:
    start = T0 // 10**9
    params = f"base_from={start}&base_to={start + 3599}&from={start + 7200}&to={start + 10799}"
    page.goto(live_server.api(f"/groups/{ui_group}/compare?{params}"))
    expect(page.locator("#diff-status")).to_contain_text("Compared:")
    expect(page.locator("#legend-range")).to_contain_text("pp")
    origin = canvas_origin(page, "#diff")
    text = hover(page, origin, 0.2, 2, "#diff-tooltip")
    assert EVIL in text and "Change in share: \u221217.0 pp" in text  # 7/13 of the base, 7/19 compared
    page.fill("#search", "handler")
    expect(page.locator("#search-share")).to_contain_text("Matches:")
    shot(page, "compare")
    page.reload()
    expect(page.locator("#search")).to_have_value("handler")
    expect(page.locator("#base_from")).to_have_value(str(start))
    no_injected_markup(page)


def test_compare_link_from_group_page_and_two_groups(page: Any, live_server: LiveServer, ui_group: str) -> None:
    other = unique_name("ui-other")
    key = live_server.create_group(other)
    assert ingest_profile(live_server, key, evil_profile(other, T0, scale=2)).status_code == 202
    open_group(page, live_server, ui_group)
    page.click("#compare-link")
    expect(page.locator("#diff-status")).not_to_contain_text("Loading")
    page.fill("#base_group", other)
    page.fill("#base_from", "")
    page.fill("#base_to", "")
    page.fill("#from", "")
    page.fill("#to", "")
    page.click("#compare-form button[type=submit]")
    expect(page.locator("#diff-status")).to_contain_text(f"Base: {other}")
    assert query(page)["base_group"] == [other]


def test_findings_page_opens_the_flame_graph_on_the_evidence(page: Any, live_server: LiveServer) -> None:
    from support.builders import lambda_profile

    name = unique_name("ui-findings")
    key = live_server.create_group(name)
    profile = lambda_profile()
    profile.group = name
    assert ingest_profile(live_server, key, profile).status_code == 202
    wait_for_findings(live_server, name)
    page.goto(live_server.api(f"/groups/{name}/findings"))
    row = page.locator("#findings tbody tr").first
    expect(row).to_contain_text("AWS SDK client created on every invocation")
    cells = row.locator("td").all_inner_texts()
    assert cells[3].endswith("%") and cells[5].startswith("$") and float(cells[6]) > 0
    shot(page, "findings")
    row.locator("td.frames a").first.click()
    expect(page.locator("#focus-status")).to_be_visible()
    expect(page.locator("#flamegraph-status")).to_contain_text("samples")
    assert "focus" in query(page) and "search" in query(page)
    # Focused: every stack left passes through the evidence frame, which the search highlights.
    expect(page.locator("#search-share")).to_have_text("Matches: 100.0% of the total")


def test_anomalies_page_loads(page: Any, live_server: LiveServer, ui_group: str) -> None:
    page.goto(live_server.api(f"/groups/{ui_group}/anomalies"))
    expect(page.locator("#anomalies-status")).not_to_have_text("Loading…")
    rows = page.locator("#anomalies tbody tr")
    if rows.count():  # the pipeline may find none in three profiles: then the empty state shows
        expect(rows.first.locator("a").first).to_be_visible()
    else:
        expect(page.locator("#anomalies-status")).to_contain_text("No anomalies")
    no_injected_markup(page)


# -- issue 19: the page where a developer finds the slow function and acts on it ------------------


@pytest.fixture(scope="module")
def lambda_group(live_server: LiveServer) -> str:
    """A Lambda group with an AWS-SDK finding whose call paths pass through a frame named like markup."""
    from support.builders import BOOTSTRAP, HANDLE, lambda_profile

    name = unique_name("ui-lambda")
    key = live_server.create_group(name)
    profile = lambda_profile(prefix=(BOOTSTRAP, HANDLE, Frame(EVIL, "/srv/<script>.py", 3)))
    profile.group = name
    # A long label value (a request id) must not widen the label filter past a phone's screen.
    profile.add([Frame("main", "/var/task/app.py", 1)], [1, 1], {"request_id": "9f0b04a9-99b0-4c1e" * 6})
    assert ingest_profile(live_server, key, profile).status_code == 202
    wait_for_findings(live_server, name)
    return name


@pytest.fixture(scope="module")
def anomaly_id(live_server: LiveServer, lambda_group: str) -> str:
    """An anomaly on the markup-named frame, stored as the detector would store it."""
    from sqlalchemy import create_engine

    from greenflame.analyzer.anomalies import Anomaly
    from greenflame.server.pipeline_store import PipelineStore

    start = T0 // 10**9
    anomaly = Anomaly(lambda_group, EVIL, "inclusive_share", start, start + 300, start + 600, 7.5, "up", 0.1, 0.4, EVIL)
    engine = create_engine(f"sqlite:///{live_server.data_dir / 'greenflame.db'}")
    stored = PipelineStore(engine).replace_anomalies(lambda_group, [anomaly])
    engine.dispose()
    return stored[0].id


def finding_fingerprint(server: LiveServer, group: str) -> str:
    body = server.session.get(server.api(f"/api/v1/groups/{group}/findings"), timeout=10).json()
    fingerprint: str = body["findings"][0]["fingerprint"]
    return fingerprint


def fits_the_width(page: Any) -> bool:
    """Nothing on the page is wider than the window (no sideways scrolling)."""
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def background(page: Any) -> str:
    return str(page.evaluate("() => getComputedStyle(document.body).backgroundColor"))


def ready_pages(group: str, lambda_group: str, fingerprint: str, anomaly: str) -> list:
    """(name, path, a locator that has its final text once the page has loaded, text it must not have)."""
    return [
        ("groups", "/", f'tr[data-group="{lambda_group}"] .cost', "…"),
        ("group", f"/groups/{lambda_group}", "#summary-cost", "…"),
        ("compare", f"/groups/{group}/compare", "#diff-status", "Loading"),
        ("findings", f"/groups/{lambda_group}/findings", "#findings-status", "Loading"),
        ("finding", f"/groups/{lambda_group}/findings/{fingerprint}", "#finding-status", "Loading"),
        ("anomalies", f"/groups/{lambda_group}/anomalies", "#anomalies-status", "Loading"),
        ("anomaly", f"/groups/{lambda_group}/anomalies/{anomaly}", "#anomaly-status", "Loading"),
    ]


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_fits_the_screen_in_both_themes_and_keeps_names_inert(
    open_page: Any, live_server: LiveServer, ui_group: str, lambda_group: str, anomaly_id: str, size: str, scheme: str
) -> None:
    from support.browser import DESKTOP, PHONE

    page = open_page(DESKTOP if size == "desktop" else PHONE, scheme)
    fingerprint = finding_fingerprint(live_server, lambda_group)
    for name, path, locator, loading in ready_pages(ui_group, lambda_group, fingerprint, anomaly_id):
        page.goto(live_server.api(path))
        expect(page.locator(locator)).not_to_contain_text(loading)
        page.wait_for_timeout(100)  # the last layout after the data arrived
        assert fits_the_width(page), f"{path} scrolls sideways at {size} size"
        assert background(page) == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")
        no_injected_markup(page)
        page.screenshot(path=str(ARTIFACTS / f"ui-{name}-{size}-{scheme}.png"), full_page=False)


def test_group_page_says_when_the_agents_budget_lowered_the_rate(
    page: Any, live_server: LiveServer, ui_group: str
) -> None:
    name = unique_name("ui-budget")
    key = live_server.create_group(name)
    for n in range(2):
        profile = evil_profile(name, T0 + n * HOUR)
        if n == 1:  # the agent's budget lowered this report's rate to a mean of 50 Hz, 33 Hz at the lowest
            profile.sample_period_ns = 20_000_000
            profile.metadata["rate_limited"] = {"cpu_budget_cores": 0.01, "lowest_rate_hz": 33.0, "times": 2}
        assert ingest_profile(live_server, key, profile).status_code == 202
    page.goto(live_server.api(f"/groups/{name}"))
    notice = page.locator("#sampling-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("lowered the sampling rate in 1 of 2 reports (lowest 33 Hz)")
    expect(notice).to_contain_text("scaled to the mean rate")
    late_name = unique_name("ui-late")
    late_key = live_server.create_group(late_name)
    late = evil_profile(late_name, T0)  # the sampler, behind busy threads, achieved 40 of 100 Hz asked
    late.sample_period_ns = 25_000_000
    late.metadata.update(schedule_skipped=0.6, asked_rate_hz=100.0)
    assert ingest_profile(live_server, late_key, late).status_code == 202
    page.goto(live_server.api(f"/groups/{late_name}"))
    expect(notice).to_contain_text("sampler waited for busy threads and sampled below the rate asked in 1 of 1 report")
    expect(notice).to_contain_text("mean rate achieved, 40 Hz")
    page.goto(live_server.api(f"/groups/{ui_group}"))
    expect(page.locator("#summary-cost")).not_to_have_text("…")
    expect(page.locator("#sampling-notice")).to_be_hidden()


def test_group_first_screen_answers_what_costs_most(open_page: Any, live_server: LiveServer, lambda_group: str) -> None:
    page = open_page()
    page.goto(live_server.api(f"/groups/{lambda_group}"))
    expect(page.locator("#summary-cost")).to_contain_text("$")
    expect(page.locator("#summary-findings")).to_have_text("1")
    expect(page.locator("#summary-co2e")).not_to_have_text("…")
    expect(page.locator("#summary-range")).to_contain_text("All data")
    expect(page.locator("#flamegraph-status")).to_contain_text("samples (")  # samples with their time
    graph = page.locator("#flamegraph").bounding_box()
    assert graph["y"] < 900 - 200, "the flame graph starts on the first screen"
    # The graph scrolls inside a fixed-height area with a minimap above it.
    assert page.locator("#flamegraph-scroll").evaluate("e => getComputedStyle(e).overflowY") == "auto"
    assert page.locator("#minimap").bounding_box()["height"] > 0
    # The functions table sits beside the graph, its numbers inside its panel, in time units.
    panel = page.locator(".functions-panel").bounding_box()
    assert panel["x"] > graph["x"] + graph["width"] - 1 and panel["y"] < 900
    first = page.locator("#functions tbody tr").first
    for cell in first.locator("td.num").all():
        box = cell.bounding_box()
        assert box["x"] + box["width"] <= panel["x"] + panel["width"] + 1
        assert re.search(r"\d (s|ms|µs|min|h)\n", cell.inner_text() + "\n")
    # Frames that findings name are marked in the graph and the table.
    expect(page.locator("#marker-legend")).not_to_have_class(re.compile("is-empty"))
    expect(page.locator("#functions tr[data-finding]").first).to_be_visible()
    shot(page, "first-screen-1440")


def test_toolbar_stays_in_view_while_scrolling(open_page: Any, live_server: LiveServer, lambda_group: str) -> None:
    page = open_page()
    page.goto(live_server.api(f"/groups/{lambda_group}"))
    expect(page.locator("#flamegraph-status")).to_contain_text("samples")
    page.wait_for_load_state("networkidle")  # the page's parts loaded: its height is final
    page.mouse.wheel(0, 1500)
    # The wheel's scroll may still be landing: wait (up to the default timeout) for the toolbar to
    # stick to the top rather than look once after 200 ms.
    page.wait_for_function("() => Math.abs(document.querySelector('#controls').getBoundingClientRect().top) < 2")
    assert page.evaluate("() => window.scrollY") > 0
    assert abs(page.locator("#controls").bounding_box()["y"]) < 2


def test_links_keep_the_range_type_and_file(page: Any, live_server: LiveServer, lambda_group: str) -> None:
    start = T0 // 10**9
    page.goto(live_server.api(f"/groups/{lambda_group}?from={start}&to={start + 3600}&type=wall"))
    link = page.locator("#recommendations td.frames a").first
    expect(link).to_be_visible()
    params = parse_qs(urlparse(link.get_attribute("href")).query)
    assert params["from"] == [str(start)] and params["to"] == [str(start + 3600)]
    assert params["focus_file"][0].endswith(".py") and params["type"] == ["wall"]
    link.click()
    expect(page.locator("#focus-status")).to_be_visible()
    assert query(page)["from"] == [str(start)]
    # The Findings tab says which range its figures are for, and links to that window.
    page.goto(live_server.api(f"/groups/{lambda_group}/findings"))
    expect(page.locator("#findings-scope")).to_contain_text("last hour of data")
    evidence = parse_qs(urlparse(page.locator("#findings td.frames a").first.get_attribute("href")).query)
    assert int(evidence["to"][0]) - int(evidence["from"][0]) == 3600 and "focus_file" in evidence
    expect(page.locator("#recommendations-range")).to_have_count(0)
    page.goto(live_server.api(f"/groups/{lambda_group}"))
    expect(page.locator("#recommendations-range")).to_contain_text("Findings tab")


def test_finding_detail_page(page: Any, live_server: LiveServer, lambda_group: str) -> None:
    page.goto(live_server.api(f"/groups/{lambda_group}/findings"))
    page.locator("#findings a.finding-title").first.click()
    expect(page.locator("#finding-body")).to_be_visible()
    expect(page.locator("#finding-title")).to_have_text("AWS SDK client created on every invocation")
    expect(page.locator("#finding-where")).to_contain_text(EVIL)  # in a call path, as text
    expect(page.locator("#finding-figures")).to_contain_text("$")
    expect(page.locator("#finding-inputs")).to_contain_text("from the profile")
    expect(page.locator("#example-before")).to_contain_text("def handler")
    expect(page.locator("#example-after")).to_contain_text("def handler")
    history = page.locator("#finding-history").inner_text()
    assert "First seen" in history and "2023" in history and not ISO_TIME.search(history)  # local, not raw ISO
    expect(page.locator("#finding-tickets")).to_contain_text("No ticket yet")
    shot(page, "finding-detail")
    no_injected_markup(page)


def test_anomaly_detail_explains_the_score_and_takes_feedback(
    page: Any, live_server: LiveServer, lambda_group: str, anomaly_id: str
) -> None:
    page.goto(live_server.api(f"/groups/{lambda_group}/anomalies/{anomaly_id}"))
    expect(page.locator("#anomaly-body")).to_be_visible()
    expect(page.locator("#anomaly-score")).to_contain_text("7.5 times the usual spread")
    expect(page.locator("#anomaly-facts")).to_contain_text("40.0%")  # observed, as a share
    window = page.locator("#anomaly-facts time").first
    assert window.get_attribute("datetime").endswith("Z") and not ISO_TIME.search(window.inner_text())
    page.locator("#feedback-not-useful").click()
    expect(page.locator("#feedback-status")).to_contain_text("recorded")
    expect(page.locator("#feedback-not-useful")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#feedback-not-useful")).to_contain_text("(1)")
    shot(page, "anomaly-detail")
    no_injected_markup(page)


def test_compare_presets_warn_on_an_empty_side_and_table_the_change(
    page: Any, live_server: LiveServer, ui_group: str
) -> None:
    page.goto(live_server.api(f"/groups/{ui_group}/compare"))  # latest hour of data vs the hour before
    expect(page.locator("#diff-status")).to_contain_text("Compared:")
    expect(page.locator("#diff-warning")).to_be_hidden()
    expect(page.locator("#diff-table tbody tr").first).to_be_visible()
    changes = page.locator("#diff-table td.num:last-child").all_inner_texts()
    sizes = [float(re.sub(r"[^0-9.]", "", text)) for text in changes]
    assert sizes == sorted(sizes, reverse=True)  # the largest change first
    page.select_option("#preset", "hour-yesterday")
    expect(page.locator("#diff-warning")).to_be_visible()
    expect(page.locator("#diff-warning")).to_contain_text("No data in the base range")
    expect(page.locator("#diff-table")).to_be_hidden()
    red = page.locator("#diff").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 150) n++; return n; }"
    )
    assert red == 0, "an empty side never paints the graph red"
    shot(page, "compare-empty-side")


def test_compare_two_ranges_brushed_on_the_chart(page: Any, live_server: LiveServer, ui_group: str) -> None:
    page.goto(live_server.api(f"/groups/{ui_group}/compare"))
    expect(page.locator("#diff-status")).to_contain_text("Compared:")
    chart = page.locator("#compare-timeline").bounding_box()
    y = chart["y"] + chart["height"] / 2

    def drag(start: float, end: float) -> None:
        page.mouse.move(chart["x"] + chart["width"] * start, y)
        page.mouse.down()
        page.mouse.move(chart["x"] + chart["width"] * end, y, steps=5)
        page.mouse.up()

    page.check("#brush-base")
    drag(0.05, 0.3)
    expect(page.locator("#brush-target")).to_be_checked()  # the next drag sets the other side
    drag(0.6, 0.95)
    params = query(page)
    assert int(params["base_from"][0]) < int(params["base_to"][0]) <= int(params["from"][0]) < int(params["to"][0])
    expect(page.locator("#diff-status")).to_contain_text("Compared:")


def test_loading_and_errors_leave_the_graph_inert(page: Any, live_server: LiveServer, ui_group: str) -> None:
    open_group(page, live_server, ui_group)
    failure = {"error": {"code": "internal_error", "message": "boom"}}
    page.route("**/flamegraph?*", lambda route: route.fulfill(status=500, json=failure))
    page.select_option("#view", "bottom-up")
    expect(page.locator("#flamegraph-busy")).to_be_visible()
    expect(page.locator("#flamegraph-busy")).to_contain_text("Could not load the flame graph: boom")
    expect(page.locator("#flamegraph-retry")).to_be_visible()
    assert page.locator("#flamegraph").evaluate("c => getComputedStyle(c).pointerEvents") == "none"
    page.locator("#flamegraph").focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#flamegraph-selection")).to_have_text("")  # keys do nothing either
    shot(page, "error-state")
    page.unroute("**/flamegraph?*")
    page.console_errors.clear()  # the 500 above was on purpose
    page.click("#flamegraph-retry")
    expect(page.locator("#flamegraph-busy")).to_be_hidden()
    expect(page.locator("#flamegraph-status")).to_contain_text("samples")


def test_a_flame_graph_from_the_last_answer_says_how_old_it_is(
    page: Any, live_server: LiveServer, ui_group: str
) -> None:
    open_group(page, live_server, ui_group)
    expect(page.locator("#flamegraph-status")).to_contain_text("samples")

    def aged(route: Any) -> None:  # the server's own answer, as a busy server sends its last one
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "age": "7"})

    page.route("**/flamegraph?*", aged)
    page.select_option("#view", "bottom-up")
    expect(page.locator("#flamegraph-status")).to_contain_text("As of 7 s ago: the server is busy")
    page.unroute("**/flamegraph?*")


def test_unknown_group_and_finding_get_a_styled_404_with_a_way_back(
    page: Any, live_server: LiveServer, ui_group: str
) -> None:
    response = page.goto(live_server.api("/groups/<img src=x onerror=alert(1)>"))
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator(".not-found")).to_contain_text("There is no group called")
    no_injected_markup(page)
    response = page.goto(live_server.api(f"/groups/{ui_group}/findings/nope"))
    assert response is not None and response.status == 404
    page.locator(".not-found a.button").click()
    expect(page.locator("h1")).to_have_text(f"Findings: {ui_group}")
    page.console_errors[:] = [e for e in page.console_errors if "404" not in e]  # the 404s were on purpose


def test_groups_list_is_one_call_ranked_by_cost(page: Any, live_server: LiveServer, lambda_group: str) -> None:
    calls: list = []
    page.on("request", lambda request: calls.append(request.url) if "/api/" in request.url else None)
    page.goto(live_server.url)
    row = page.locator(f'tr[data-group="{lambda_group}"]')
    expect(row.locator(".cost")).to_contain_text("$")
    expect(row.locator(".findings-count")).to_have_text("1")
    assert len(calls) == 1 and "overview=1" in calls[0]
    costs = [float(c.strip("$") or 0) for c in page.locator("#groups .cost").all_inner_texts() if c.startswith("$")]
    assert costs == sorted(costs, reverse=True)


def test_left_heavy_search_next_previous_and_sandwich_by_key(page: Any, live_server: LiveServer, ui_group: str) -> None:
    origin = open_group(page, live_server, ui_group)
    assert EVIL in hover(page, origin, 0.1, 2)  # by name, '<' sorts first
    page.select_option("#order", "heavy")
    text = hover(page, origin, 0.1, 2)  # 24 samples before EVIL's 21
    assert "app.handler" in text and "Total: 24 samples" in text and "your code" in text  # re-laid out intact
    assert query(page)["order"] == ["heavy"]
    page.fill("#search", "app.")
    expect(page.locator("#functions tbody tr")).to_have_count(2)  # the search filters the table too
    page.click("#search-next")
    expect(page.locator("#flamegraph-selection")).to_contain_text("app.handler")
    expect(page.locator("#search-share")).to_contain_text("match 1 of 2")
    page.click("#search-next")
    expect(page.locator("#flamegraph-selection")).to_contain_text("app.parse")
    page.click("#search-prev")
    expect(page.locator("#flamegraph-selection")).to_contain_text("app.handler")
    page.focus("#flamegraph")
    page.keyboard.press("s")
    expect(page.locator("#sandwich-name")).to_have_text("app.handler")
    callers = page.locator("#callers").bounding_box()
    callees = page.locator("#callees").bounding_box()
    assert callers["x"] + callers["width"] <= callees["x"] and abs(callers["y"] - callees["y"]) < 1  # side by side
    page.fill("#search", "")
    page.locator("#flamegraph").scroll_into_view_if_needed()
    origin = canvas_origin(page, "#flamegraph")
    x, y, width = origin
    page.mouse.click(x + width * 0.95, y + 2 * ROW + ROW / 2, button="right")  # EVIL is on the right now
    expect(page.locator("#sandwich-name")).to_have_text(EVIL)
    no_injected_markup(page)


def test_a_label_key_holding_equals_filters(page: Any, live_server: LiveServer) -> None:
    name = unique_name("ui-label")
    key = live_server.create_group(name)
    profile = make_profile(name, start_time_unix_ns=T0)
    profile.add([Frame("<module>", "/srv/main.py", 1), Frame("tagged", "/srv/t.py", 3)], [7, 7], {"a=b": "c=d"})
    assert ingest_profile(live_server, key, profile).status_code == 202
    open_group(page, live_server, name)
    page.select_option("#label", label="c=d")
    expect(page.locator("#flamegraph-status")).to_contain_text("7 samples")


def deploy_profile(name: str, start: int, version: str, render: bool = False) -> Any:
    """``make_profile`` reported from Lambda function version ``version``; ``render`` adds a new hot function."""
    profile = make_profile(name, start_time_unix_ns=start)
    profile.metadata = {"lambda": {"function_name": name, "function_version": version}}
    if render:
        handler = [Frame("<module>", "/srv/main.py", 1), Frame("app.handler", "/srv/app.py", 10)]
        profile.add([*handler, Frame("app.render", "/srv/app.py", 50)], [6, 6])
    return profile


def test_compare_this_deploy_against_the_one_before(page: Any, live_server: LiveServer) -> None:
    name = unique_name("deploys")
    key = live_server.create_group(name)
    later = T0 + 2 * HOUR
    for profile in (
        deploy_profile(name, T0, "41"),
        deploy_profile(name, T0 + 600 * 10**9, "41"),
        deploy_profile(name, later, "42", render=True),
    ):
        assert ingest_profile(live_server, key, profile).status_code == 202
    page.goto(live_server.api(f"/groups/{name}/compare"))
    option = page.locator("#preset-deploy")
    expect(option).to_contain_text("42 vs 41")
    expect(option).to_be_enabled()
    page.select_option("#preset", "deploy")
    expect(page.locator("#diff-status")).to_contain_text("(2 profiles). Compared:")
    seconds = T0 // 10**9
    assert {key: values[0] for key, values in query(page).items() if key != "type"} == {
        "base_from": str(seconds),
        "base_to": str(seconds + 660),  # the end of version 41's last profile
        "from": str(later // 10**9),
        "to": str(later // 10**9 + 60),
    }
    expect(page.locator("#base_to")).to_have_value(str(seconds + 660))
    expect(page.locator("#diff-warning")).to_be_hidden()
    first = page.locator("#diff-table tbody tr").first
    expect(first).to_contain_text("app.render")  # the new deploy's new function is the largest change
    expect(first.locator("td.num.up")).to_contain_text("+50")
    shot(page, "compare-deploys")


def test_the_deploy_preset_says_why_it_is_unavailable(page: Any, live_server: LiveServer) -> None:
    name = unique_name("one-deploy")
    key = live_server.create_group(name)
    assert ingest_profile(live_server, key, deploy_profile(name, T0, "7")).status_code == 202
    page.goto(live_server.api(f"/groups/{name}/compare"))
    option = page.locator("#preset-deploy")
    expect(option).to_contain_text("unavailable: only one deploy seen, 7")
    expect(option).to_be_disabled()
