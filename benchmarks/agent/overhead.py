"""Overhead of each profiler against no profiler, alternating runs (A B A B) in the same session.

    python overhead.py --pairs 5 --seconds 4 [--agents greenflame,naive,codeguru,...]

For every workload (1 thread with ~15-frame stacks, run in the main thread as a single-threaded
program does, then in another thread while the main thread waits; 4 threads with 60-frame
stacks, the main thread waiting) and every
agent, runs ``workload.py`` without and with the agent in turn, ``--pairs`` times, and prints a
Markdown table: the agent's CPU as a share of the application threads' CPU (median and range),
the throughput ratio with/without (median and range of the pairs), the baseline's own spread (the
noise), the ticks per second the in-process samplers reached, and the agent's one-time start-up
CPU (its first ``--warmup`` seconds, which the other columns leave out).
Each run is a fresh interpreter; competitors must be importable by ``--python``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
#: name -> (label, threads, depth, workload in the main thread)
WORKLOADS = {
    "main": ("1 thread (main), 15 frames", 1, 15, True),
    "worker": ("1 thread (not main; main waits), 15 frames", 1, 15, False),
    "four": ("4 threads, 60 frames", 4, 60, False),
}


def run(
    python: str, agent: str, threads: int, depth: int, seconds: float, warmup: float, in_main: bool
) -> Dict[str, Any]:
    command = [python, os.path.join(HERE, "workload.py"), "--agent", agent, "--threads", str(threads)]
    command += ["--depth", str(depth), "--seconds", str(seconds), "--warmup", str(warmup)]
    command += ["--main"] if in_main else []
    env = dict(os.environ, PATH=os.path.dirname(python) + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 10 + 60, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{agent}: {result.stderr.strip().splitlines()[-1:]}")
    last: Dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


def spread(values: List[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds each run goes before measuring")
    parser.add_argument("--agents", default="greenflame,naive,codeguru,pyroscope,pyinstrument,py-spy")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"some of {', '.join(WORKLOADS)}")
    args = parser.parse_args()
    print(
        "| workload | agent | agent CPU / app CPU, % | throughput with/without | baseline noise | ticks/s "
        "| start-up CPU, ms |"
    )
    print("|---|---|---|---|---|---|---|")
    agents = args.agents.split(",")
    for name in args.workloads.split(","):
        label, threads, depth, in_main = WORKLOADS[name]
        runs: Dict[str, List[Tuple[Dict[str, Any], Dict[str, Any]]]] = {agent: [] for agent in agents}
        for _ in range(args.pairs):
            for agent in agents:  # agents interleaved too, so that a drift of the machine hits all alike
                base = run(args.python, "none", threads, depth, args.seconds, args.warmup, in_main)
                measured = run(args.python, agent, threads, depth, args.seconds, args.warmup, in_main)
                runs[agent].append((base, measured))
        for agent in agents:
            print(f"| {label} | {agent} | {summary(runs[agent])} |", flush=True)


def summary(pairs: List[Tuple[Dict[str, Any], Dict[str, Any]]]) -> str:
    """The table cells of one agent: share, throughput ratio, baseline noise, ticks per second."""
    base_rates = [base["work"] / base["wall_s"] for base, _ in pairs]
    ratios = [(measured["work"] / measured["wall_s"]) / rate for (_, measured), rate in zip(pairs, base_rates)]
    shares = [100 * m["agent_cpu_ns"] / m["app_cpu_ns"] for _, m in pairs if m["app_cpu_ns"]]
    ticks = [m["ticks_per_s"] for _, m in pairs if m.get("ticks_per_s")]
    noise = (max(base_rates) - min(base_rates)) / statistics.median(base_rates)
    shown_ticks = statistics.median(ticks) if ticks else "-"
    start_ms = statistics.median(m.get("agent_warmup_cpu_ns", 0) / 1e6 for _, m in pairs)
    return f"{spread(shares)} | {spread(ratios)} | ±{50 * noise:.0f}% | {shown_ticks} | {start_ms:.1f}"


if __name__ == "__main__":
    main()
