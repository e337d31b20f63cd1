"""The whole path with real processes: agent -> greenflame serve -> analyzer -> API and page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest
from support.browser import sign_in
from support.server import server_command

RULE = "aws-sdk-client-per-invocation"
BROWN = "greenflame.sample_apps.seed_brown.lambda_handler"
GREEN = "greenflame.sample_apps.seed_green.lambda_handler"


def greenflame(*args: str, env: Dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the ``greenflame`` command as a real child process."""
    return subprocess.run(
        server_command(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def get_json(server: Any, path: str) -> Any:
    """``path`` on ``server`` as JSON, read with the server's read token."""
    response = server.session.get(server.api(path), timeout=60)
    response.raise_for_status()
    return response.json()


def rules_of(report: Dict[str, Any]) -> List[str]:
    return [finding["rule"] for finding in report["recommendations"]]


def invoke_under_agent(live_server: Any, group: str, handler: str, invocations: int) -> None:
    key = live_server.create_group(group)
    env = dict(os.environ, GREENFLAME_INGEST_KEY=key, GREENFLAME_GROUP=group)
    done = greenflame(
        "lambda", "invoke", handler, "--invocations", str(invocations), "--server", live_server.url, env=env
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def seed_groups(live_server: Any) -> Any:
    """The seed's brown and green functions, run under the agent and shipped over HTTP."""
    invoke_under_agent(live_server, "seed-brown", BROWN, 600)
    invoke_under_agent(live_server, "seed-green", GREEN, 600)
    return live_server


def test_brown_function_is_flagged_through_the_api(seed_groups: Any) -> None:
    report = get_json(seed_groups, "/api/v1/groups/seed-brown/recommendations")
    assert rules_of(report) == [RULE]
    finding = report["recommendations"][0]
    assert finding["share"] > finding["expected_share"] > 0
    assert finding["cost_usd_per_month"] > 0
    assert finding["co2e_kg_per_month"] > 0
    assert any("client" in json.dumps(frame) for frame in finding["frames"])


def test_green_function_is_not_flagged(seed_groups: Any) -> None:
    report = get_json(seed_groups, "/api/v1/groups/seed-green/recommendations")
    assert RULE not in rules_of(report)


def test_groups_are_listed_with_their_profiles(seed_groups: Any) -> None:
    listed = get_json(seed_groups, "/api/v1/groups")
    names = {group["name"] for group in listed["groups"]}
    assert {"seed-brown", "seed-green"} <= names


def test_recommendation_is_shown_on_the_group_page(seed_groups: Any, page: Any) -> None:
    report = get_json(seed_groups, "/api/v1/groups/seed-brown/recommendations")
    title = report["recommendations"][0]["title"]
    sign_in(page, seed_groups.url, seed_groups.read_token)
    page.goto(f"{seed_groups.url}/groups/seed-brown")
    page.get_by_text(title).first.wait_for(timeout=15000)
    assert page.locator("canvas").count() >= 1
    page.goto(f"{seed_groups.url}/groups/seed-green")
    page.wait_for_load_state("networkidle")
    assert page.get_by_text(title).count() == 0


def test_run_profiles_an_unmodified_program_over_http(live_server: Any, tmp_path: Path) -> None:
    script = tmp_path / "busy_service.py"
    script.write_text(
        textwrap.dedent(
            """
            import time

            def checkout_total():
                total = 0
                for i in range(200_000):
                    total += i * i % 7
                return total

            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                checkout_total()
            """
        )
    )
    key = live_server.create_group("busy-service")
    env = dict(os.environ, GREENFLAME_INGEST_KEY=key)
    done = greenflame(
        "run", "--group", "busy-service", "--server", live_server.url, "--", sys.executable, str(script), env=env
    )
    assert done.returncode == 0, done.stderr
    graph = get_json(live_server, "/api/v1/groups/busy-service/flamegraph?type=cpu")
    assert "checkout_total" in json.dumps(graph)
    assert graph["flamegraph"]["total"] >= 10


def test_demo_flags_the_brown_function_only(tmp_path: Path) -> None:
    env = dict(os.environ, GREENFLAME_DATA_DIR=str(tmp_path))
    done = greenflame("demo", env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    brown, green = done.stdout.split("== demo-green")
    assert "== demo-brown" in brown and RULE in brown
    assert RULE not in green
    assert "http://127.0.0.1:" in done.stdout and "/sign-in/link/gfl_" in done.stdout  # the one-click link
