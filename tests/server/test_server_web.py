"""The web UI's pages and static files, served by a real server, and escaping of attacker text."""

from __future__ import annotations

import re

import pytest
from support.paths import ROOT
from support.server import LiveServer, ingest_profile, make_profile, unique_name

from greenflame.analyzer.model import Frame

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
