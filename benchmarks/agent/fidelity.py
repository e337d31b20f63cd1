"""Fidelity: greenflame's CPU and wall views against the truth measured inside the program, with
py-spy 0.4 at 100 Hz on the same process beside them.

    python benchmarks/agent/fidelity.py [--workloads sleep_mix,socket_mix,...] [--seconds 10] [--runs 1]

Each run starts ``greenflame run --out P -- python fidelity_workloads.py W`` (the default
configuration: 100 Hz, 1% CPU budget) and, once the program has started, two py-spy processes on
it (``--nonblocking``, 100 Hz; one without ``--idle`` for the CPU view, one with it for the wall
view). For every function of the workload it prints the share of the truth, of greenflame and of
py-spy in each view, in points, and greenflame's wall samples of the workload's own threads (by
their ``thread`` label) as a fraction of 100 Hz x elapsed x threads, and the wall time the report
estimates for them (those samples x its ``sample_period_ns``) over the truth. The issue's goal: every share
within 3 points of the truth in the CPU view, within 5 in the wall view, and at least 80% of 100 Hz
worth of wall samples.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "fidelity_workloads.py"
ALL = ("sleep_mix", "socket_mix", "two_threads", "split_532", "short_waits")

Shares = Dict[str, float]


def shares(counts: Dict[str, float]) -> Shares:
    """Each function's share of the total, in points."""
    total = sum(counts.values())
    return {name: 100.0 * value / total if total else 0.0 for name, value in counts.items()}


def innermost(names: Iterable[str], wanted: Iterable[str]) -> Optional[str]:
    """The innermost of ``wanted`` in a stack given root first."""
    found = None
    wanted_set = set(wanted)
    for name in names:
        if name in wanted_set:
            found = name
    return found


def greenflame_counts(
    report: dict, functions: List[str], threads: Iterable[str] = ()
) -> Tuple[Dict[str, float], Dict[str, float], int]:
    """CPU and wall samples per function of the report, and its wall samples in all: of the threads named
    ``threads`` only (by their ``thread`` label; all samples when none is given or none is labelled), so
    that a main thread waiting in ``join()`` for the workload's threads does not count towards theirs."""
    columns = [t["name"] for t in report["sample_types"]]
    cpu_at, wall_at = columns.index("cpu"), columns.index("wall")
    cpu: Dict[str, float] = dict.fromkeys(functions, 0.0)
    wall: Dict[str, float] = dict.fromkeys(functions, 0.0)
    total_wall = 0
    wanted = set(threads)
    if not any("thread" in sample.get("labels", {}) for sample in report["samples"]):
        wanted = set()
    for sample in report["samples"]:
        if not wanted or sample.get("labels", {}).get("thread") in wanted:
            total_wall += sample["values"][wall_at]
        name = innermost((report["frames"][i]["function"] for i in sample["stack"]), functions)
        if name is not None:
            cpu[name] += sample["values"][cpu_at]
            wall[name] += sample["values"][wall_at]
    return cpu, wall, total_wall


def py_spy_counts(path: Path, functions: List[str]) -> Dict[str, float]:
    """Samples per function in py-spy's raw (collapsed) output."""
    counts: Dict[str, float] = dict.fromkeys(functions, 0.0)
    if not path.exists():
        return counts
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        names = (frame.split(" (", 1)[0] for frame in stack.split(";"))
        name = innermost(names, functions)
        if name is not None:
            counts[name] += int(count)
    return counts


def _wait_for(path: Path, timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.01)
    raise RuntimeError(f"the workload did not start within {timeout_s} s")


def _py_spy(pid: int, seconds: float, out: Path, idle: bool) -> subprocess.Popen:
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "--nonblocking"]
    command += ["--duration", str(max(1, int(seconds))), "--output", str(out)] + (["--idle"] if idle else [])
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_once(workload: str, seconds: float, with_py_spy: bool) -> dict:
    """One run of ``workload``: truth, greenflame and py-spy shares, and greenflame's wall coverage."""
    folder = Path(tempfile.mkdtemp(prefix="greenflame-fidelity-"))
    truth_path, report_path, pid_path = folder / "truth.json", folder / "report.json", folder / "pid"
    command = [sys.executable, "-m", "greenflame.cli", "run", "--out", str(report_path), "--", sys.executable]
    command += [str(WORKLOAD), workload, "--seconds", str(seconds), "--truth", str(truth_path)]
    command += ["--pid-file", str(pid_path)]
    program = subprocess.Popen(command, env={**os.environ, "GREENFLAME_LOG_LEVEL": "warning"})
    spies: List[subprocess.Popen] = []
    if with_py_spy:
        pid = _wait_for(pid_path)
        spies = [_py_spy(pid, seconds - 1, folder / f"spy-{kind}.txt", kind == "wall") for kind in ("cpu", "wall")]
    program.wait()
    for spy in spies:
        spy.wait()
    truth = json.loads(truth_path.read_text())
    report = json.loads(report_path.read_text())
    functions = sorted(truth["cpu"])
    cpu, wall, total_wall = greenflame_counts(report, functions, truth.get("thread_names", ()))
    expected = 100.0 * truth["elapsed_s"] * truth["threads"]
    result = {
        "workload": workload,
        "truth": {"cpu": shares(truth["cpu"]), "wall": shares(truth["wall"])},
        "greenflame": {"cpu": shares(cpu), "wall": shares(wall)},
        "greenflame_samples": {"cpu": sum(cpu.values()), "wall": total_wall},
        "wall_coverage": total_wall / expected,
        # What a user reads: the workload threads' wall time as the report estimates it (samples x the
        # reported period), over the truth (elapsed x threads).
        "time_ratio": total_wall * report["sample_period_ns"] / 1e9 / (truth["elapsed_s"] * truth["threads"]),
        "rate_hz": report["metadata"].get("sample_rate_hz"),
        "rate_limited": "rate_limited" in report["metadata"],
    }
    if with_py_spy:
        result["py_spy"] = {
            kind: shares(py_spy_counts(folder / f"spy-{kind}.txt", functions)) for kind in ("cpu", "wall")
        }
    return result


def worst_error(result: dict, source: str, kind: str) -> float:
    """The largest distance from the truth, in points, over the workload's functions."""
    truth, seen = result["truth"][kind], result[source][kind]
    return max(abs(seen[name] - truth[name]) for name in truth)


def print_result(result: dict) -> None:
    print(
        f"\n{result['workload']}: wall coverage {result['wall_coverage']:.2f}, wall time estimated / true "
        f"{result['time_ratio']:.2f}, rate {result['rate_hz']} Hz"
        f"{' (rate limited)' if result['rate_limited'] else ''}, samples {result['greenflame_samples']}"
    )
    sources = [s for s in ("truth", "greenflame", "py_spy") if s in result]
    for kind in ("cpu", "wall"):
        print(f"  {kind:4} " + "".join(f"{s:>24}" for s in sources))
        for name in sorted(result["truth"][kind]):
            print(f"  {name:14}" + "".join(f"{result[s][kind][name]:24.1f}" for s in sources))
        errors = "".join(f"  {s}: {worst_error(result, s, kind):.1f}" for s in sources[1:])
        print(f"  worst error, points:{errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default=",".join(ALL))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-py-spy", action="store_true")
    parser.add_argument("--json", help="also write every run's result to this file")
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        for workload in args.workloads.split(","):
            result = run_once(workload, args.seconds, not args.no_py_spy)
            print_result(result)
            results.append(result)
    summary: Dict[str, Dict[str, List[float]]] = {}
    for result in results:
        row = summary.setdefault(result["workload"], {"cpu": [], "wall": [], "coverage": []})
        row["cpu"].append(worst_error(result, "greenflame", "cpu"))
        row["wall"].append(worst_error(result, "greenflame", "wall"))
        row["coverage"].append(result["wall_coverage"])
    print("\nmedian [min-max] over runs: worst CPU error, worst wall error (points), wall coverage")
    for workload, row in summary.items():
        cells = [f"{statistics.median(v):.2f} [{min(v):.2f}-{max(v):.2f}]" for v in row.values()]
        print(f"  {workload:12} " + "   ".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
