"""agent/worker.PeriodicWorker: when it sleeps between ticks."""

from __future__ import annotations

import threading
from typing import Callable, List

import pytest

from greenflame.agent import worker
from greenflame.agent.worker import PeriodicWorker


def _events_with(delay: float, monkeypatch: pytest.MonkeyPatch, ticks: int = 40) -> str:
    """The worker's sleeps ("S") and ticks ("T") in order, for ``ticks`` ticks at a constant ``delay``."""
    events: List[str] = []
    done = threading.Event()
    real_sleep: Callable[[float, threading.Event], bool] = worker._sleep

    def sleep(seconds: float, stopping: threading.Event) -> bool:
        events.append("S")
        return real_sleep(min(seconds, 0.001), stopping)

    def tick() -> None:
        events.append("T")
        if events.count("T") >= ticks:
            done.set()

    monkeypatch.setattr(worker, "_sleep", sleep)
    periodic = PeriodicWorker("test-worker", tick, lambda: delay)
    periodic.start()
    assert done.wait(10)
    periodic.stop(5)
    assert not periodic.is_alive()
    return "".join(events).rstrip("S")  # the stop may end a last sleep


def test_a_tick_already_due_runs_without_a_sleep_but_never_twice_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _events_with(0.0, monkeypatch)
    assert "TT" in events  # a due tick did not give up the GIL first
    assert "TTT" not in events  # every other one did: a stop gets through, the loop cannot spin
    assert events.count("S") >= events.count("T") // 2 - 1


def test_a_tick_not_yet_due_always_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _events_with(0.0005, monkeypatch)
    assert "TT" not in events and events.startswith("S")
