"""The public agent API end to end: start, labels, metadata, flush, stop, fork, exit."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from support.agent import IngestServer, run_python

import greenflame.agent as agent
from greenflame.analyzer.formats import greenflame_json


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def read(path: Path) -> Dict[str, Any]:
    data = path.read_bytes()
    document: Dict[str, Any] = json.loads(gzip.decompress(data) if path.name.endswith(".gz") else data)
    greenflame_json.profile_from_dict(document).validate()
    return document


def functions(report: Dict[str, Any]) -> List[str]:
    return [frame["function"] for frame in report["frames"]]


def test_start_flush_stop_writes_a_profile_with_metadata(tmp_path: Path) -> None:
    out = tmp_path / "p.json.gz"
    profiler = agent.start(out=str(out), group="svc", rate_hz=200, report_interval_s=3600)
    assert profiler is not None and agent.current() is profiler
    assert agent.start(out=str(tmp_path / "other.json")) is profiler  # a second start is harmless
    agent.set_metadata("deployment", {"version": "1.2"})
    agent.record_invocation(12.5, cold_start=True)
    agent.record_invocation(7.5, cold_start=False)
    with agent.labels(endpoint="/pay"):
        spin(0.3)
    agent.stop()
    assert agent.current() is None and not profiler.is_running()
    report = read(out)
    assert report["group"] == "svc"
    assert "spin" in functions(report)
    assert any(s.get("labels") == {"endpoint": "/pay", "thread": "MainThread"} for s in report["samples"])
    meta = report["metadata"]
    assert meta["agent"] == "greenflame-agent/0.1.0" and meta["engine"] == "thread"
    assert meta["runtime"].startswith("cpython-3.") and meta["pid"] == os.getpid()
    assert meta["hostname"] == os.uname().nodename and 0 < meta["sample_rate_hz"] <= 200
    assert meta["cpu_source"] in ("thread-cputime", "proc-stat", "none")
    assert meta["dropped"] == {} and meta["deployment"] == {"version": "1.2"}
    assert meta["invocations"] == {
        "count": 2,
        "cold_starts": 1,
        "duration_ms_sum": 20.0,
        "durations_ms": [12.5, 7.5],
        "first_sequence": 1,
    }
    assert not (tmp_path / "other.json").exists()


def test_kill_switch_starts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENFLAME_ENABLED", "false")
    assert agent.start(out=str(tmp_path / "p.json")) is None
    assert agent.current() is None
    assert agent.flush() is False
    agent.stop()
    assert not list(tmp_path.iterdir())


def test_bad_configuration_disables_instead_of_raising(caplog: pytest.LogCaptureFixture) -> None:
    assert agent.start(out="p.json", rate_hz="fast") is None
    assert "rate_hz: expected a number, got 'fast'" in caplog.text


def test_without_a_destination_the_agent_stays_off(caplog: pytest.LogCaptureFixture) -> None:
    assert agent.start() is None
    assert "GREENFLAME_OUT" in caplog.text


def test_labels_and_record_invocation_are_harmless_when_not_started() -> None:
    with agent.labels(a=1):
        agent.record_invocation(1.0, cold_start=False)
    assert agent.current() is None


def test_user_exceptions_inside_labels_propagate() -> None:
    with pytest.raises(ZeroDivisionError), agent.labels(a="b"):
        _ = 1 / 0


def test_the_scheduler_reports_periodically_off_the_user_thread(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    agent.start(out=str(out), report_interval_s=0.2, rate_hz=50)
    give_up = time.monotonic() + 30
    while not (tmp_path / "p.1.json").exists() and time.monotonic() < give_up:
        time.sleep(0.05)
    agent.stop(flush=False)
    assert read(out)["samples"] and read(tmp_path / "p.1.json")["samples"]


def test_a_scheduler_at_the_off_interval_never_reports_but_keeps_house() -> None:
    from greenflame.agent.scheduler import OFF_S, Scheduler

    now = [0.0]
    flushes: List[float] = []
    chores: List[float] = []
    off = Scheduler(OFF_S, lambda: flushes.append(now[0]), lambda: chores.append(now[0]), clock=lambda: now[0])
    on = Scheduler(10.0, lambda: flushes.append(-now[0]), clock=lambda: now[0])
    assert not off.reports and on.reports
    for second in range(0, 3 * 86400, 3600):
        now[0] = float(second)
        off._tick()
        on._tick()
    assert flushes and all(at < 0 for at in flushes)  # only the scheduler that reports flushed
    assert len(chores) == 72


def test_a_scheduler_with_nothing_to_do_starts_no_thread() -> None:
    from greenflame.agent.scheduler import OFF_S, Scheduler

    idle, keeping = Scheduler(OFF_S, lambda: None), Scheduler(OFF_S, lambda: None, lambda: None)
    reporting = Scheduler(3600.0, lambda: None)
    for scheduler in (idle, keeping, reporting):
        scheduler.start()
    try:
        assert not idle.is_alive() and idle.native_id is None and idle.idents() == set()
        assert keeping.is_alive() and reporting.is_alive()
    finally:
        for scheduler in (idle, keeping, reporting):
            scheduler.stop()
    assert not keeping.is_alive() and not reporting.is_alive()


def test_the_agents_own_threads_count_in_its_cpu_budget(tmp_path: Path) -> None:
    # The Lambda shutdown watcher is such a thread: each freeze and thaw of the environment wakes it.
    import threading

    from greenflame.agent import own_threads

    done = threading.Event()
    watcher = threading.Thread(target=done.wait, name="watcher")
    profiler = agent.start(out=str(tmp_path / "p.json"), report_interval_s=3600)
    assert profiler is not None
    own_threads.start(watcher)
    try:
        assert watcher.native_id in profiler._agent_native_ids()
    finally:
        done.set()
        watcher.join()
        agent.stop(flush=False)
    assert watcher.native_id not in own_threads.native_ids()


def test_a_failed_export_is_counted_in_the_next_report(tmp_path: Path, ingest_server: IngestServer) -> None:
    ingest_server.script((400, {}, 0.0))
    profiler = agent.start(server=ingest_server.url, ingest_key="k", report_interval_s=3600, rate_hz=50)
    assert profiler is not None
    spin(0.1)
    assert agent.flush() is False
    spin(0.1)
    assert agent.flush() is True
    assert len(ingest_server.received) == 2
    assert ingest_server.received[1].report()["metadata"]["dropped"] == {"export_rejected": 1}


def test_a_guarded_failure_inside_the_agent_does_not_reach_the_caller(tmp_path: Path) -> None:
    from greenflame.agent import guard

    profiler = agent.start(out=str(tmp_path / "p.json"), report_interval_s=3600)
    assert profiler is not None

    def broken(*args: Any) -> None:
        raise RuntimeError("agent bug")

    profiler.build_report = broken
    assert agent.flush() is False
    assert [(r.where, str(r.error)) for r in guard.swallowed()] == [("flush", "agent bug")]
    guard.clear()  # provoked on purpose: keep the autouse guard check for the rest of the test


def test_exit_flushes_the_last_report(tmp_path: Path) -> None:
    out = tmp_path / "p.json.gz"
    result = run_python(
        """
        import time, greenflame.agent as agent
        agent.start()
        def work():
            end = time.perf_counter() + 0.3
            while time.perf_counter() < end:
                pass
        work()
        """,
        {"GREENFLAME_OUT": str(out), "GREENFLAME_GROUP": "exit-test", "GREENFLAME_REPORT_INTERVAL_S": "3600"},
    )
    assert result.returncode == 0, result.stderr
    report = read(out)
    assert report["group"] == "exit-test" and "work" in functions(report)


def test_a_forked_child_profiles_itself_with_fresh_threads(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = run_python(
        """
        import os, sys, threading, time, greenflame.agent as agent
        def spin(seconds):
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
        def parent_work(): spin(0.2)
        def child_work(): spin(0.3)
        profiler = agent.start()
        parent_work()
        pid = os.fork()
        if pid == 0:
            ok = profiler.is_running() and agent.current() is profiler
            child_work()
            agent.stop()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print(pid, os.waitstatus_to_exitcode(status))
        """,
        {"GREENFLAME_OUT": str(out), "GREENFLAME_REPORT_INTERVAL_S": "3600", "GREENFLAME_RATE_HZ": "200"},
    )
    assert result.returncode == 0, result.stderr
    child_pid, child_status = map(int, result.stdout.split())
    assert child_status == 0, result.stderr
    parent, child = read(out), read(tmp_path / f"p.pid{child_pid}.0.json")
    assert child["metadata"]["pid"] == child_pid and parent["metadata"]["pid"] != child_pid
    assert "child_work" in functions(child) and "parent_work" not in functions(child)
    assert "parent_work" in functions(parent)


#: Records the modules imported on the main thread (the agent's threads import theirs meanwhile).
MAIN_THREAD_IMPORTS = """
import threading
main_thread_imports = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if threading.current_thread() is threading.main_thread():
            main_thread_imports.append(name)
sys.meta_path.insert(0, Watch())
"""

#: Modules that must not load on the program's thread when the agent is imported or started (each
#: costs milliseconds on a cold start); the agent's threads load what they use.
HEAVY = (
    "typing",
    "dataclasses",
    "inspect",
    "logging",
    "urllib",
    "http",
    "json",
    "gzip",
    "re",
    "tempfile",
    "uuid",
    "platform",
    "dis",
    "email",
    "ssl",
    "socket",
)


def run_bare_python(code: str, env: Dict[str, str], tmp_path: Path) -> List[str]:
    """Run ``code`` under ``python -S`` with only the agent importable; its output lines.

    Without ``site`` nothing is preloaded (the main environment's .pth files import typing, which
    would hide it), so the modules the agent loads are exactly those that appear. The agent is
    found through a tree of links named as installed (``greenflame/agent``).
    """
    root = tmp_path / "bare-path"
    (root / "greenflame").mkdir(parents=True)
    (root / "greenflame" / "agent").symlink_to(Path(agent.__file__).resolve().parent)
    prelude = f"import sys\nsys.path.insert(0, {str(root)!r})\n"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENFLAME_", "PYTHON"))}
    full_env.update(env, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-S", "-c", prelude + textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def heavy(modules: str) -> List[str]:
    return [m for m in modules.split() if m.split(".")[0] in HEAVY]


def test_importing_the_agent_loads_nothing_heavy(tmp_path: Path) -> None:
    package, started = run_bare_python(
        MAIN_THREAD_IMPORTS
        + textwrap.dedent(
            """
        import greenflame.agent as agent
        print(*sorted(m for m in main_thread_imports if not m.startswith("greenflame")))
        agent.start(report_interval_s=3600)
        assert agent.current() is not None
        print(*sorted(m for m in main_thread_imports if not m.startswith("greenflame")))
        agent.stop(flush=False)
        """
        ),
        {"GREENFLAME_OUT": str(tmp_path / "p.json")},
        tmp_path,
    )
    assert package.split() in ([], ["__future__"])  # the package itself imports nothing
    assert heavy(started) == []  # the agent's threads load what they use (test_agent_lifecycle)


def test_the_lambda_start_path_loads_nothing_heavy(tmp_path: Path) -> None:
    imported, started = run_bare_python(
        MAIN_THREAD_IMPORTS
        + textwrap.dedent(
            """
        from greenflame.agent.aws_lambda import start_lambda_agent, profile_handler
        print(*sorted(main_thread_imports))
        assert start_lambda_agent()
        print(*sorted(main_thread_imports))
        import greenflame.agent
        greenflame.agent.stop(flush=False)
        """
        ),
        {"GREENFLAME_SERVER": "http://127.0.0.1:9", "AWS_LAMBDA_FUNCTION_NAME": "fn", "TMPDIR": str(tmp_path)},
        tmp_path,
    )
    assert heavy(imported) == []
    assert heavy(started) == []
    assert "greenflame.agent.sampler" in started.split() and "greenflame.agent.sampler" not in imported.split()


def test_flush_due_follows_the_report_interval(tmp_path: Path) -> None:
    from greenflame.agent.config import Config
    from greenflame.agent.exporters import FileExporter
    from greenflame.agent.profiler import Profiler

    config = Config.from_env({}, report_interval_s=0.2)
    profiler = Profiler(config, [FileExporter(str(tmp_path / "p.json"))])  # not started: no scheduler
    assert not profiler.flush_due()
    time.sleep(0.25)
    assert profiler.flush_due()
    assert profiler.flush(even_if_empty=True)
    assert not profiler.flush_due()
    assert read(tmp_path / "p.json")["samples"] == []
