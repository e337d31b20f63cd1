"""Hostile profiles (issue 17, items 5 and 6): each gets a 4xx at ingest, or every endpoint of
every group keeps answering 200, quickly, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from flask.testing import FlaskClient
from support.server import read_client

from greenflame.analyzer import tree
from greenflame.analyzer.formats import greenflame_json
from greenflame.analyzer.model import Frame, Profile, ProfileError
from greenflame.server.app import create_app, shut_down
from greenflame.server.errors import ApiError
from greenflame.server.ingest import TRUNCATED_FRAME, check_bounds, truncate_stacks
from greenflame.server.settings import Settings

ADMIN = {"Authorization": "Bearer admin"}
NOW_NS = time.time_ns()
Mutation = Callable[[Dict[str, Any]], None]


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def _deep_stack(depth: int) -> Mutation:
    def mutate(doc: Dict[str, Any]) -> None:
        doc["frames"] = [{"function": f"f{i}", "file": "/srv/deep.py", "line": i} for i in range(depth)]
        doc["samples"] = [{"stack": list(range(depth)), "values": [3, 2]}]

    return mutate


def _two_big_values(doc: Dict[str, Any]) -> None:
    doc["samples"][0]["values"] = [2**62, 1]
    doc["samples"].append({"stack": [0], "values": [2**62, 1]})


#: case name -> (change to a valid document, whether ingest must refuse it)
HOSTILE: Dict[str, Any] = {
    "start-int64-max": (lambda d: d.update(start_time_unix_ns=2**63 - 1), True),
    "start-2-64": (lambda d: d.update(start_time_unix_ns=2**64), True),
    "value-1e30": (lambda d: d["samples"][0].update(values=[10**30, 1]), True),
    "two-values-2-62": (_two_big_values, True),
    "lone-surrogate-name": (lambda d: d["frames"][0].update(function="\ud800"), True),
    "lone-surrogate-label": (lambda d: d["samples"][0].update(labels={"k": "\udfff"}), True),
    "metadata-491-levels": (lambda d: d.update(metadata={"x": _nested(491)}), True),
    "metadata-33-levels": (lambda d: d.update(metadata={"x": _nested(32)}), True),
    "metadata-huge": (lambda d: d.update(metadata={"x": "y" * 70_000}), True),
    "metadata-int-1e30": (lambda d: d.update(metadata={"x": [10**30]}), True),
    "start-in-2200": (lambda d: d.update(start_time_unix_ns=7_258_118_400 * 10**9), True),
    "start-at-zero": (lambda d: d.update(start_time_unix_ns=0), True),
    "stack-500-frames": (_deep_stack(500), False),
    "stack-100000-frames": (_deep_stack(100_000), False),
}


def _document(group: str) -> Dict[str, Any]:
    profile = Profile(group=group, start_time_unix_ns=NOW_NS - 120 * 10**9, duration_ns=60 * 10**9)
    profile.add([Frame("main", "/srv/app.py", 1), Frame("work", "/srv/app.py", 5)], [5, 3])
    doc: Dict[str, Any] = json.loads(greenflame_json.dumps(profile))
    return doc


def _endpoints(group: str) -> List[str]:
    api = f"/api/v1/groups/{group}"
    return [
        "/",
        f"/groups/{group}",
        "/api/v1/groups",
        "/api/v1/groups?overview=1",
        api,
        f"{api}/flamegraph",
        f"{api}/flamegraph?view=bottom-up",
        f"{api}/sandwich?function=f1",
        f"{api}/functions",
        f"{api}/diff",
        f"{api}/diff/functions",
        f"{api}/timeseries",
        f"{api}/labels",
        f"{api}/recommendations",
        f"{api}/findings",
        f"{api}/anomalies",
        "/api/v1/tickets",
    ]


def _post(client: FlaskClient, name: str) -> Any:
    key = client.post("/api/v1/groups", json={"name": name}, headers=ADMIN).get_json()["ingest_key"]
    mutate, _ = HOSTILE[name]
    doc = _document(name)
    mutate(doc)
    body = json.dumps(doc).encode("utf-8", "surrogatepass")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return client.post("/api/v1/ingest", data=body, headers=headers)


def _check_corpus(client: FlaskClient) -> None:
    for name, (_, refused) in HOSTILE.items():
        response = _post(client, name)
        if refused:
            assert response.status_code == 400, (name, response.get_data())
            assert response.get_json()["error"]["code"] == "malformed_profile"
        else:
            assert response.status_code == 202, (name, response.get_data())
    for name in HOSTILE:
        for path in _endpoints(name):
            started = time.monotonic()
            response = client.get(path)
            assert response.status_code == 200, (name, path, response.get_data()[:300])
            assert time.monotonic() - started < 10, (name, path)


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[FlaskClient]:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "admin"})
    yield read_client(app)
    shut_down(app, 10)  # no analysis of these groups may outlive the test (or run at the interpreter's exit)


def test_hostile_profiles_on_sqlite(sqlite_client: FlaskClient) -> None:
    _check_corpus(sqlite_client)


def test_hostile_profiles_on_postgresql(tmp_path: Path, postgres_database: Callable[[], str]) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "admin", "database_url": postgres_database()})
    try:
        _check_corpus(read_client(app))
    finally:  # the pipeline's and the rollups' threads must not outlive the throw-away database
        shut_down(app, 10)


def test_deep_stack_is_cut_to_the_limit_with_the_agents_marker(sqlite_client: FlaskClient) -> None:
    assert _post(sqlite_client, "stack-500-frames").status_code == 202
    tree = sqlite_client.get("/api/v1/groups/stack-500-frames/flamegraph").get_json()
    depth, node = 0, tree["flamegraph"]
    while node.get("children"):
        node = node["children"][0]
        depth += 1
    assert depth == Settings().max_stack_depth
    assert node["name"] == TRUNCATED_FRAME.function


def test_truncate_stacks_merges_stacks_equal_after_the_cut() -> None:
    profile = Profile(group="g")
    frames = [Frame(f"f{i}") for i in range(6)]
    profile.add(frames[:5], [1, 1])
    profile.add([*frames[:4], frames[5]], [2, 0])
    profile.add(frames[:2], [4, 4])
    cut = truncate_stacks(profile, 3)
    assert sorted((tuple(f.function for f in stack), value) for stack, value, _ in cut.stacks("wall")) == [
        (("f0", "f1"), 4),
        (("f0", "f1", "[truncated]"), 3),
    ]
    assert len(cut.frames) == 3
    assert truncate_stacks(cut, 3) is cut


@pytest.mark.parametrize(
    ("start_s", "duration_s", "refused"),
    [(-100, 60, False), (-3 * 86400 - 1, 60, True), (3599 - 60, 60, False), (3601 - 60, 60, True)],
)
def test_time_window_around_the_servers_clock(start_s: int, duration_s: int, refused: bool) -> None:
    settings = Settings(ingest_max_age_s=3 * 86400, ingest_max_ahead_s=3600)
    profile = Profile(group="g", start_time_unix_ns=NOW_NS + start_s * 10**9, duration_ns=duration_s * 10**9)
    if refused:
        with pytest.raises(ApiError):
            check_bounds(profile, settings, NOW_NS)
    else:
        check_bounds(profile, settings, NOW_NS)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(duration_ns=2**63), "signed 64-bit"),
        (lambda d: d["frames"][0].update(line=-(2**63) - 1), "at least 0"),
        (lambda d: d.update(group="g\udc80"), "lone surrogate"),
        (lambda d: d["samples"][0].update(labels={"\ud800": "v"}), "lone surrogate"),
        (lambda d: d.update(metadata={"k": [float("inf")]}), "finite"),
    ],
)
def test_wire_format_bounds(mutate: Mutation, message: str) -> None:
    doc = _document("g")
    mutate(doc)
    with pytest.raises(ProfileError, match=message):
        greenflame_json.profile_from_dict(doc)


def test_metadata_at_the_depth_limit_is_accepted() -> None:
    doc = _document("g")
    doc["metadata"] = {"x": _nested(30)}
    assert greenflame_json.profile_from_dict(doc).metadata == {"x": _nested(30)}


def test_views_of_deeper_trees_fold_below_the_depth_limit() -> None:
    """Profiles stored before ingest cut stacks still give views a JSON encoder can write."""
    profile = Profile(group="g")
    profile.add([Frame(f"f{i}") for i in range(1000)], [3, 2])
    profile.add([Frame(f"f{i}") for i in range(5)], [1, 1])
    built = tree.build_tree(profile, "cpu")
    for view in (tree.flamegraph(profile, "cpu"), tree.diff(built, built)):
        json.dumps(view)
        node, depth = view, 0
        while node["children"]:
            node, depth = node["children"][0], depth + 1
        assert (depth, node["name"], node["total"]) == (tree.MAX_DEPTH, "[truncated]", 2)
