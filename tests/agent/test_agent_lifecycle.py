"""Lifecycle: states, pause/resume, kill switches, fork (gunicorn-style and multiprocessing),
threads that come and go, deep recursion, idle frames and the CPU budget."""

from __future__ import annotations

import gzip
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from support.agent import run_python

import greenflame.agent as agent
from greenflame.agent import budget as budget_module
from greenflame.agent.budget import CpuBudget
from greenflame.agent.lifecycle import Lifecycle


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def read(path: Path) -> Dict[str, Any]:
    data = path.read_bytes()
    document: Dict[str, Any] = json.loads(gzip.decompress(data) if path.name.endswith(".gz") else data)
    return document


def functions(report: Dict[str, Any]) -> List[str]:
    """Function names without the ``<locals>`` qualification of functions defined in tests."""
    return [short(frame["function"]) for frame in report["frames"]]


def start_and_join(threads: List[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def short(name: str) -> str:
    return name.rsplit("<locals>.", 1)[-1]


def test_the_state_machine_allows_only_its_transitions() -> None:
    life = Lifecycle()
    assert life.fire("pause") is None and life.state == "created"
    assert life.fire("start") == "running" and life.fire("start") is None
    assert life.fire("pause") == "paused" and life.fire("pause") is None
    assert life.fire("resume") == "running"
    assert life.fire("stop") == "stopped" and life.fire("start") is None and life.fire("resume") is None


def test_pause_stops_sampling_and_resume_restarts_it(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    profiler = agent.start(out=str(out), report_interval_s=3600, rate_hz=200)
    assert profiler is not None
    assert agent.pause() and profiler.state == "paused" and not profiler.is_running()
    spin(0.3)  # not sampled
    assert agent.resume() and profiler.state == "running" and profiler.is_running()
    with agent.labels(part="after"):
        spin(0.3)
    agent.stop()
    samples = read(out)["samples"]
    assert samples and all(s["labels"].get("part") == "after" for s in samples if "spin" in str(s))


def test_the_kill_switch_file_pauses_and_its_removal_resumes(tmp_path: Path) -> None:
    kill = tmp_path / "greenflame.off"
    kill.write_text("")
    out = tmp_path / "p.json"
    profiler = agent.start(out=str(out), kill_file=str(kill), report_interval_s=3600, rate_hz=200)
    assert profiler is not None and profiler.state == "paused" and not profiler.is_running()
    assert not agent.resume()  # the file wins over the API
    kill.unlink()
    give_up = time.monotonic() + 30
    while profiler.state != "running" and time.monotonic() < give_up:
        time.sleep(0.05)
    assert profiler.state == "running"
    kill.write_text("")
    while profiler.state != "paused" and time.monotonic() < give_up:
        time.sleep(0.05)
    assert profiler.state == "paused"
    agent.stop()
    assert read(out)["metadata"]["kill_switch"] == "file"


def test_the_kill_switch_variable_starts_nothing_in_a_real_process(tmp_path: Path) -> None:
    result = run_python(
        """
        import threading, greenflame.agent as agent
        print(agent.start(), threading.active_count())
        """,
        {"GREENFLAME_ENABLED": "0", "GREENFLAME_OUT": str(tmp_path / "p.json")},
    )
    assert result.stdout.split() == ["None", "1"], result.stderr
    assert not list(tmp_path.iterdir())


def test_a_gunicorn_style_worker_profiles_itself(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = run_python(
        """
        import os, sys, threading, time, greenflame.agent as agent
        def spin(s):
            end = time.perf_counter() + s
            while time.perf_counter() < end:
                pass
        def handle_request(): spin(0.1)
        def worker_thread():
            for _ in range(3):
                handle_request()
        agent.start()
        pid = os.fork()
        if pid == 0:  # the worker: threads serving requests, then a normal sys.exit like gunicorn's
            threads = [threading.Thread(target=worker_thread) for _ in range(2)]
            for t in threads: t.start()
            for t in threads: t.join()
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        print(pid, os.waitstatus_to_exitcode(status))
        """,
        {"GREENFLAME_OUT": str(out), "GREENFLAME_REPORT_INTERVAL_S": "3600", "GREENFLAME_RATE_HZ": "200"},
    )
    assert result.returncode == 0, result.stderr
    child_pid, status = map(int, result.stdout.split())
    assert status == 0
    child = read(tmp_path / f"p.pid{child_pid}.0.json")
    assert child["metadata"]["pid"] == child_pid and "handle_request" in functions(child)
    assert "handle_request" not in functions(read(out))


def test_multiprocessing_fork_workers_flush_before_os_exit(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = run_python(
        """
        import multiprocessing, time, greenflame.agent as agent
        def mp_task(seconds):
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
        if __name__ == "__main__":
            agent.start()
            ctx = multiprocessing.get_context("fork")
            workers = [ctx.Process(target=mp_task, args=(0.3,)) for _ in range(2)]
            for w in workers: w.start()
            for w in workers: w.join(60)
            print(" ".join(str(w.pid) for w in workers), " ".join(str(w.exitcode) for w in workers))
        """,
        {"GREENFLAME_OUT": str(out), "GREENFLAME_REPORT_INTERVAL_S": "3600", "GREENFLAME_RATE_HZ": "200"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    pids, codes = lines[:2], lines[2:]
    assert codes == ["0", "0"]
    for pid in pids:
        child = read(tmp_path / f"p.pid{pid}.0.json")
        assert "mp_task" in functions(child), child["frames"]


def test_agent_threads_import_only_where_a_fork_waits(tmp_path: Path) -> None:
    """A thread that imports holds the module's import lock: a fork then leaves it held in the child
    for ever (the multiprocessing test above hung once in about 150 runs that way). Every module the
    sampler and the scheduler use, exporting to a file and to an unreachable server, is imported
    inside ``thread_imports.load``, which a fork waits for."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    result = run_python(
        """
        import sys, threading, time
        first_imports = []
        class Watch:
            def find_spec(self, name, path=None, target=None):
                thread = threading.current_thread().name
                if thread.startswith("greenflame") and thread_imports.loading_thread() != threading.get_ident():
                    first_imports.append((thread, name))
                return None
        sys.meta_path.insert(0, Watch())
        import greenflame.agent as agent
        from greenflame.agent import thread_imports
        agent.start()
        def nap():
            time.sleep(0.02)
        def crunch():
            end = time.perf_counter() + 0.02
            while time.perf_counter() < end:
                pass
        worker = threading.Thread(target=lambda: [nap() or crunch() for _ in range(40)])
        worker.start()
        for _ in range(40):
            nap()
            crunch()
        worker.join()
        agent.stop()
        print(sorted(set(first_imports)))
        """,
        {
            "GREENFLAME_OUT": str(tmp_path / "p.json"),
            "GREENFLAME_SERVER": f"http://127.0.0.1:{closed_port}",
            "GREENFLAME_SPOOL_DIR": str(tmp_path / "spool"),
            "GREENFLAME_REPORT_INTERVAL_S": "0.5",
            "GREENFLAME_EXPORT_TIMEOUT_S": "0.5",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
    assert (tmp_path / "p.json").exists() or list(tmp_path.glob("p.*.json")), "no report written"


def test_threads_starting_and_ending_during_sampling(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    agent.start(out=str(out), report_interval_s=3600, rate_hz=500, max_threads=8, cpu_budget=1.0)

    def short_lived() -> None:
        spin(0.01)

    for _ in range(100):
        start_and_join([threading.Thread(target=short_lived) for _ in range(4)])
    agent.stop()
    report = read(out)
    assert report["samples"] and "short_lived" in functions(report)


def test_deep_recursion_is_capped_at_max_depth(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        agent.start(out=str(out), report_interval_s=3600, rate_hz=200, max_depth=64, cpu_budget=1.0)

        def recurse(n: int) -> None:
            if n:
                recurse(n - 1)
            else:
                spin(0.4)

        recurse(5_000)
        agent.stop()
    finally:
        sys.setrecursionlimit(limit)
    report = read(out)
    names = [[short(report["frames"][i]["function"]) for i in s["stack"]] for s in report["samples"]]
    deep = [n for n in names if "recurse" in n]
    assert deep and all(len(n) == 64 and n[-1] == "[truncated]" for n in deep)


def test_idle_waits_are_classified_and_busy_code_is_not(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    stop = threading.Event()
    lock = threading.Lock()
    lock.acquire()

    def sleeper() -> None:
        while not stop.is_set():
            time.sleep(0.01)

    def locked() -> None:
        lock.acquire(timeout=20)

    def waiter() -> None:
        stop.wait(20)

    threads = [threading.Thread(target=f, daemon=True) for f in (sleeper, locked, waiter)]
    for thread in threads:
        thread.start()
    agent.start(out=str(out), report_interval_s=3600, rate_hz=200, cpu_budget=1.0)
    spin(1.0)
    agent.stop()
    stop.set()
    lock.release()
    for thread in threads:
        thread.join(5)
    report = read(out)
    totals: Dict[str, List[int]] = {}
    for sample in report["samples"]:
        leaf = short(report["frames"][sample["stack"][-1]]["function"])
        column = totals.setdefault(leaf, [0, 0, 0])
        for i in range(3):
            column[i] += sample["values"][i]
    assert [t["name"] for t in report["sample_types"]] == ["wall", "cpu", "idle"]
    for leaf in ("sleeper", "locked", "Condition.wait"):  # Event.wait ends in Condition.wait
        wall, _, idle = totals[leaf]
        assert idle >= 0.8 * wall and wall >= 10, (leaf, totals[leaf])
    assert totals["spin"][2] == 0


def test_behind_busy_threads_the_report_scales_to_the_rate_achieved_and_says_so(tmp_path: Path) -> None:
    # Two threads that never wait: the sampler thread waits for the GIL several switch intervals a
    # sample and gets fewer than asked. The truth: each thread's own wall time. The report's samples
    # of them, times its period, must add up to it; with the period of the rate asked they came to a
    # half or less (benchmarks/agent/README.md).
    out = tmp_path / "p.json"
    elapsed: Dict[str, float] = {}

    def busy(name: str) -> None:
        started = time.perf_counter()
        while time.perf_counter() - started < 3.0:
            pass
        elapsed[name] = time.perf_counter() - started

    threads = [threading.Thread(target=busy, args=(name,), name=name) for name in ("busy-a", "busy-b")]
    agent.start(out=str(out), report_interval_s=3600, cpu_budget=1.0)
    start_and_join(threads)
    agent.stop()
    report = read(out)
    wall = [t["name"] for t in report["sample_types"]].index("wall")
    samples = sum(s["values"][wall] for s in report["samples"] if s.get("labels", {}).get("thread") in elapsed)
    estimated = samples * report["sample_period_ns"] / 1e9
    assert 0.75 <= estimated / sum(elapsed.values()) <= 1.25, (estimated, elapsed, report["metadata"])
    metadata = report["metadata"]
    if metadata["sample_rate_hz"] < 90:  # late (the usual case here): the report says so
        assert metadata["schedule_skipped"] > 0 and metadata["asked_rate_hz"] > metadata["sample_rate_hz"]


def test_the_budget_lowers_the_rate_says_so_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    cpu = {7: 0}
    budget = CpuBudget(0.01, 100.0, lambda: [7], clock=lambda: clock[0], cpu_of=cpu.get)
    budget.check()
    clock[0], cpu[7] = 1.0, 30_000_000  # the start-up, 3% of a core: a one-off, not judged
    assert budget.check() == 100.0
    clock[0], cpu[7] = 2.0, 70_000_000  # 4% of a core: four times the budget
    assert budget.check() < 50
    clock[0] = 3.0
    assert "above its budget of 1.00%: sampling rate lowered from 100.0 Hz" in caplog.text
    window = budget.take_window()
    assert window["agent_cpu_ns"] == 70_000_000 and window["rate_limited"]["times"] == 1
    assert window["sample_rate_hz"] < 100
    for second in range(4, 30):  # the agent goes quiet: the rate climbs back to the configured one
        clock[0] = float(second)
        budget.check()
    assert budget.rate_hz == 100.0
    budget.take_window()
    clock[0] = 31.0
    budget.check()
    assert "rate_limited" not in budget.take_window()


def test_a_tiny_budget_really_lowers_the_sampling_rate(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    profiler = agent.start(out=str(out), report_interval_s=3600, rate_hz=1000, cpu_budget=0.0001)
    assert profiler is not None
    spin(2.5)
    agent.stop()
    meta = read(out)["metadata"]
    assert meta["rate_limited"]["lowest_rate_hz"] < 1000 and meta["sample_rate_hz"] < 1000
    assert meta["agent_cpu_ns"] > 0


def test_the_budget_climbs_back_only_as_far_as_the_cost_projected_to_the_higher_rate_allows() -> None:
    clock = [0.0]
    cpu = {7: 0}
    budget = CpuBudget(0.01, 100.0, lambda: [7], clock=lambda: clock[0], cpu_of=cpu.get)

    def second(share: float) -> float:
        clock[0] += 1.0
        cpu[7] += int(share * 1e9)
        return budget.check()

    second(0.05)  # start-up, not judged
    assert second(0.04) < 25  # lowered to about 22 Hz
    # The agent's cost is 0.0075% of a core per Hz: 100 Hz would cost 0.75%, under the budget.
    for _ in range(10):
        second(budget.rate_hz * 0.000075)
    assert budget.rate_hz == 100.0
    # At 0.012% per Hz 95% of the budget allows 79 Hz: it climbs while the projection fits, stays there.
    second(0.05)
    for _ in range(10):
        second(budget.rate_hz * 0.00012)
    assert 70 <= budget.rate_hz <= 79.2
    # At 0.009% per Hz the full rate costs 0.9%: one window at twice the budget lowers the rate, which
    # comes back (before, the climb stopped where the projection reached 80% of the budget: 88 Hz).
    for _ in range(10):
        second(budget.rate_hz * 0.00009)
    assert budget.rate_hz == 100.0
    assert second(0.019) < 100
    for _ in range(10):
        second(budget.rate_hz * 0.00009)
    assert budget.rate_hz == 100.0


def test_the_cpu_of_the_budgets_own_warning_does_not_count_against_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first warning imports logging (tens of ms in the sampler thread): that one-off must not keep
    # the rate low; it stays in the report's agent_cpu_ns.
    clock = [0.0]
    cpu = {7: 0}

    class CostlyLogger:
        def log(self, *args: object) -> None:
            started = time.thread_time_ns()
            while time.thread_time_ns() - started < 30_000_000:
                pass
            cpu[7] += time.thread_time_ns() - started  # this thread plays the sampler's

        def debug(self, *args: object) -> None:
            pass

    monkeypatch.setattr(budget_module, "logger", CostlyLogger())
    budget = CpuBudget(0.01, 100.0, lambda: [7], clock=lambda: clock[0], cpu_of=cpu.get)
    budget.check()
    clock[0], cpu[7] = 1.0, 30_000_000  # the start-up, not judged
    budget.check()
    clock[0], cpu[7] = 2.0, cpu[7] + 20_000_000  # 2% of a core: lowered, and the warning costs 30 ms
    lowered = budget.check()
    assert lowered < 50
    clock[0], cpu[7] = 3.0, cpu[7] + int(lowered * 0.00005 * 1e9)  # 0.5% of the budget's per-Hz cost
    assert budget.check() > lowered  # the 30 ms of the warning did not count: the rate climbs back
    assert budget.take_window()["agent_cpu_ns"] >= 80_000_000  # but the report has them
