"""Added cold-start time on the local Lambda runtime: init duration with and without the layer.

Each sample is a new execution environment of the same trivial function on
:mod:`greenflame.devtools.lambda_runtime` (the real ``awslambdaric`` client): its init duration, from
process start to the runtime's first ``next`` request, without the layer and then through the
layer's exec wrapper (shell wrapper, agent import and start, handler import), alternating.

    python benchmarks/lambda/cold_start_runtime.py --runs 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from greenflame.devtools.lambda_layer import WRAPPER_PATH, extract_layer, write_layer
from greenflame.devtools.lambda_runtime import FunctionConfig, LocalLambda


def init_ms(work: Path, wrapped: bool, number: int) -> float:
    env = {"GREENFLAME_SERVER": "http://127.0.0.1:9"}
    if wrapped:
        env["AWS_LAMBDA_EXEC_WRAPPER"] = WRAPPER_PATH
    config = FunctionConfig("app.handler", work / "task", env, opt_dir=work / "opt")
    with LocalLambda(config, work / f"env{number}") as function:
        result = function.invoke({})
    assert result.error is None and result.init_duration_ms is not None, result.error
    return result.init_duration_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    results: Dict[str, List[float]] = {"plain": [], "greenflame layer": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "task").mkdir()
        (work / "task" / "app.py").write_text("def handler(event, context):\n    return 'ok'\n")
        write_layer(work / "layer.zip")
        extract_layer(work / "layer.zip", work / "opt")
        for number in range(args.runs):
            results["plain"].append(init_ms(work, False, 2 * number))
            results["greenflame layer"].append(init_ms(work, True, 2 * number + 1))
    medians = {name: statistics.median(values) for name, values in results.items()}
    report: Dict[str, Any] = {
        name: {
            "median_ms": round(medians[name], 1),
            "quartiles_ms": [round(q, 1) for q in statistics.quantiles(v, n=4)],
            "min_ms": round(min(v), 1),
            "max_ms": round(max(v), 1),
            "runs": len(v),
        }
        for name, v in results.items()
    }
    report["added_median_ms"] = round(medians["greenflame layer"] - medians["plain"], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
