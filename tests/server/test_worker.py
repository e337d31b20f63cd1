"""``greenflame worker``: analysis in separate processes, servers started with ``GREENFLAME_ANALYSIS=workers``.

Real processes throughout: ``greenflame serve`` and ``greenflame worker`` on one SQLite file or
one PostgreSQL database. The run log (``analysis_runs``) records the ``host:pid:thread`` that
ran each analysis, which tells a worker's runs from a server's.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest
from support.builders import lambda_profile
from support.server import LiveServer, ingest_profile, server_command, server_env, unique_name, wait_for

from greenflame.server.db import make_engine
from greenflame.server.pipeline_store import PipelineStore

T0 = 1_767_571_200 * 10**9  # 2026-01-05 00:00 UTC
WAIT_S = 90.0
FAST = {
    "GREENFLAME_ANALYSIS_DELAY_MS": "0",
    "GREENFLAME_ANALYSIS_INTERVAL_S": "0",
    "GREENFLAME_ANALYSIS_WINDOW_S": "600",
    "GREENFLAME_WORKER_POLL_S": "1",
}


class Workers:
    """``greenflame worker`` processes started by a test, stopped with SIGTERM at its end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: List[subprocess.Popen[bytes]] = []

    def start(self, env: Dict[str, str]) -> subprocess.Popen[bytes]:
        """One more worker with ``env`` over a clean environment; returns once it says it runs."""
        log_path = self.folder / f"worker{len(self.started)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                server_command("worker"),
                env=server_env(self.folder / "worker-data", env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started.append(process)
        wait_for("the worker to start", lambda: b"greenflame worker analysing" in log_path.read_bytes())
        return process

    def log(self, n: int) -> str:
        return (self.folder / f"worker{n}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    yield started
    started.stop()


def send_brown(server: LiveServer, key: str, group: str, minute: int) -> None:
    profile = lambda_profile(client_in_handler=True)
    profile.group = group
    profile.start_time_unix_ns = T0 + minute * 60 * 10**9
    profile.duration_ns = 60 * 10**9
    response = ingest_profile(server, key, profile)
    assert response.status_code == 202, response.text


def run_pids(store: PipelineStore, group: str) -> List[int]:
    """The process id of each logged run of ``group`` (owners are ``host:pid:thread``)."""
    return [int(run["owner"].split(":")[1]) for run in store.runs(group)]


def caught_up(store: PipelineStore, groups: List[str]) -> Callable[[], bool]:
    def check() -> bool:
        return not store.stale_groups() and all(
            (store.state(g) or {}).get("lease_owner") is None and store.runs(g) for g in groups
        )

    return check


def check_workers_alone_analyse(
    server_factory: Callable[..., LiveServer], workers: Workers, shared: Dict[str, str], count: int
) -> None:
    server = server_factory(env={**shared, **FAST, "GREENFLAME_ANALYSIS": "workers"})
    groups = [unique_name("worker") for _ in range(4)]
    keys = {group: server.create_group(group) for group in groups}
    for group in groups:
        send_brown(server, keys[group], group, 0)
    started = [workers.start({**shared, **FAST}) for _ in range(count)]
    store = PipelineStore(make_engine(shared["GREENFLAME_DATABASE_URL"]))
    wait_for("every group analysed by a worker", caught_up(store, groups), WAIT_S)
    pids = {process.pid for process in started}
    for group in groups:
        assert len(run_pids(store, group)) == 1 and set(run_pids(store, group)) <= pids, store.runs(group)
    # New data is found by polling the database: the server never tells the workers.
    for group in groups:
        send_brown(server, keys[group], group, 5)
    wait_for("the new reports analysed", caught_up(store, groups), WAIT_S)
    for group in groups:
        runs = store.runs(group)
        assert [run["generation_count"] for run in runs] == [1, 2] and set(run_pids(store, group)) <= pids, runs
        assert all(run["error"] is None for run in runs)
    findings = server.session.get(server.api(f"/api/v1/groups/{groups[0]}/findings"), timeout=30).json()
    assert any(f["rule"] == "aws-sdk-client-per-invocation" for f in findings["findings"]), findings
    workers.stop()
    assert all(process.returncode == 0 for process in started)
    assert all("greenflame worker stopped" in workers.log(n) for n in range(count))
    assert server.process.pid not in {pid for group in groups for pid in run_pids(store, group)}


def test_a_worker_analyses_for_a_server_on_sqlite(
    server_factory: Callable[..., LiveServer], workers: Workers, tmp_path: Path
) -> None:
    shared = {
        "GREENFLAME_DATABASE_URL": f"sqlite:///{tmp_path / 'shared' / 'greenflame.db'}",
        "GREENFLAME_BLOBS_URL": str(tmp_path / "shared" / "profiles"),
    }
    check_workers_alone_analyse(server_factory, workers, shared, count=1)


def test_two_workers_share_the_groups_on_postgres(
    server_factory: Callable[..., LiveServer],
    workers: Workers,
    postgres_database: Callable[[], str],
    tmp_path: Path,
) -> None:
    shared = {"GREENFLAME_DATABASE_URL": postgres_database(), "GREENFLAME_BLOBS_URL": str(tmp_path / "profiles")}
    check_workers_alone_analyse(server_factory, workers, shared, count=2)


def test_a_bad_database_url_is_one_line_and_status_2(tmp_path: Path) -> None:
    done = subprocess.run(
        server_command("worker", "--db", "not a url"),
        env=server_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "invalid database URL" in done.stderr
