"""Added cold-start time: importing and starting greenflame's Lambda agent in a fresh interpreter.

Each run is a new ``python`` process that times, with ``perf_counter``, the import of the agent's
Lambda module plus ``start_lambda_agent()`` (what the layer's entry does before loading the
function), against the import of CodeGuru's decorator module, alternating the two.

    python benchmarks/lambda/cold_start.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List

PROBES = {
    "greenflame": (
        "import time; t = time.perf_counter(); "
        "from greenflame.agent.aws_lambda import start_lambda_agent; start_lambda_agent(); "
        "print((time.perf_counter() - t) * 1000)"
    ),
    "codeguru": (
        "import time; t = time.perf_counter(); "
        "from codeguru_profiler_agent import with_lambda_profiler; "
        "print((time.perf_counter() - t) * 1000)"
    ),
}


def measure(runs: int) -> Dict[str, List[float]]:
    results: Dict[str, List[float]] = {name: [] for name in PROBES}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, AWS_LAMBDA_FUNCTION_NAME="bench", GREENFLAME_SERVER="http://127.0.0.1:9", TMPDIR=tmp)
        for _ in range(runs):
            for name, code in PROBES.items():
                done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
                results[name].append(float(done.stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results = measure(args.runs)
    print(
        json.dumps(
            {
                name: {"median_ms": round(statistics.median(v), 2), "max_ms": round(max(v), 2), "runs": len(v)}
                for name, v in results.items()
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
