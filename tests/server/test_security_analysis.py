"""One group's analysis never blocks the others (issue 17, item 5): workers and a time budget."""

from __future__ import annotations

import threading
import time
from typing import List

from greenflame.server.pipeline_worker import Scheduler


class SlowRuns:
    """Runs that block while their group is named in ``held`` (until ``release``)."""

    def __init__(self, *held: str) -> None:
        self.held = set(held)
        self.gate = threading.Event()
        self.finished: List[str] = []
        self.done = threading.Semaphore(0)

    def __call__(self, group: str) -> None:
        if group in self.held:
            self.gate.wait(20)
        self.finished.append(group)
        self.done.release()


def test_a_run_over_budget_lets_the_other_groups_go_on() -> None:
    runs = SlowRuns("slow")
    scheduler = Scheduler(runs, delay_s=0.0, workers=1, budget_s=0.2)
    try:
        scheduler.notify("slow")
        time.sleep(0.05)
        scheduler.notify("fast")
        assert runs.done.acquire(timeout=5)  # "fast" finished while "slow" still runs
        assert runs.finished == ["fast"]
        runs.gate.set()
        assert runs.done.acquire(timeout=5) and runs.finished == ["fast", "slow"]
    finally:
        runs.gate.set()
        scheduler.stop()


def test_runs_over_budget_are_bounded() -> None:
    runs = SlowRuns("slow-1", "slow-2")
    scheduler = Scheduler(runs, delay_s=0.0, workers=1, budget_s=0.1)
    try:
        for group in ("slow-1", "slow-2", "fast"):
            scheduler.notify(group)
            time.sleep(0.05)
        time.sleep(0.5)
        # "slow-1" went over budget and gave its worker to "slow-2"; "slow-2" is over budget too,
        # but with one spare thread already used, "fast" waits rather than a third thread start.
        assert runs.finished == [] and scheduler.pending == 1
        runs.gate.set()
        for _ in range(3):
            assert runs.done.acquire(timeout=5)
        assert sorted(runs.finished) == ["fast", "slow-1", "slow-2"]
    finally:
        runs.gate.set()
        scheduler.stop()


def test_two_workers_run_two_groups_at_once() -> None:
    started = threading.Barrier(2, timeout=5)
    seen: List[str] = []

    def run(group: str) -> None:
        started.wait()  # both groups must be running at the same time to pass
        seen.append(group)

    scheduler = Scheduler(run, delay_s=0.0, workers=2)
    try:
        scheduler.notify("a")
        scheduler.notify("b")
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(seen) == ["a", "b"]
    finally:
        scheduler.stop()
