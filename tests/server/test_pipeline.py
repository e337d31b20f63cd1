"""The analysis pipeline end to end: real ``greenflame serve`` processes, real HTTP, stand-in trackers.

Waiting uses polling with a generous deadline (a failure message, never a duration assertion).
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests
from support.browser import sign_in
from support.builders import lambda_profile
from support.paths import TRACKERS
from support.server import LiveServer, ingest_profile, server_command, server_env, unique_name
from support.server import wait_for as wait_until

sys.path.insert(0, str(TRACKERS))

from fake_github import FakeGitHub
from findings import closed_port

from greenflame.analyzer.model import Frame, Profile
from greenflame.server.db import make_engine
from greenflame.server.pipeline_store import PipelineStore

TOKEN = "ghp_pipeline_test_token_0123"
WAIT_S = 90.0
FAST = {
    "GREENFLAME_ANALYSIS_DELAY_MS": "0",
    "GREENFLAME_ANALYSIS_INTERVAL_S": "0",
    "GREENFLAME_ANALYSIS_WINDOW_S": "600",
}
T0 = 1_767_571_200 * 10**9  # 2026-01-05 00:00 UTC


@pytest.fixture()
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(TOKEN) as server:
        yield server


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    """The shared :func:`fixtures_server.wait_for` with this module's longer timeout."""
    return wait_until(what, probe, WAIT_S)


def admin(server: LiveServer) -> Dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}"}


def get(server: LiveServer, path: str, **kwargs: Any) -> requests.Response:
    return server.session.get(server.api(path), timeout=30, **kwargs)


def findings(server: LiveServer, group: str) -> List[Dict[str, Any]]:
    response = get(server, f"/api/v1/groups/{group}/findings")
    assert response.status_code == 200, response.text
    found: List[Dict[str, Any]] = response.json()["findings"]
    return found


def states(server: LiveServer, group: str) -> Dict[str, str]:
    return {f["rule"]: f["state"] for f in findings(server, group)}


def analysed(server: LiveServer, group: str, minute: int) -> bool:
    """True once the latest analysis covers the profile that starts ``minute`` minutes after T0."""
    summary = get(server, f"/api/v1/groups/{group}/findings").json()["analysis"]["summary"] or {}
    return bool(summary.get("data_until_unix_ns", 0) > T0 + minute * 60 * 10**9)


def put_channels(server: LiveServer, group: str, channels: List[Dict[str, Any]]) -> requests.Response:
    url = server.api(f"/api/v1/groups/{group}/channels")
    return server.session.put(url, json={"channels": channels}, headers=admin(server), timeout=30)


def brown(group: str, start_ns: int, client_in_handler: bool = True) -> Profile:
    """The seed's Lambda function: a boto3 client per invocation (or, fixed, once at init)."""
    profile = lambda_profile(client_in_handler=client_in_handler)
    profile.group = group
    profile.start_time_unix_ns = start_ns
    return profile


def send(server: LiveServer, key: str, profile: Profile) -> None:
    response = ingest_profile(server, key, profile)
    assert response.status_code == 202, response.text


# -- findings across time, and one GitHub issue ------------------------------------------


def test_finding_is_new_then_ongoing_then_resolved_with_one_issue(
    server_factory: Callable[..., LiveServer], github: FakeGitHub, tmp_path: Path
) -> None:
    server = server_factory(env={**FAST, "GREENFLAME_PUBLIC_URL": "https://greenflame.example"})
    group = unique_name("brown")
    key = server.create_group(group)
    channel = {"to": "github:acme/shop", "api_url": github.url, "token": TOKEN, "labels": ["perf"]}
    assert put_channels(server, group, [channel]).status_code == 200

    send(server, key, brown(group, T0))
    wait_for("the finding as new", lambda: states(server, group) == {"aws-sdk-client-per-invocation": "new"})
    (issue,) = wait_for("one GitHub issue", lambda: list(github.issues.values()))
    assert issue["state"] == "open" and "https://greenflame.example/groups/" in issue["body"]

    send(server, key, brown(group, T0 + 60 * 10**9))
    wait_for("the finding as ongoing", lambda: states(server, group) == {"aws-sdk-client-per-invocation": "ongoing"})

    # Later, the fixed function only: three analyses without the pattern, over an hour after it.
    for minute in (60, 61, 62):
        send(server, key, brown(group, T0 + minute * 60 * 10**9, client_in_handler=False))
        wait_for(f"the analysis at minute {minute}", lambda m=minute: analysed(server, group, m))
    wait_for("the finding as resolved", lambda: states(server, group) == {"aws-sdk-client-per-invocation": "resolved"})
    wait_for("the issue closed", lambda: github.issues[issue["number"]]["state"] == "closed")
    assert len(github.issues) == 1 and len(github.requests("POST")) >= 1
    assert sum(1 for r in github.requests("POST") if r.raw_path.endswith("/issues")) == 1

    wait_for("the ticket closed in the API", lambda: findings(server, group)[0]["tickets"][0]["state"] == "closed")
    (current,) = findings(server, group)
    assert current["first_seen_unix_ns"] < current["last_seen_unix_ns"] < current["resolved_unix_ns"]
    (ticket,) = current["tickets"]
    assert (ticket["ticket_id"], ticket["state"], ticket["error"]) == (str(issue["number"]), "closed", None)
    listed = get(server, "/api/v1/tickets", params={"group": group}).json()["tickets"]
    assert [t["last_action"] for t in listed] == ["closed"]

    # The command line reads the same database the server writes.
    status = subprocess.run(
        server_command("tickets", "status"),
        env=server_env(server.data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert group in status.stdout and "closed" in status.stdout


# -- trackers that are down or refuse the credentials ---------------------------------------


def test_a_tracker_that_is_down_never_fails_ingest(server_factory: Callable[..., LiveServer], page: Any) -> None:
    server = server_factory(env=FAST)
    group = unique_name("down")
    key = server.create_group(group)
    down = {"to": "github:acme/shop", "api_url": closed_port(), "token": TOKEN, "max_attempts": 1}
    assert put_channels(server, group, [down]).status_code == 200
    send(server, key, brown(group, T0))
    wait_for("the finding", lambda: states(server, group) == {"aws-sdk-client-per-invocation": "new"})

    def failed_ticket() -> Optional[Dict[str, Any]]:
        tickets = get(server, "/api/v1/tickets", params={"group": group}).json()["tickets"]
        return tickets[0] if tickets and tickets[0]["error"] else None

    ticket = wait_for("the failure to show", failed_ticket)
    assert ticket["ticket_id"] is None and ticket["failures"] >= 1 and "github" in ticket["error"].lower()
    send(server, key, brown(group, T0 + 60 * 10**9))  # still accepted; the next run retries
    wait_for("a retry", lambda: (failed_ticket() or {}).get("failures", 0) >= 2)
    sign_in(page, server.url, server.read_token)
    page.goto(f"{server.url}/groups/{group}/findings")
    status = page.locator(".ticket-status").first
    status.wait_for(timeout=15000)
    assert "delivery failed" in status.inner_text() and "attempts" in status.inner_text()


def test_rejected_credentials_are_visible_and_retried_after_a_fix(
    server_factory: Callable[..., LiveServer], github: FakeGitHub
) -> None:
    server = server_factory(env=FAST)
    group = unique_name("creds")
    key = server.create_group(group)
    channel = {"to": "github:acme/shop", "api_url": github.url, "token": "wrong-token", "max_attempts": 1}
    assert put_channels(server, group, [channel]).status_code == 200
    send(server, key, brown(group, T0))

    def ticket() -> Dict[str, Any]:
        tickets = get(server, "/api/v1/tickets", params={"group": group}).json()["tickets"]
        return tickets[0] if tickets else {}

    wait_for("the credential failure", lambda: ticket().get("error"))
    assert not github.issues and "wrong-token" not in str(ticket())
    shown = get(server, f"/api/v1/groups/{group}/channels", headers=admin(server)).json()
    assert shown["channels"][0]["token"] == "stored" and "wrong-token" not in str(shown)
    assert put_channels(server, group, [{**channel, "token": TOKEN}]).status_code == 200  # re-run at once
    wait_for("the issue after the fix", lambda: ticket().get("state") == "open")
    assert len(github.issues) == 1 and ticket()["error"] is None


def test_channel_api_errors(live_server: LiveServer) -> None:
    group = unique_name("chan")
    live_server.create_group(group)
    url = live_server.api(f"/api/v1/groups/{group}/channels")
    assert live_server.anonymous.get(url, timeout=30).status_code == 401
    wrong = live_server.session.get(url, headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 403
    assert live_server.session.get(url, timeout=30).status_code == 403  # a read token is not admin
    bad = put_channels(live_server, group, [{"to": "svn:trunk", "token": "t"}])
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_channels"
    assert put_channels(live_server, "no-such-group", []).status_code == 404
    feedback = live_server.api("/api/v1/anomalies/" + "0" * 32 + "/feedback")
    assert live_server.session.post(feedback, json={"useful": True}, timeout=30).status_code == 404
    assert get(live_server, f"/api/v1/groups/{group}/findings", params={"state": "odd"}).status_code == 400


# -- anomalies and feedback ----------------------------------------------------------------

HANDLER = Frame("handler", "/var/task/app.py", 5)
PARSE = Frame("parse", "/var/task/app.py", 20)
LOADS = Frame("loads", "/usr/lib/python3.11/json/__init__.py", 299)
QUERY = Frame("query", "/var/task/db.py", 8)


def service_run(group: str, count: int = 40, regression_from: int = 20) -> List[Profile]:
    """Ten-second profiles of a service; from ``regression_from`` on, app.parse takes 7% of CPU instead of 5%."""
    rng = random.Random(7)
    start = T0 + 14 * 3600 * 10**9
    out = []
    for i in range(count):
        share = 0.07 if i >= regression_from else 0.05
        counts = {"parse": 0, "query": 0, "handler": 0}
        for _ in range(4000):
            draw = rng.random()
            counts["parse" if draw < share else "query" if draw < share + 0.5 else "handler"] += 1
        profile = Profile(group=group, start_time_unix_ns=start + i * 10 * 10**9, duration_ns=10 * 10**9)
        profile.add([HANDLER, PARSE, LOADS], [counts["parse"]] * 2)
        profile.add([HANDLER, QUERY], [counts["query"]] * 2)
        profile.add([HANDLER], [counts["handler"]] * 2)
        out.append(profile)
    return out


def test_regression_halfway_is_an_anomaly_and_feedback_changes_the_next_report(
    server_factory: Callable[..., LiveServer], page: Any
) -> None:
    server = server_factory(env={"GREENFLAME_ANALYSIS_DELAY_MS": "500", "GREENFLAME_ANALYSIS_INTERVAL_S": "0"})
    group = unique_name("svc")
    key = server.create_group(group)
    for profile in service_run(group):
        send(server, key, profile)
    path = f"/api/v1/groups/{group}/anomalies"

    def settled() -> Optional[Dict[str, Any]]:
        body = get(server, path).json()
        summary = body["analysis"]["summary"] or {}
        return body if summary.get("profiles") == 40 and not body["analysis"]["running"] else None

    (found,) = wait_for("anomalies over all 40 profiles", settled)["anomalies"]
    assert found["frame"] == "app.parse" and found["direction"] == "up" and found["end"] is None
    assert found["start"] == "2026-01-05T14:03:20Z"  # the 21st window
    assert found["reason"].startswith("app.parse went from 5.0% to ")
    assert found["feedback"] == {"useful": 0, "not_useful": 0} and found["current"] is True
    compare = server.session.get(server.url + found["compare_url"], timeout=30)
    assert compare.status_code == 200 and "base_from=2026-01-05T" in found["compare_url"]
    sign_in(page, server.url, server.read_token)
    page.goto(f"{server.url}/groups/{group}/anomalies")
    page.get_by_text("Compare with before").first.click()
    page.wait_for_url("**/compare?**")
    assert "base_from=2026-01-05T" in page.url and "search=" in page.url

    response = server.session.post(server.api(f"/api/v1/anomalies/{found['id']}/feedback"), json={"useful": False})
    assert response.status_code == 201 and response.json()["feedback"]["not_useful"] == 1
    wait_for("the next report without it", lambda: get(server, path).json()["anomalies"] == [])
    (kept,) = get(server, path, params={"all": "true"}).json()["anomalies"]
    assert kept["id"] == found["id"] and kept["current"] is False and kept["feedback"]["not_useful"] == 1
    bad = server.session.post(server.api(f"/api/v1/anomalies/{found['id']}/feedback"), json={"useful": "no"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"


# -- several server processes on one database ------------------------------------------------


def test_several_processes_analyse_each_group_once(
    server_factory: Callable[..., LiveServer], github: FakeGitHub, tmp_path: Path
) -> None:
    shared = {
        "GREENFLAME_DATABASE_URL": f"sqlite:///{tmp_path / 'shared' / 'greenflame.db'}",
        "GREENFLAME_BLOBS_URL": str(tmp_path / "shared" / "profiles"),
    }
    # A first process takes the reports but would wait ten minutes before analysing them.
    loader = server_factory(env={**shared, "GREENFLAME_ANALYSIS_DELAY_MS": "600000"})
    groups = [unique_name("multi") for _ in range(3)]
    keys = {group: loader.create_group(group) for group in groups}
    channel = {"to": "github:acme/shop", "api_url": github.url, "token": TOKEN}
    for group in groups:
        assert put_channels(loader, group, [channel]).status_code == 200
        for i in range(3):
            send(loader, keys[group], brown(group, T0 + i * 60 * 10**9))
    loader.stop()

    # Three processes start on the same database; each finds the same stale groups at start.
    servers = [server_factory(env={**shared, **FAST}) for _ in range(3)]
    store = PipelineStore(make_engine(shared["GREENFLAME_DATABASE_URL"]))

    def caught_up() -> bool:
        return not store.stale_groups() and all(
            (store.state(g) or {}).get("lease_owner") is None and store.runs(g) for g in groups
        )

    wait_for("every group analysed", caught_up)
    for group in groups:
        assert len(store.runs(group)) == 1, store.runs(group)
    assert len(github.issues) == 3

    # Then reports reach every process at once: runs never overlap nor repeat a generation.
    for group in groups:
        for index, server in enumerate(servers):
            send(server, keys[group], brown(group, T0 + (600 + index) * 10**9))
    wait_for("the new reports analysed", caught_up)
    for group in groups:
        runs = store.runs(group)
        generations = [(r["generation_count"], r["generation_received_ns"]) for r in runs]
        assert len(set(generations)) == len(generations) and generations[-1][0] == 6
        spans = sorted((r["started_unix_ns"], r["finished_unix_ns"]) for r in runs)
        assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:]))
        assert all(r["error"] is None for r in runs)
    titles = [issue["title"] for issue in github.issues.values()]
    assert len(titles) == 3
    assert all(sum(title.endswith(f" in {group}") for title in titles) == 1 for group in groups)
    listed = subprocess.run(
        server_command("tickets", "status", "--db", shared["GREENFLAME_DATABASE_URL"]),
        env=server_env(tmp_path / "elsewhere"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert all(group in listed.stdout for group in groups)
