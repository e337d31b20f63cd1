"""Lambda handlers that time themselves, for benchmarks/lambda/fidelity.py.

Each invocation spends ``ms`` milliseconds (from the event) either burning CPU (``cpu_only``) or half
burning CPU and half in ``time.sleep`` (``half_wait``), and appends its own wall and thread CPU time,
measured with ``perf_counter`` and ``thread_time``, to the file named by ``FIDELITY_TRUTH``. With
``FIDELITY_THREADS`` set, each line also holds every thread's CPU time so far, by thread name (read
from ``/proc/self/task/<id>/schedstat`` after the timed part), to tell where the agent's CPU goes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Dict


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _thread_cpu_ns() -> Dict[str, int]:
    """Each live thread's CPU time so far (ns), by name (Linux)."""
    found: Dict[str, int] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/schedstat", encoding="ascii") as stat:
                found[thread.name] = int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return found


def _record(wall: float, cpu: float) -> None:
    line: Dict[str, Any] = {"wall": wall, "cpu": cpu}
    if os.environ.get("FIDELITY_THREADS"):
        line["threads"] = _thread_cpu_ns()
    with open(os.environ["FIDELITY_TRUTH"], "a", encoding="utf-8") as truth:
        truth.write(json.dumps(line) + "\n")


def cpu_only(event: Dict[str, Any], context: Any) -> Dict[str, bool]:
    """``ms`` milliseconds of CPU."""
    wall, cpu = time.perf_counter(), time.thread_time()
    _burn(event.get("ms", 10) / 1000)
    _record(time.perf_counter() - wall, time.thread_time() - cpu)
    return {"ok": True}


def half_wait(event: Dict[str, Any], context: Any) -> Dict[str, bool]:
    """``ms`` milliseconds: half of CPU, then half asleep."""
    wall, cpu = time.perf_counter(), time.thread_time()
    half = event.get("ms", 10) / 2000
    _burn(half)
    time.sleep(half)
    _record(time.perf_counter() - wall, time.thread_time() - cpu)
    return {"ok": True}
