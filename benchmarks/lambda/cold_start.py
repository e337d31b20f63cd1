"""Added cold-start time: importing and starting greenflame's Lambda agent in a fresh interpreter.

Each run is a new ``python`` process that times, with ``perf_counter``, the import of the agent's
Lambda module plus ``start_lambda_agent()`` (what the layer's entry does before loading the
function), against the import of CodeGuru's decorator module, alternating the three variants.

greenflame is imported from the layer as built by ``greenflame lambda layer`` (with its bytecode),
unpacked into a temporary /opt, by a bare virtual environment's interpreter (``site`` runs, as in
Lambda, but no .pth file preloads modules such as typing, which would hide their cost); once more
with the bytecode removed, as every cold start compiled before the layer shipped it. CodeGuru's
agent is imported from this environment's site-packages.

    python benchmarks/lambda/cold_start.py --runs 20
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
import venv
from pathlib import Path
from typing import Dict, List

from greenflame.devtools.lambda_layer import extract_layer, write_layer

GREENFLAME = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
    "from greenflame.agent.aws_lambda import start_lambda_agent; start_lambda_agent(); "
    "print((time.perf_counter() - t) * 1000)"
)
PROBES = {
    "codeguru": (
        "import time; t = time.perf_counter(); "
        "from codeguru_profiler_agent import with_lambda_profiler; "
        "print((time.perf_counter() - t) * 1000)"
    ),
}


def _run(command: List[str], env: Dict[str, str]) -> float:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {done.stderr.strip()[-500:]}")
    return float(done.stdout.strip().splitlines()[-1])


def measure(runs: int) -> Dict[str, List[float]]:
    results: Dict[str, List[float]] = {"greenflame": [], "greenflame, no bytecode": [], "codeguru": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_layer(work / "layer.zip")
        extract_layer(work / "layer.zip", work / "opt")
        shutil.copytree(work / "opt", work / "opt-source")
        for cache in (work / "opt-source").rglob("__pycache__"):
            shutil.rmtree(cache)
        venv.create(work / "venv", with_pip=False)
        bare = str(work / "venv" / "bin" / "python")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "GREENFLAME_"))}
        env.update(AWS_LAMBDA_FUNCTION_NAME="bench", GREENFLAME_SERVER="http://127.0.0.1:9", TMPDIR=tmp)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # /opt is read-only on Lambda: nothing is cached
        for _ in range(runs):
            results["greenflame"].append(_run([bare, "-c", GREENFLAME, str(work / "opt" / "python")], env))
            source = str(work / "opt-source" / "python")
            results["greenflame, no bytecode"].append(_run([bare, "-c", GREENFLAME, source], env))
            results["codeguru"].append(_run([sys.executable, "-c", PROBES["codeguru"]], env))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results = measure(args.runs)
    print(
        json.dumps(
            {
                name: {
                    "median_ms": round(statistics.median(v), 2),
                    "quartiles_ms": [round(q, 2) for q in statistics.quantiles(v, n=4)],
                    "min_ms": round(min(v), 2),
                    "max_ms": round(max(v), 2),
                    "runs": len(v),
                }
                for name, v in results.items()
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
