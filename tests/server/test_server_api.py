"""The read and admin API against a real server: groups, flame graph, recommendations, JSON errors."""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional

import pytest
import requests
from support.builders import lambda_profile
from support.server import LiveServer, assert_error, ingest_profile, make_profile, read_client, unique_name

from greenflame.analyzer.errors import UserError
from greenflame.analyzer.formats import greenflame_json
from greenflame.server import timely, views
from greenflame.server.app import create_app

HOUR_NS = 3600 * 10**9
T0 = 1_700_000_000 * 10**9


def get(server: LiveServer, path: str, params: Optional[Dict[str, str]] = None) -> requests.Response:
    return server.session.get(server.api(path), params=params, timeout=30)


def create(server: LiveServer, body: Any, token: Optional[str] = None) -> requests.Response:
    headers = {"Authorization": None if token is None else f"Bearer {token}"}  # None: no header at all
    return server.session.post(server.api("/api/v1/groups"), json=body, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def loaded(live_server: LiveServer) -> str:
    """A group with two profiles an hour apart (the second with doubled counts)."""
    name = unique_name("api")
    key = live_server.create_group(name)
    assert ingest_profile(live_server, key, make_profile(name, T0)).status_code == 202
    assert ingest_profile(live_server, key, make_profile(name, T0 + HOUR_NS, scale=2)).status_code == 202
    return name


# -- groups -----------------------------------------------------------------------


def test_create_group_returns_a_working_key(live_server: LiveServer) -> None:
    name = unique_name("new")
    response = create(live_server, {"name": name}, live_server.admin_token)
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == name and body["ingest_key"].startswith("gfi_")
    assert response.headers["Location"].endswith(f"/api/v1/groups/{name}")
    assert ingest_profile(live_server, body["ingest_key"], make_profile(name)).status_code == 202


def test_create_group_errors(live_server: LiveServer) -> None:
    name = unique_name("dup")
    assert_error(create(live_server, {"name": name}), 401, "unauthorized")
    assert_error(create(live_server, {"name": name}, "wrong-token"), 403, "forbidden")
    assert create(live_server, {"name": name}, live_server.admin_token).status_code == 201
    assert_error(create(live_server, {"name": name}, live_server.admin_token), 409, "conflict")
    for bad in ("", "-leading-dash", "has space", "<script>", "x" * 129, "a/b", ".."):
        assert_error(create(live_server, {"name": bad}, live_server.admin_token), 400, "invalid_group_name")
    assert_error(create(live_server, {"name": 42}, live_server.admin_token), 400, "bad_request")
    assert_error(create(live_server, ["not", "an", "object"], live_server.admin_token), 400, "bad_request")


def test_groups_list_counts_profiles_and_time_span(live_server: LiveServer, loaded: str) -> None:
    response = get(live_server, "/api/v1/groups")
    assert response.status_code == 200
    (group,) = [g for g in response.json()["groups"] if g["name"] == loaded]
    assert group["profile_count"] == 2
    assert group["first_seen_unix_ns"] == T0
    assert group["last_seen_unix_ns"] == T0 + HOUR_NS + 60 * 10**9
    assert group["last_received_unix_ns"] >= group["created_unix_ns"]
    names = [g["name"] for g in response.json()["groups"]]
    assert names == sorted(names)


def test_empty_group_has_no_time_span(live_server: LiveServer) -> None:
    name = unique_name("empty")
    live_server.create_group(name)
    group = get(live_server, f"/api/v1/groups/{name}").json()
    assert group["profile_count"] == 0 and group["first_seen_unix_ns"] is None


# -- flame graph ------------------------------------------------------------------


def child(node: Dict[str, Any], name: str) -> Dict[str, Any]:
    (found,) = [c for c in node["children"] if c["name"] == name]
    return found


def test_flamegraph_merges_the_group_profiles(live_server: LiveServer, loaded: str) -> None:
    response = get(live_server, f"/api/v1/groups/{loaded}/flamegraph")
    assert response.status_code == 200
    body = response.json()
    assert body["group"] == loaded and body["type"] == "cpu" and body["profile_count"] == 2
    root = body["flamegraph"]
    assert root["name"] == "all" and root["sample_type"] == "cpu"
    # cpu per profile: parse 5 + handler 1 = 6; the second profile doubles it.
    assert root["total"] == 18
    handler = child(child(root, "<module>"), "app.handler")
    assert (handler["total"], handler["self"], handler["file"], handler["line"]) == (18, 3, "/srv/app.py", 10)
    assert child(handler, "app.parse")["total"] == 15


def test_flamegraph_wall_view_and_time_range(live_server: LiveServer, loaded: str) -> None:
    wall = get(live_server, f"/api/v1/groups/{loaded}/flamegraph", {"type": "wall"}).json()
    assert wall["type"] == "wall" and wall["flamegraph"]["total"] == 36  # (6 + 2 + 4) * 3
    later = str((T0 + HOUR_NS) // 10**9)
    second = get(live_server, f"/api/v1/groups/{loaded}/flamegraph", {"from": later}).json()
    assert second["profile_count"] == 1 and second["flamegraph"]["total"] == 12
    first = get(live_server, f"/api/v1/groups/{loaded}/flamegraph", {"to": "2023-11-14T22:30:00Z"}).json()
    assert first["profile_count"] == 1 and first["flamegraph"]["total"] == 6
    assert first["to_unix_ns"] == T0 + 1000 * 10**9  # T0 is 2023-11-14T22:13:20Z
    none = get(live_server, f"/api/v1/groups/{loaded}/flamegraph", {"from": "now-1h"}).json()
    assert none["profile_count"] == 0 and none["flamegraph"]["total"] == 0


def test_flamegraph_max_nodes_prunes(live_server: LiveServer, loaded: str) -> None:
    small = get(live_server, f"/api/v1/groups/{loaded}/flamegraph", {"max_nodes": "2"}).json()
    assert small["flamegraph"]["total"] == 18

    def count(node: Dict[str, Any]) -> int:
        return 1 + sum(count(c) for c in node["children"])

    assert count(small["flamegraph"]) < count(
        get(live_server, f"/api/v1/groups/{loaded}/flamegraph").json()["flamegraph"]
    )


@pytest.mark.parametrize(
    "params",
    [
        {"type": "alloc"},
        {"from": "yesterday"},
        {"from": "now-1h", "to": "now-2h"},
        {"max_nodes": "0"},
        {"max_nodes": "x"},
    ],
)
def test_flamegraph_bad_parameters_are_400(live_server: LiveServer, loaded: str, params: Dict[str, str]) -> None:
    assert_error(get(live_server, f"/api/v1/groups/{loaded}/flamegraph", params), 400, "invalid_parameter")


def test_unknown_group_is_404(live_server: LiveServer) -> None:
    for suffix in ("", "/flamegraph", "/recommendations"):
        assert_error(get(live_server, f"/api/v1/groups/no-such-group{suffix}"), 404, "not_found")


# -- recommendations ----------------------------------------------------------------


def test_recommendations_of_a_lambda_group(live_server: LiveServer) -> None:
    name = unique_name("brown")
    key = live_server.create_group(name)
    profile = lambda_profile()
    profile.group = name
    assert ingest_profile(live_server, key, profile).status_code == 202
    response = get(live_server, f"/api/v1/groups/{name}/recommendations")
    assert response.status_code == 200
    body = response.json()
    assert body["group"] == name and body["profile_count"] == 1
    (finding,) = body["recommendations"]
    assert finding["rule"] == "aws-sdk-client-per-invocation"
    assert finding["share"] > finding["expected_share"] > 0
    assert finding["cost_usd_per_month"] > 0 and finding["co2e_kg_per_month"] > 0
    more = get(live_server, f"/api/v1/groups/{name}/recommendations", {"invocations_per_month": "1e9"}).json()
    assert more["recommendations"][0]["cost_usd_per_month"] > finding["cost_usd_per_month"]


def test_recommendations_without_findings_or_data(live_server: LiveServer, loaded: str) -> None:
    body = get(live_server, f"/api/v1/groups/{loaded}/recommendations").json()
    assert body["recommendations"] == [] and body["profile_count"] == 2
    empty = get(live_server, f"/api/v1/groups/{loaded}/recommendations", {"from": "now-1m"}).json()
    assert empty["recommendations"] == [] and empty["profile_count"] == 0
    bad = get(live_server, f"/api/v1/groups/{loaded}/recommendations", {"invocations_per_month": "-3"})
    assert_error(bad, 400, "invalid_parameter")


# -- deploys ------------------------------------------------------------------------


def versioned_profile(group: str, start_ns: int, version: Optional[str]) -> Any:
    """A small profile of ``group`` reported from Lambda function version ``version`` (None: no version)."""
    profile = make_profile(group, start_ns)
    if version is not None:
        profile.metadata = {"lambda": {"function_name": group, "function_version": version}}
    return profile


def test_deploys_are_the_versions_with_their_spans_newest_first(live_server: LiveServer) -> None:
    name = unique_name("deploys")
    key = live_server.create_group(name)
    assert get(live_server, f"/api/v1/groups/{name}/deploys").json() == {
        "group": name,
        "deploys": [],
        "profiles_scanned": 0,
        "complete": True,
    }
    minute = 60 * 10**9
    for start, version in [(T0, "7"), (T0 + 2 * minute, "7"), (T0 + 5 * minute, "8"), (T0 + 9 * minute, None)]:
        assert ingest_profile(live_server, key, versioned_profile(name, start, version)).status_code == 202
    response = get(live_server, f"/api/v1/groups/{name}/deploys")
    assert response.status_code == 200
    newest = {"version": "8", "first_seen_unix_ns": T0 + 5 * minute, "last_seen_unix_ns": T0 + 6 * minute}
    before = {"version": "7", "first_seen_unix_ns": T0, "last_seen_unix_ns": T0 + 3 * minute}
    assert response.json() == {
        "group": name,
        "deploys": [{**newest, "profile_count": 1}, {**before, "profile_count": 2}],
        "profiles_scanned": 4,
        "complete": True,
    }
    assert_error(get(live_server, "/api/v1/groups/no-such-group/deploys"), 404, "not_found")


def test_deploys_read_only_the_newest_profiles(tmp_path: Any) -> None:
    app = create_app({"data_dir": str(tmp_path), "max_query_profiles": 2, "admin_token": "t"})
    client = read_client(app)
    key = client.post("/api/v1/groups", json={"name": "g"}, headers={"Authorization": "Bearer t"}).json["ingest_key"]
    for index, version in enumerate(["1", "2", "3"]):
        body = greenflame_json.dumps(versioned_profile("g", T0 + index * HOUR_NS, version))
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        assert client.post("/api/v1/ingest", data=body, headers=headers).status_code == 202
    body = client.get("/api/v1/groups/g/deploys").json
    assert [deploy["version"] for deploy in body["deploys"]] == ["3", "2"]
    assert body["profiles_scanned"] == 2 and body["complete"] is False


# -- errors -------------------------------------------------------------------------


def test_unknown_api_path_and_method_are_json(live_server: LiveServer) -> None:
    assert_error(get(live_server, "/api/v1/nothing-here"), 404, "not_found")
    response = live_server.session.delete(live_server.api("/api/v1/groups"), timeout=10)
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    response = live_server.session.get(live_server.api("/api/v1/ingest"), timeout=10)
    assert_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize(
    "limits, query",
    [
        ({"max_summed_profiles": 1, "max_query_profiles": 5}, {}),  # summed from the rollups
        ({"max_summed_profiles": 5, "max_query_profiles": 1}, {"label": "k=v"}),  # merged with labels
    ],
)
def test_range_too_large_is_400(tmp_path: Any, limits: Dict[str, int], query: Dict[str, str]) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "t", **limits})
    client = read_client(app)
    key = client.post("/api/v1/groups", json={"name": "busy"}, headers={"Authorization": "Bearer t"}).json["ingest_key"]
    for start in (T0, T0 + HOUR_NS):
        body = greenflame_json.dumps(make_profile("busy", start))
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        assert client.post("/api/v1/ingest", data=body, headers=headers).status_code == 202
    response = client.get("/api/v1/groups/busy/flamegraph", query_string=query)
    assert response.status_code == 400 and response.json["error"]["code"] == "range_too_large"
    one = {**query, "to": str(T0 // 10**9 + 1)}
    assert client.get("/api/v1/groups/busy/flamegraph", query_string=one).status_code == 200


def test_a_late_read_gets_the_last_answer_with_its_age(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "t", "read_deadline_ms": 50})
    client = read_client(app)
    key = client.post("/api/v1/groups", json={"name": "g"}, headers={"Authorization": "Bearer t"}).json["ingest_key"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(start_ns: int) -> None:
        body = greenflame_json.dumps(make_profile("g", start_ns))
        assert client.post("/api/v1/ingest", data=body, headers=headers).status_code == 202

    def flamegraph(**headers: str) -> Any:
        return client.get("/api/v1/groups/g/flamegraph", query_string={"from": "0"}, headers=headers)

    post(T0)
    first = flamegraph()
    assert first.json["flamegraph"]["total"] == 6 and "Age" not in first.headers
    post(T0 + HOUR_NS)
    unblocked = threading.Event()
    slow = views.flamegraph_view

    def slow_view(*args: Any) -> Any:
        assert unblocked.wait(10)
        return slow(*args)

    monkeypatch.setattr(views, "flamegraph_view", slow_view)
    late = flamegraph()
    assert late.json == first.json and late.headers["Age"] == "0"
    unblocked.set()
    fresh = flamegraph(**{"Cache-Control": "no-cache"})
    assert fresh.json["flamegraph"]["total"] == 12 and "Age" not in fresh.headers
    app.extensions[timely.EXTENSION_KEY].close(wait=True)  # the late read's computation ends with the test


def test_the_read_refresh_setting_reaches_the_timely_reads(tmp_path: Any) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "t", "read_refresh_s": 3})
    assert app.extensions[timely.EXTENSION_KEY].refresh_s == 3
    assert create_app({"data_dir": str(tmp_path), "admin_token": "t"}).extensions[timely.EXTENSION_KEY].refresh_s == 5
    with pytest.raises(UserError, match="read_refresh_s must not be negative"):
        create_app({"data_dir": str(tmp_path), "admin_token": "t", "read_refresh_s": -1})


def test_unexpected_errors_are_json_without_traceback(tmp_path: Any) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "t"})

    @app.get("/api/v1/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    @app.get("/boom")
    def page_boom() -> str:
        raise RuntimeError("secret internal detail")

    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer t"  # routes not in access.RULES need admin scope
    response = client.get("/api/v1/boom")
    assert response.status_code == 500 and response.is_json
    assert response.json == {"error": {"code": "internal_error", "message": response.json["error"]["message"]}}
    assert b"secret" not in response.data and b"Traceback" not in response.data
    page = client.get("/boom")
    assert page.status_code == 500 and b"secret" not in page.data and b"Traceback" not in page.data
