"""The analysis views of the API against a real server: trees, sandwich, functions, diff,
time series and labels, each response checked against the OpenAPI document."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from support.openapi import check
from support.server import LiveServer, ingest_profile, make_profile, unique_name

from greenflame.analyzer.model import Frame

T0 = 1_700_000_000
HOUR = 3600


@pytest.fixture(scope="module")
def group(live_server: LiveServer) -> str:
    """Two profiles an hour apart; the second adds a /b endpoint stack through app.parse."""
    name = unique_name("views")
    key = live_server.create_group(name)
    first = make_profile(name, T0 * 10**9)
    second = make_profile(name, (T0 + HOUR) * 10**9)
    stack = [Frame("<module>", "/srv/main.py", 1), Frame("app.parse", "/srv/app.py", 30), Frame("json.loads", "", 0)]
    second.add(stack, [10, 10], {"endpoint": "/b"})
    for profile in (first, second):
        assert ingest_profile(live_server, key, profile).status_code == 202
    return name


def get(server: LiveServer, path: str, template: str, **params: Any) -> Dict[str, Any]:
    response = server.session.get(server.api(path), params=params, timeout=30)
    check(response, template)
    assert response.status_code == 200, response.text
    body: Dict[str, Any] = response.json()
    return body


def names(node: Dict[str, Any]) -> List[str]:
    return [child["name"] for child in node["children"]]


def test_top_down_tree_has_kinds_and_caches_consistently(live_server: LiveServer, group: str) -> None:
    template = "/api/v1/groups/{name}/flamegraph"
    body = get(live_server, f"/api/v1/groups/{group}/flamegraph", template)
    tree = body["flamegraph"]
    assert body["view"] == "top-down" and tree["total"] == 22 and tree["kind"] == "stdlib"
    (module,) = tree["children"]
    assert module["kind"] == "user" and names(module) == ["app.handler", "app.parse"]
    assert get(live_server, f"/api/v1/groups/{group}/flamegraph", template) == body


def test_bottom_up_focus_and_label_filter(live_server: LiveServer, group: str) -> None:
    path, template = f"/api/v1/groups/{group}/flamegraph", "/api/v1/groups/{name}/flamegraph"
    hot = get(live_server, path, template, view="bottom-up")["flamegraph"]
    leaves = {child["name"]: child["total"] for child in hot["children"]}
    assert leaves == {"app.parse": 10, "json.loads": 10, "app.handler": 2}
    focused = get(live_server, path, template, focus="json.loads")["flamegraph"]
    assert focused["total"] == 10
    labelled = get(live_server, path, template, label="endpoint=/b", type="wall")["flamegraph"]
    assert labelled["total"] == 10
    none = get(live_server, path, template, label="endpoint=/nope")["flamegraph"]
    assert none["total"] == 0


def test_sandwich_of_a_function(live_server: LiveServer, group: str) -> None:
    body = get(live_server, f"/api/v1/groups/{group}/sandwich", "/api/v1/groups/{name}/sandwich", function="app.parse")
    callers, callees = body["sandwich"]["callers"], body["sandwich"]["callees"]
    assert callers["name"] == callees["name"] == "app.parse"
    assert callers["total"] == callees["total"] == 20  # 5 + 5 through the handler, 10 directly
    assert sorted(names(callers)) == ["<module>", "app.handler"]
    assert names(callees) == ["json.loads"] and callees["self"] == 10


def test_functions_table(live_server: LiveServer, group: str) -> None:
    rows = get(live_server, f"/api/v1/groups/{group}/functions", "/api/v1/groups/{name}/functions")["functions"]
    by_name = {row["name"]: row for row in rows}
    assert (by_name["app.parse"]["self"], by_name["app.parse"]["total"]) == (10, 20)
    assert by_name["json.loads"]["kind"] == "stdlib" and by_name["app.parse"]["kind"] == "user"
    assert rows[0]["self"] >= rows[-1]["self"]


def test_diff_of_two_ranges(live_server: LiveServer, group: str) -> None:
    params = {"base_from": T0, "base_to": T0 + 60, "from": T0 + HOUR, "to": T0 + HOUR + 60}
    body = get(live_server, f"/api/v1/groups/{group}/diff", "/api/v1/groups/{name}/diff", **params)
    tree = body["flamegraph"]
    assert (tree["base_total"], tree["total"]) == (6, 16)
    assert body["base"]["profile_count"] == body["target"]["profile_count"] == 1
    module = tree["children"][0]
    parse = next(child for child in module["children"] if child["name"] == "app.parse")
    assert (parse["base_total"], parse["total"]) == (0, 10)


def test_diff_of_two_groups(live_server: LiveServer, group: str) -> None:
    other = unique_name("views-other")
    key = live_server.create_group(other)
    assert ingest_profile(live_server, key, make_profile(other, T0 * 10**9, scale=3)).status_code == 202
    body = get(live_server, f"/api/v1/groups/{group}/diff", "/api/v1/groups/{name}/diff", base_group=other)
    assert body["base"]["group"] == other and body["flamegraph"]["base_total"] == 18


def test_timeseries_buckets(live_server: LiveServer, group: str) -> None:
    path, template = f"/api/v1/groups/{group}/timeseries", "/api/v1/groups/{name}/timeseries"
    body = get(live_server, path, template, step=1800)
    assert body["step_ns"] == 1800 * 10**9
    assert [(p["cpu"], p["wall"], p["profiles"]) for p in body["points"]] == [(6, 12, 1), (16, 22, 1)]
    auto = get(live_server, path, template)
    assert sum(p["profiles"] for p in auto["points"]) == 2


def test_labels(live_server: LiveServer, group: str) -> None:
    body = get(live_server, f"/api/v1/groups/{group}/labels", "/api/v1/groups/{name}/labels")
    assert body["labels"] == {"endpoint": [{"value": "/b", "samples": 10}]}


@pytest.mark.parametrize(
    "path, params",
    [
        ("flamegraph", {"view": "sideways"}),
        ("flamegraph", {"label": "no-equals"}),
        ("flamegraph", {"max_nodes": "1"}),
        ("sandwich", {}),
        ("functions", {"limit": "0"}),
        ("diff", {"base_from": "garbage"}),
        ("timeseries", {"step": "1", "from": "0"}),
    ],
)
def test_bad_parameters_are_400(live_server: LiveServer, group: str, path: str, params: Dict[str, str]) -> None:
    response = live_server.session.get(live_server.api(f"/api/v1/groups/{group}/{path}"), params=params, timeout=30)
    assert response.status_code == 400, response.text
    check(response, f"/api/v1/groups/{{name}}/{path}")


def test_unknown_base_group_is_404(live_server: LiveServer, group: str) -> None:
    url = live_server.api(f"/api/v1/groups/{group}/diff")
    response = live_server.session.get(url, params={"base_group": "nope"}, timeout=30)
    assert response.status_code == 404
