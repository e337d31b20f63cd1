"""Import time of ``greenflame.agent`` above a bare interpreter, alternating runs.

    python import_time.py --runs 40

Each run is a fresh ``python -c``: ``pass`` (A) and ``import greenflame.agent`` (B) alternate;
the figure is the median of B minus the median of A, with each one's interquartile range.
Also prints ``-X importtime``'s self+cumulative microseconds for the package, which is immune
to process start-up noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import List


def timed(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    return time.perf_counter() - started


def quartiles(values: List[float]) -> str:
    q = statistics.quantiles(values, n=4)
    return f"{1000 * q[0]:.1f}-{1000 * q[2]:.1f} ms"


def importtime_us() -> int:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import greenflame.agent"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    total = 0
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() in ("greenflame", "greenflame.agent"):
            total = max(total, int(parts[1]))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    bare: List[float] = []
    agent: List[float] = []
    for _ in range(args.runs):
        bare.append(timed("pass"))
        agent.append(timed("import greenflame.agent"))
    print(
        json.dumps(
            {
                "bare_ms": round(1000 * statistics.median(bare), 2),
                "with_agent_ms": round(1000 * statistics.median(agent), 2),
                "difference_ms": round(1000 * (statistics.median(agent) - statistics.median(bare)), 2),
                "bare_iqr": quartiles(bare),
                "agent_iqr": quartiles(agent),
                "importtime_cumulative_us": statistics.median(importtime_us() for _ in range(9)),
            }
        )
    )


if __name__ == "__main__":
    main()
