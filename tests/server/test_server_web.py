"""The web UI's pages and static files, served by a real server, and escaping of attacker text."""

from __future__ import annotations

import gzip
import hashlib
import re

import pytest
from support.openapi import check
from support.paths import ROOT
from support.server import LiveServer, ingest_profile, make_profile, unique_name

from greenflame.analyzer.model import Frame, Profile
from greenflame.server import views

EVIL = "<img src=x onerror=alert(1)>"
STATIC = ROOT / "server" / "static"


@pytest.fixture(scope="module")
def evil_group(live_server: LiveServer) -> str:
    """A group whose profile has a frame named like an HTML injection."""
    name = unique_name("web")
    key = live_server.create_group(name)
    profile = make_profile(name)
    profile.add([Frame("<module>", "/srv/main.py", 1), Frame(EVIL, "<script>alert(2)</script>.py", 3)], [7, 7])
    assert ingest_profile(live_server, key, profile).status_code == 202
    return name


def test_index_lists_groups(live_server: LiveServer, evil_group: str) -> None:
    response = live_server.session.get(live_server.url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert f'href="/groups/{evil_group}"' in response.text
    assert "Content-Security-Policy" in response.headers


def test_group_page_has_canvas_and_scripts(live_server: LiveServer, evil_group: str) -> None:
    response = live_server.session.get(live_server.api(f"/groups/{evil_group}"), timeout=10)
    assert response.status_code == 200
    html = response.text
    assert '<canvas id="flamegraph"' in html
    assert re.search(r'<script src="/static/flamegraph\.js\?v=[0-9a-f]{12}"></script>', html)
    assert re.search(r'<script src="/static/group\.js\?v=[0-9a-f]{12}"></script>', html)
    assert f'data-api="/api/v1/groups/{evil_group}"' in html
    assert 'id="recommendations"' in html
    # No inline script: the Content-Security-Policy allows our own files only.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_static_files_are_served(live_server: LiveServer) -> None:
    for name, kind in (("flamegraph.js", "javascript"), ("group.js", "javascript"), ("style.css", "text/css")):
        response = live_server.session.get(live_server.api(f"/static/{name}"), timeout=10)
        assert response.status_code == 200 and kind in response.headers["Content-Type"]
        assert response.content == (STATIC / name).read_bytes()


def test_unknown_group_page_is_404_html(live_server: LiveServer) -> None:
    response = live_server.session.get(live_server.api("/groups/<script>alert(1)</script>"), timeout=10)
    assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html")
    assert "<script>alert(1)" not in response.text


def test_frame_names_are_only_ever_data(live_server: LiveServer, evil_group: str) -> None:
    graph = live_server.session.get(live_server.api(f"/api/v1/groups/{evil_group}/flamegraph"), timeout=10)
    assert graph.headers["Content-Type"] == "application/json"
    assert graph.headers["X-Content-Type-Options"] == "nosniff"
    names = [child["name"] for child in graph.json()["flamegraph"]["children"][0]["children"]]
    assert EVIL in names  # the text is kept as is, as JSON data
    for path in ("/", f"/groups/{evil_group}"):
        page = live_server.session.get(live_server.api(path), timeout=10).text
        assert "<img" not in page and "onerror" not in page


def test_scripts_never_insert_html() -> None:
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for script in STATIC.glob("*.js"):
        assert not sinks.search(script.read_text(encoding="utf-8")), script.name


def test_templates_keep_autoescape() -> None:
    templates = ROOT / "server" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text, template.name


def test_api_json_is_gzipped_when_the_client_accepts_it(live_server: LiveServer, evil_group: str) -> None:
    url = live_server.api(f"/api/v1/groups/{evil_group}/flamegraph")
    gzipped = live_server.session.get(url, headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    assert gzipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in gzipped.headers["Vary"]
    compressed = gzipped.raw.read(decode_content=False)
    plain = live_server.session.get(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "Content-Encoding" not in plain.headers
    assert gzip.decompress(compressed) == plain.content and len(compressed) < len(plain.content)


def test_static_files_are_versioned_and_cached_for_good(live_server: LiveServer, evil_group: str) -> None:
    html = live_server.session.get(live_server.api(f"/groups/{evil_group}"), timeout=10).text
    links = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    names = {link.split("/")[-1].split("?")[0] for link in links}
    assert {"favicon.svg", "style.css", "common.js", "group.js"} <= names
    for link in links:
        path, _, version = link.partition("?v=")
        assert version == hashlib.sha256((STATIC / path.split("/")[-1]).read_bytes()).hexdigest()[:12], link
        response = live_server.session.get(live_server.api(link), timeout=10)
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    unversioned = live_server.session.get(live_server.api("/static/group.js"), timeout=10)
    assert unversioned.headers["Cache-Control"] == "no-cache"


def test_unknown_group_page_is_a_styled_404_with_a_way_back(live_server: LiveServer) -> None:
    response = live_server.session.get(live_server.api("/groups/nobody-here"), timeout=10)
    assert response.status_code == 404 and 'id="not-found-page"' in response.text
    assert 'href="/"' in response.text and "There is no group called" in response.text


def test_every_template_links_static_files_through_asset_url() -> None:
    for template in (ROOT / "server" / "templates").glob("*.html"):
        assert "url_for('static'" not in template.read_text(encoding="utf-8"), template.name


# -- what the UI reads: pure views and the endpoints added for it, checked against the OpenAPI document


def test_functions_diff_view_ranks_by_change_in_share() -> None:
    base, target = Profile(group="d"), Profile(group="d")
    for profile, (slow, fast) in ((base, (1, 9)), (target, (9, 1))):
        profile.add([Frame("main", "/a.py", 1), Frame("slow", "/a.py", 2)], [slow, slow])
        profile.add([Frame("main", "/a.py", 1), Frame("fast", "/a.py", 3)], [fast, fast])
    table = views.functions_diff_view(base, target, "cpu", 10)
    rows = {row["name"]: row for row in table["functions"]}
    assert [row["name"] for row in table["functions"]] == ["slow", "fast", "main"]  # main's share did not change
    assert rows["slow"]["change"] == pytest.approx(0.8) and rows["fast"]["change"] == pytest.approx(-0.8)
    assert rows["slow"]["change"] == pytest.approx(rows["slow"]["total_share"] - rows["slow"]["base_total_share"])
    assert [abs(row["change"]) for row in table["functions"]] == sorted(
        (abs(row["change"]) for row in table["functions"]), reverse=True
    )
    empty = views.functions_diff_view(Profile(group="d"), target, "cpu", 10)
    assert empty["base_total"] == 0 and all(row["base_total_share"] == 0 for row in empty["functions"])


def test_ui_endpoints_conform_to_the_openapi_document(live_server: LiveServer, evil_group: str) -> None:
    get = live_server.session.get
    groups = get(live_server.api("/api/v1/groups?overview=1"), timeout=10)
    check(groups, "/api/v1/groups")
    mine = next(group for group in groups.json()["groups"] if group["name"] == evil_group)
    assert mine["overview"]["activity"]["points"] and mine["overview"]["open_findings"] >= 0
    assert "overview" not in get(live_server.api("/api/v1/groups"), timeout=10).json()["groups"][0]
    diff = get(live_server.api(f"/api/v1/groups/{evil_group}/diff/functions?base_from=now-1m&base_to=now"), timeout=10)
    check(diff, "/api/v1/groups/{name}/diff/functions")
    assert diff.json()["diff"]["base_total"] == 0 and diff.json()["diff"]["total"] > 0
    rule = get(live_server.api("/api/v1/rules/aws-sdk-client-per-invocation"), timeout=10)
    check(rule, "/api/v1/rules/{rule_id}")
    assert "def handler" in rule.json()["bad_example"] and "def handler" in rule.json()["good_example"]
    missing = get(live_server.api("/api/v1/rules/no-such-rule"), timeout=10)
    check(missing, "/api/v1/rules/{rule_id}")
    assert missing.status_code == 404
    graph = get(live_server.api(f"/api/v1/groups/{evil_group}/flamegraph"), timeout=10).json()
    assert graph["sample_period_ns"] == 10_000_000
