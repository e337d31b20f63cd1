"""What the wall-clock SIGPROF path costs the main thread per handler call, and where it goes.

    python benchmarks/agent/signal_cost.py wake     # a signal's wake-up by how long the thread slept
    python benchmarks/agent/signal_cost.py rearm    # the timer's re-arm inside a SIGPROF handler
    PYTHONPATH=<a folder with greenflame -> a checkout> python benchmarks/agent/signal_cost.py calls \\
        --workload short_waits                       # the agent's own figure, per handler call

``wake``: a thread sleeps; a timer signal interrupts the sleep after D; the CPU the thread's own
clock counts from the end of one handler call to the start of the next (the sleep resumed, blocked,
woken) is the wake-up's cost, printed by D. ``rearm``: the main thread busy or sleeping, each SIGPROF
handler re-arms the timer, timed inside the handler, by way of setting it: the agent's
``WallTimer.set_after``; its exact way (the setting's fields filled, an absolute time: what it did
for every re-arm before its presets); one C call from a ready-made setting with the timer's lock (what
``set_after`` does within its presets); the same without the lock; ``signal.setitimer`` on
``ITIMER_REAL`` (a process-wide SIGALRM, for comparison only). ``calls``: the agent started in the
process at the default rate with the budget lifted, one of ``fidelity_workloads.py``'s workloads for
``--seconds``, then the sampler's ``signal_stats``: its ``cpu_ns`` per handler call (the handler's time,
the deliveries' and the charged wake-ups'). Run it against two checkouts alternately (A B A B).
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

HERE = Path(__file__).resolve().parent


def quartiles(values: List[int]) -> str:
    """``values`` (ns) as a median with quartiles, in microseconds."""
    ordered = sorted(values)
    low, high = ordered[len(ordered) // 4] / 1000, ordered[(3 * len(ordered)) // 4] / 1000
    return f"median {statistics.median(ordered) / 1000:.1f} us (quartiles {low:.1f}-{high:.1f}), n={len(ordered)}"


def wake_gaps(delay: float, seconds: float) -> List[int]:
    """The thread's CPU between two handler calls that a timer ``delay`` apart woke from one sleep."""
    gaps: List[int] = []
    ended = [0]

    def handler(signum: int, frame: object) -> None:
        started = time.thread_time_ns()
        if ended[0]:
            gaps.append(started - ended[0])
        signal.setitimer(signal.ITIMER_REAL, delay)
        ended[0] = time.thread_time_ns()

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, delay)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        time.sleep(0.5)
    signal.setitimer(signal.ITIMER_REAL, 0)
    return gaps


def wake(seconds: float) -> None:
    for delay in (0.001, 0.003, 0.010, 0.030):
        print(f"woken after {delay * 1000:4.0f} ms asleep: {quartiles(wake_gaps(delay, seconds))}")


def rearm_costs(way: Callable[[], None], start: Callable[[], object], asleep: bool, seconds: float) -> List[int]:
    """The time ``way`` takes in each SIGPROF (or SIGALRM) handler call, the main thread busy or asleep."""
    costs: List[int] = []

    def handler(signum: int, frame: object) -> None:
        started = time.perf_counter_ns()
        way()
        costs.append(time.perf_counter_ns() - started)

    signal.signal(signal.SIGPROF, handler)
    signal.signal(signal.SIGALRM, handler)
    start()
    end = time.perf_counter() + seconds
    spins = 0
    while time.perf_counter() < end:
        if asleep:
            time.sleep(0.03)
        else:
            spins += 1
    return costs


def rearm(seconds: float) -> None:
    from greenflame.agent.wall_timer import WallTimer, _types

    timer = WallTimer.create(threading.get_native_id())
    if timer is None:
        sys.exit("no wall-clock timer here (Linux only)")
    spec = _types()[2]()
    spec.it_value.tv_nsec = 10_000_000
    ready = ctypes.byref(spec)
    settime, timer_id = timer._settime, timer._id
    now = time.perf_counter_ns

    def exact() -> None:  # TIMER_ABSTIME, the fields filled: set_after beyond its presets
        sec, nsec = divmod(now() + 10_000_000, 1_000_000_000)
        timer._settime_locked(1, timer._ref, sec, nsec)

    ways: Dict[str, Callable[[], None]] = {
        "set_after": lambda: timer.set_after(0.01, now()),
        "exact (filled, absolute)": exact,
        "ready-made, locked": lambda: timer._settime_locked(0, ready),
        "ready-made, no lock": lambda: settime(timer_id, 0, ready, None),
    }
    for asleep in (False, True):
        for name, way in ways.items():
            costs = rearm_costs(way, lambda: timer.set(0.01), asleep, seconds)
            timer.stop()
            time.sleep(0.05)
            print(f"{'asleep' if asleep else 'busy  '} {name:25s} {quartiles(costs)}")
        alarm = rearm_costs(
            lambda: signal.setitimer(signal.ITIMER_REAL, 0.01),
            lambda: signal.setitimer(signal.ITIMER_REAL, 0.01),
            asleep,
            seconds,
        )
        signal.setitimer(signal.ITIMER_REAL, 0)
        print(f"{'asleep' if asleep else 'busy  '} {'setitimer ITIMER_REAL':25s} {quartiles(alarm)}")
    timer.close()


def calls(workload: str, seconds: float) -> None:
    sys.path.insert(0, str(HERE))
    import fidelity_workloads

    import greenflame.agent as agent

    profiler = agent.start(out=str(Path("/tmp") / "signal-cost.json"), cpu_budget=1.0)
    if profiler is None:
        sys.exit("the agent did not start")
    fidelity_workloads.WORKLOADS[workload](time.perf_counter() + seconds)
    stats = profiler._engine.sampler.signal_stats()  # type: ignore[attr-defined]
    agent.stop()
    per_call = stats["cpu_ns"] / max(1, stats["calls"]) / 1000
    print(f"{workload}: {per_call:.1f} us per handler call, {stats['calls']} calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("wake", "rearm", "calls"))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workload", default="short_waits")
    args = parser.parse_args()
    if args.what == "wake":
        wake(args.seconds)
    elif args.what == "rearm":
        rearm(args.seconds)
    else:
        calls(args.workload, args.seconds)


if __name__ == "__main__":
    main()
