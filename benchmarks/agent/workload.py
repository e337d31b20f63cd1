"""One benchmark run: a CPU-bound workload with or without a profiler, measured from inside.

    python workload.py --agent greenflame --threads 4 --depth 60 --seconds 5

Prints one JSON line: the application threads' CPU time and the profiler's CPU time (each
thread's first ``/proc/self/task/<tid>/schedstat`` field, read while the threads are alive;
for py-spy, its process's utime+stime from ``/proc/<pid>/stat``), the work done and the wall time,
all measured over ``--seconds`` after a ``--warmup`` (the profiler's start-up cost is reported on
its own, as ``agent_warmup_cpu_ns``). greenflame's SIGPROF handler runs in the main thread: its
cost (``Profiler.signal_stats()``, with this run's measured cost of a signal delivery) moves from
the application's CPU to the agent's.
Agent threads are the threads that are neither the main thread nor a workload thread.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from types import FrameType
from typing import Any, Callable, Dict, List, Optional

TICKS = [0]
AGENTS = (
    "none",
    "greenflame",
    "greenflame-unbudgeted",
    "greenflame-thread",
    "naive",
    "codeguru",
    "pyroscope",
    "pyinstrument",
    "py-spy",
)


def schedstat_ns(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/schedstat") as handle:
        return int(handle.read().split()[0])


def process_cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def leaf(n: int) -> int:
    return (n * 7 + 3) % 1009


def work_unit() -> int:
    total = 0
    for i in range(200):
        total += leaf(i)  # a call per iteration: the pattern that makes per-call hooks expensive
    return total


def descend(depth: int, body: Callable[[], None]) -> None:
    if depth > 0:
        descend(depth - 1, body)
    else:
        body()


def signal_delivery_ns(count: int = 2000) -> float:
    """CPU per signal sent to this thread with an empty Python handler (the kill system call included,
    so an over-estimate of a timer's signal): the part of the SIGPROF trigger's cost that its own
    handler cannot time."""
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    me = threading.get_ident()
    started = time.thread_time_ns()
    for _ in range(count):
        signal.pthread_kill(me, signal.SIGUSR1)
    cost = (time.thread_time_ns() - started) / count
    signal.signal(signal.SIGUSR1, previous)
    return cost


def greenflame_signal_cpu_ns(delivery_ns: float) -> int:
    """What greenflame's SIGPROF handler has cost the main thread so far: its own measured time plus
    ``delivery_ns`` per signal (the agent's built-in estimate replaced by this run's measurement)."""
    import greenflame.agent as agent
    from greenflame.agent.sigprof import DELIVERY_NS

    profiler = agent.current()
    if profiler is None:
        return 0
    stats = profiler.signal_stats()
    return int(stats["cpu_ns"] - stats["calls"] * DELIVERY_NS + stats["calls"] * delivery_ns)


def start_agent(name: str, rate_hz: float, out_dir: str) -> Callable[[], None]:
    """Start profiler ``name`` in this process; returns how to stop it."""
    if name.startswith("greenflame"):
        import greenflame.agent as agent

        out = os.path.join(out_dir, "gf.json")
        # -unbudgeted: a budget of a whole core never lowers the rate; -thread: also no SIGPROF trigger
        budget = 0.01 if name == "greenflame" else 1.0
        agent.start(
            out=out,
            rate_hz=rate_hz,
            report_interval_s=3600,
            group="bench",
            cpu_budget=budget,
            signal_trigger=name != "greenflame-thread",
        )

        def stop() -> None:
            agent.stop(flush=True)
            with open(out) as handle:
                report = json.load(handle)
            # ticks = samples of the main thread, which every tick sees once
            main = [s for s in report["samples"] if s.get("labels", {}).get("thread") == "MainThread"]
            TICKS[0] = sum(s["values"][0] for s in main)

        return stop
    if name == "naive":
        # The anchors' reference point: a daemon thread, sys._current_frames, tuples into a Counter.
        import collections

        counts: collections.Counter = collections.Counter()
        stopping = threading.Event()

        def naive() -> None:
            me = threading.get_ident()
            while not stopping.wait(1.0 / rate_hz):
                TICKS[0] += 1
                for ident, top in sys._current_frames().items():
                    if ident == me:
                        continue
                    stack = []
                    frame: Optional[FrameType] = top
                    while frame is not None:
                        code = frame.f_code
                        stack.append((code.co_name, code.co_filename, code.co_firstlineno))
                        frame = frame.f_back
                    counts[tuple(stack)] += 1

        threading.Thread(target=naive, daemon=True).start()
        return stopping.set
    if name == "codeguru":
        from datetime import timedelta

        from codeguru_profiler_agent import Profiler

        profiler = Profiler(
            profiling_group_name="bench",
            region_name="us-east-1",
            environment_override={
                "sampling_interval": timedelta(milliseconds=1000 / rate_hz),
                "reporting_interval": timedelta(minutes=30),
                "cpu_limit_percentage": 100,
            },
        )
        profiler.start()
        return lambda: profiler.stop()
    if name == "pyroscope":
        import pyroscope

        pyroscope.configure(application_name="bench", server_address="http://127.0.0.1:9", sample_rate=int(rate_hz))
        return lambda: pyroscope.shutdown()
    if name == "py-spy":
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(os.getpid()), "--rate", str(int(rate_hz)), "--format", "raw",
             "--output", os.path.join(out_dir, "spy.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)  # let it attach
        start_agent.spy = spy  # type: ignore[attr-defined]
        return lambda: (spy.terminate(), spy.wait(10))  # type: ignore[func-returns-value,return-value]
    return lambda: None


class Snapshot:
    """Everything measured, at one moment: the run is the difference of two snapshots."""

    def __init__(
        self, app_tids: List[int], counts: List[int], signal_cpu: Callable[[], int], spy_pid: Optional[int]
    ) -> None:
        self.wall = time.perf_counter()
        self.app_cpu = [schedstat_ns(tid) for tid in app_tids]
        self.agent_cpu = agent_threads_cpu(app_tids)
        self.signal_cpu = signal_cpu()
        self.work = sum(counts)
        self.spy_cpu = process_cpu_ns(spy_pid) if spy_pid is not None else 0  # py-spy runs outside


def run(args: argparse.Namespace) -> Dict[str, Any]:
    out_dir = tempfile.mkdtemp(prefix="gf-bench-")
    greenflame = args.agent.startswith("greenflame")
    delivery = signal_delivery_ns() if greenflame else 0.0

    def signal_cpu() -> int:
        return greenflame_signal_cpu_ns(delivery) if greenflame else 0

    stop_agent = start_agent(args.agent, args.rate, out_dir)
    spy: Optional[subprocess.Popen] = getattr(start_agent, "spy", None)
    spy_start = process_cpu_ns(spy.pid) if spy is not None else 0
    counts = [0] * args.threads
    app_tids: List[int] = [0] * args.threads
    begin = threading.Barrier(1 if args.main else args.threads + 1)  # in main: nobody to wait for
    warm_end = [0.0]
    deadline = [0.0]
    marks: List[Snapshot] = []
    measured = threading.Event()  # workers stay alive until their CPU has been read

    def mark() -> None:
        marks.append(Snapshot(app_tids, counts, signal_cpu, spy.pid if spy is not None else None))

    def worker(index: int) -> None:
        pyinstrument_profiler = None
        if args.agent == "pyinstrument":
            import pyinstrument

            pyinstrument_profiler = pyinstrument.Profiler(interval=1.0 / args.rate, async_mode="disabled")
            pyinstrument_profiler.start()
        app_tids[index] = threading.get_native_id()
        begin.wait()

        def body() -> None:
            warming = args.main
            while True:
                now = time.perf_counter()
                if now >= deadline[0]:
                    break
                if warming and now >= warm_end[0]:
                    warming = False
                    mark()  # in the main thread, the workload itself marks the end of the warm-up
                work_unit()
                counts[index] += 1
            if args.main:
                mark()

        descend(args.depth, body)
        if pyinstrument_profiler is not None:
            pyinstrument_profiler.stop()
        measured.wait()

    threads = [] if args.main else [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    warm_end[0] = time.perf_counter() + args.warmup
    deadline[0] = warm_end[0] + args.seconds
    if args.main:
        measured.set()
        worker(0)
    else:
        begin.wait()
        time.sleep(max(0.0, warm_end[0] - time.perf_counter()))
        mark()
        time.sleep(max(0.0, deadline[0] - time.perf_counter()))
        mark()
    measured.set()
    for thread in threads:
        thread.join()
    first, last = marks[0], marks[-1]
    wall = last.wall - first.wall
    agent_cpu = sum(cpu - first.agent_cpu.get(tid, 0) for tid, cpu in last.agent_cpu.items())
    app_cpu = sum(last.app_cpu) - sum(first.app_cpu)
    # The SIGPROF handler ran in the application's main thread: its cost moves from the app to the agent.
    in_handler = last.signal_cpu - first.signal_cpu
    agent_cpu += in_handler
    app_cpu -= in_handler if args.main else 0
    agent_cpu += last.spy_cpu - first.spy_cpu
    stop_agent()
    return {
        "agent": args.agent,
        "ticks_per_s": round(TICKS[0] / (wall + args.warmup), 1) if TICKS[0] else None,
        "threads": args.threads,
        "in_main": args.main,
        "depth": args.depth,
        "app_cpu_ns": app_cpu,
        "agent_cpu_ns": agent_cpu,
        "agent_handler_cpu_ns": in_handler,  # the SIGPROF handler's share of agent_cpu_ns
        # What the agent used from its start to the end of the warm-up (its threads are new).
        "agent_warmup_cpu_ns": sum(first.agent_cpu.values()) + first.signal_cpu + first.spy_cpu - spy_start,
        "work": last.work - first.work,
        "wall_s": wall,
    }


def agent_threads_cpu(app_tids: List[int]) -> Dict[int, int]:
    """CPU ns of every thread that is neither the main thread nor a workload thread."""
    main = threading.main_thread().native_id
    found: Dict[int, int] = {}
    for name in os.listdir("/proc/self/task"):
        tid = int(name)
        if tid != main and tid not in app_tids:
            try:
                found[tid] = schedstat_ns(tid)
            except OSError:
                pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agent", choices=AGENTS, default="none")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--main", action="store_true", help="run the (single) workload thread in the main thread")
    parser.add_argument("--depth", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds, after the warm-up")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds run before measuring")
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    sys.setrecursionlimit(max(1000, args.depth + 200))
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
