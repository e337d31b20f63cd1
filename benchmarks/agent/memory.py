"""Peak memory of the agent's pipeline holding 10,000 distinct stacks.

    python memory.py --stacks 10000

A worker thread stands still in each of ``--stacks`` distinct stacks in turn (two levels out of
100 generated functions each, under a 20-frame trunk) while the real sampler samples it; then the
report is drained and encoded. ``tracemalloc`` measures the peak of what was allocated from the
moment before the agent was built (the workload's own functions are created first).
"""

from __future__ import annotations

import argparse
import functools
import json
import threading
import tracemalloc
from typing import Any, Callable, List

from greenflame.agent.aggregator import Aggregator
from greenflame.agent.cpuprobe import select_probe
from greenflame.agent.drops import DropCounter
from greenflame.agent.exporters import encode
from greenflame.agent.sampler import ThreadSampler


def make_functions(count: int) -> List[Callable[..., Any]]:
    functions = []
    for i in range(count):
        namespace: dict = {}
        exec(f"def level_{i}(inner, *args):\n    return inner(*args)\n", namespace)
        functions.append(namespace[f"level_{i}"])
    return functions


def trunk(depth: int, body: Callable[[], None]) -> None:
    if depth:
        trunk(depth - 1, body)
    else:
        body()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stacks", type=int, default=10_000)
    args = parser.parse_args()
    functions = make_functions(100)
    go, ready = threading.Event(), threading.Event()
    pairs = [(a, b) for a in functions for b in functions][: args.stacks]

    def park() -> None:
        ready.set()
        go.wait()
        go.clear()

    def worker() -> None:
        for a, b in pairs:
            trunk(20, functools.partial(a, b, park))
        ready.set()

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    drops = DropCounter()
    aggregator = Aggregator(args.stacks, drops)
    sampler = ThreadSampler(aggregator, drops, select_probe(), max_depth=128)
    thread = threading.Thread(target=worker)
    thread.start()
    for _ in pairs:
        ready.wait()
        ready.clear()
        sampler.sample()
        go.set()
    thread.join()
    stacks = len(aggregator)
    report = aggregator.drain("memory", 10_000_000, {})
    body = encode(report, compress=True)
    peak = tracemalloc.get_traced_memory()[1] - base
    print(json.dumps({"distinct_stacks": stacks, "peak_mb": round(peak / 2**20, 2), "report_gz_kb": len(body) // 1024}))


if __name__ == "__main__":
    main()
