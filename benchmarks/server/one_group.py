"""The rollup worker's cost per report as one group's buckets fill at a fleet's rate (issue 18).

A fleet of 1,000 instances reporting every 10 s sends one group 100 reports a second: its
5-minute bucket holds 30,000 profiles by the slot's end and its hour bucket 360,000. This adds
``--reports`` profiles 10 ms apart into one group's buckets as the rollup worker does
(``Rollups._add`` for the 5-minute and the hour bucket of each; the profiles' folds are reused
from ``--distinct`` generated reports, ``reports.py``), and prints the mean time per report over
each ``--step`` reports. Each side (``--sides NAME=PYTHONPATH``, ``.`` for this checkout) runs in
its own process, alternating A B A B over ``--rounds``.

    python benchmarks/server/one_group.py --sides A=/tmp/tree-a B=. [--reports 30000] [--step 5000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

GROUP = "fleet"
SPACING_NS = 10**7  # 100 reports a second


def child(reports: int, step: int, distinct: int) -> None:
    """One side's adds; prints the mean milliseconds per report of each step as JSON."""
    from reports import ReportGenerator

    from greenflame.analyzer.formats.wire_summary import summarize
    from greenflame.server.callpaths import fold_document
    from greenflame.server.rollups import HOUR_NS, WIDTHS_NS, Rollups
    from greenflame.server.storage import Storage, StoredProfile

    with tempfile.TemporaryDirectory(prefix="gf-one-group-") as tmp:
        storage = Storage.open(f"sqlite:///{tmp}/db.sqlite", f"{tmp}/blobs")
        storage.create_group(GROUP)
        rollups = Rollups(storage)
        index = rollups.index(GROUP)
        generator = ReportGenerator()
        start = (time.time_ns() // HOUR_NS - 2) * HOUR_NS
        folds = [
            fold_document(index, summarize(gzip.decompress(generator.body(GROUP, start + n * 10**9))))
            for n in range(distinct)
        ]
        steps: List[float] = []
        began = time.perf_counter()
        for n in range(reports):
            at = start + n * SPACING_NS
            row = StoredProfile(uuid.uuid4().hex, GROUP, at, 10**10, at, "unused")
            for width in WIDTHS_NS:
                rollups._add(index, (GROUP, width, at // width), row, folds[n % distinct])
            if (n + 1) % step == 0:
                now = time.perf_counter()
                steps.append((now - began) * 1000 / step)
                began = now
        storage.close()
    print(json.dumps(steps))


def run_side(path: str, args: argparse.Namespace) -> List[float]:
    env = dict(os.environ, PYTHONPATH=path if path != "." else os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, __file__, "--child", "--reports", str(args.reports), "--step", str(args.step)]
    command += ["--distinct", str(args.distinct)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", nargs="+", default=[".=."], help="NAME=PYTHONPATH of each side's code")
    parser.add_argument("--reports", type=int, default=30_000)
    parser.add_argument("--step", type=int, default=5_000)
    parser.add_argument("--distinct", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.reports, args.step, args.distinct)
        return
    sides: List[Tuple[str, str]] = [tuple(item.split("=", 1)) for item in args.sides]
    results: Dict[str, List[List[float]]] = {name: [] for name, _ in sides}
    print(f"{args.reports} reports 10 ms apart into one group, ms a report over each {args.step}")
    for _ in range(args.rounds):
        for name, path in sides:
            steps = run_side(path, args)
            results[name].append(steps)
            print(f"  {name}: " + ", ".join(f"{value:.2f}" for value in steps), flush=True)
    for name, runs in results.items():
        medians = [statistics.median(column) for column in zip(*runs)]
        print(f"{name} median per step: " + ", ".join(f"{value:.2f}" for value in medians))


if __name__ == "__main__":
    main()
