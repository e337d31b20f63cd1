"""Time and memory of building a group's series from its profiles (``analyzer.timeseries.group_series``).

This is what ``greenflame anomalies`` does over profiles (``detect_profiles``), and what the
server's detector did for reports shorter than the stored 5-minute series until it counted them
into finer buckets from their ingest folds (``server/fine_series.py``). The reports
are the ingest benchmark's (``reports.py``: 60-second windows, about 900 stacks from a pool of
2,400), decoded before the clock starts; the figure is the call's time and how far it raised the
process's peak resident memory (``ru_maxrss``), in a new process per repeat.

    python benchmarks/server/group_series.py [--profiles 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reports import ReportGenerator

#: A fixed clock, so every repeat builds the same buckets.
NOW_NS = 1_765_000_000 * 10**9


def measure(profiles: int) -> dict:
    """One build in this process: seconds and peak-memory growth in MiB."""
    from greenflame.analyzer.formats import greenflame_json
    from greenflame.analyzer.timeseries import group_series

    generator = ReportGenerator()
    decoded = [
        greenflame_json.loads(gzip.decompress(generator.body("g", NOW_NS - 3600 * 10**9 + n * 38 * 10**9)))
        for n in range(profiles)
    ]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    group_series(decoded)
    elapsed = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {"seconds": elapsed, "peak_growth_mib": grown}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.profiles)))
        return
    runs = []
    for _ in range(args.repeats):
        command = [sys.executable, __file__, "--child", "--profiles", str(args.profiles)]
        runs.append(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout))
    seconds = [run["seconds"] for run in runs]
    grown = [run["peak_growth_mib"] for run in runs]
    print(
        f"{args.profiles} reports: group_series median {statistics.median(seconds):.2f} s "
        f"({min(seconds):.2f}-{max(seconds):.2f}), peak memory +{statistics.median(grown):.0f} MiB "
        f"({min(grown):.0f}-{max(grown):.0f}), {args.repeats} processes"
    )


if __name__ == "__main__":
    main()
