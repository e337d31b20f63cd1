"""An analysis run's time against how many profiles the group's last hour holds, one new report
since the previous run (goal, issue 18: a run costs in proportion to new data).

For each count (``--profiles``, default 100 500 2000) the data is made once: one group whose
last hour holds that many reports (``reports.py``, ``--stacks`` stacks each, ``--report-s``
long, from count x report-s / 3600 instances reporting in turn), each added to its stored series
bucket as the rollup worker does. Then, alternating the sides round by round (A B A B), each
side's child process (``--sides NAME=PYTHONPATH``: the server code of that tree; ``.`` for this
checkout) gets its own copy of the data and:

- ``first``: runs the pipeline once (``Pipeline.run_group``: the last hour merged and analysed,
  findings, anomalies over the stored series), as a new process's first run does;
- ``run``: ``--runs`` times, stores one more report (the next instance's turn: the window moves by
  one report) and runs the pipeline again, in the same process (the steady state of a server).

With ``--report-s`` 300 (default) the detector reads the stored 5-minute series; with 60 it counts
one-minute buckets (``server/fine_series.py``), each profile once per process: decoded, since no
ingest request made its fold here.

    python benchmarks/server/analysis_window.py --sides A=/tmp/wm-tree-a B=/tmp/wm-tree-b
        [--profiles 100 500 2000] [--rounds 2] [--runs 3] [--stacks 300] [--report-s 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

GROUP = "window-service"
HOUR_NS = 3600 * 10**9


def build(root: Path, count: int, stacks: int, report_s: int) -> None:
    """``count`` reports over the hour before now, in ``root`` (db.sqlite and blobs), series stored."""
    from reports import ReportGenerator

    from greenflame.server.series import series_for
    from greenflame.server.storage import Storage

    storage = Storage.open(f"sqlite:///{root / 'db.sqlite'}", str(root / "blobs"))
    storage.create_group(GROUP)
    generator = ReportGenerator(seed=count)
    series = series_for(storage)
    first_ns = time.time_ns() - HOUR_NS
    for n in range(count):
        profile = generator.report(GROUP, first_ns + n * HOUR_NS // count, report_s * 10**9, stacks)
        profile_id, _ = storage.add_profile(GROUP, profile, None)
        (row,) = [r for r in storage.find_profiles(GROUP, profile.start_time_unix_ns) if r.id == profile_id]
        series.add(row, profile)
    series.flush(True)
    storage.close()


def tune_collector() -> None:
    """The garbage collector as ``greenflame serve`` and ``greenflame worker`` set it (a tree from
    before server/collector.py keeps Python's)."""
    try:
        from greenflame.server import collector
        from greenflame.server.settings import Settings
    except ImportError:
        return
    collector.tune(Settings.from_env().gc_young_threshold)


def child(root: Path, count: int, stacks: int, report_s: int, runs: int) -> None:
    """One side's runs on its copy of the data; prints ``{"first": ms, "runs": [ms, ...]}``."""
    from reports import ReportGenerator

    from greenflame.server.pipeline import Pipeline, PipelineConfig
    from greenflame.server.pipeline_store import PipelineStore
    from greenflame.server.storage import Storage
    from greenflame.server.tickets.store import TicketStore

    storage = Storage.open(f"sqlite:///{root / 'db.sqlite'}", str(root / "blobs"))
    tune_collector()
    pipeline = Pipeline(
        storage, PipelineStore(storage.engine), TicketStore(storage.engine), PipelineConfig(), environ={}
    )
    generator = ReportGenerator(seed=count + 1)
    step_ns = HOUR_NS // count
    next_ns = max(row.start_time_unix_ns for row in storage.find_profiles(GROUP)) + step_ns

    def run() -> float:
        started = time.perf_counter()
        summary = pipeline.run_group(GROUP)
        elapsed = (time.perf_counter() - started) * 1000
        if not summary or summary.get("error"):
            raise SystemExit(f"the pipeline run failed: {summary}")
        return elapsed

    first = run()
    times = []
    for _ in range(runs):
        storage.add_profile(GROUP, generator.report(GROUP, next_ns, report_s * 10**9, stacks), None)
        next_ns += step_ns
        times.append(run())
    import greenflame.server.pipeline as code

    print(json.dumps({"first": first, "runs": times, "code": code.__file__}))


def side_run(side: str, path: str, data: Path, count: int, args: argparse.Namespace) -> Dict[str, object]:
    copy = data.parent / f"{data.name}-{side}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data, copy)
    env = dict(os.environ, PYTHONPATH=path if path != "." else os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, __file__, "--child", str(copy), "--profiles", str(count)]
    command += ["--stacks", str(args.stacks), "--report-s", str(args.report_s), "--runs", str(args.runs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    shutil.rmtree(copy, ignore_errors=True)
    if done.returncode:
        raise SystemExit(f"side {side} failed:\n{done.stderr}")
    result: Dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", nargs="+", default=[".=."], help="NAME=PYTHONPATH of each side's code")
    parser.add_argument("--profiles", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per child, each after one new report")
    parser.add_argument("--stacks", type=int, default=300, help="distinct stacks per report")
    parser.add_argument("--report-s", type=int, default=300, help="each report's window")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.profiles[0], args.stacks, args.report_s, args.runs)
        return
    sides: List[Tuple[str, str]] = [tuple(item.split("=", 1)) for item in args.sides]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results: Dict[Tuple[int, str], Dict[str, List[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="gf-analysis-window-") as tmp:
        for count in args.profiles:
            data = Path(tmp) / f"n{count}"
            data.mkdir()
            started = time.perf_counter()
            build(data, count, args.stacks, args.report_s)
            print(f"{count} profiles stored in {time.perf_counter() - started:.0f} s", flush=True)
            for _ in range(args.rounds):
                for name, path in sides:
                    found = side_run(name, path, data, count, args)
                    kept = results.setdefault((count, name), {"first": [], "run": []})
                    kept["first"].append(float(found["first"]))  # type: ignore[arg-type]
                    kept["run"].extend(found["runs"])  # type: ignore[arg-type]
                    shown = " ".join(f"{ms:.0f}" for ms in found["runs"])  # type: ignore[attr-defined]
                    load = os.getloadavg()[0]
                    print(f"  {count:5d} {name}: first {found['first']:.0f} ms, runs {shown} ms (load {load:.2f})")
            shutil.rmtree(data)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for (count, name), kept in results.items():
        runs, first = kept["run"], kept["first"]
        run_range, first_range = f"{min(runs):.0f}-{max(runs):.0f}", f"{min(first):.0f}-{max(first):.0f}"
        print(
            f"{count:5d} profiles {name}: run median {statistics.median(runs):7.0f} ms ({run_range}, {len(runs)} runs);"
            f" first run median {statistics.median(first):7.0f} ms ({first_range})"
        )


if __name__ == "__main__":
    main()
