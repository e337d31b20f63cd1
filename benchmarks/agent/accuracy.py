"""Sampling accuracy: a program splits its CPU between two functions in a known ratio; after
``--seconds`` of profiling, how far is the reported CPU split from the measured one?

    python accuracy.py --seconds 10 --share 0.7

The true split is measured with the thread's own CPU clock around each call, so it is exact
even on a noisy machine; the report's split is the ``cpu`` column of samples under each function.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Dict

import greenflame.agent as agent


def burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def heavy(slice_s: float) -> None:
    burn(slice_s)


def light(slice_s: float) -> None:
    burn(slice_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--share", type=float, default=0.7, help="share of CPU in heavy()")
    parser.add_argument("--slice-ms", type=float, default=3.0)
    parser.add_argument("--cpu-budget", type=float, default=0.01, help="the agent's CPU budget (1.0: never limited)")
    args = parser.parse_args()
    out = os.path.join(tempfile.mkdtemp(), "p.json")
    agent.start(out=out, report_interval_s=3600, group="accuracy", cpu_budget=args.cpu_budget)
    spent: Dict[str, float] = {"heavy": 0.0, "light": 0.0}
    slice_s = args.slice_ms / 1000
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        for function, share in ((heavy, args.share), (light, 1 - args.share)):
            before = time.thread_time()
            function(slice_s * share / 0.5)
            spent[function.__name__] += time.thread_time() - before
    agent.stop()
    with open(out) as handle:
        report = json.load(handle)
    sampled = {"heavy": 0, "light": 0}
    for sample in report["samples"]:
        names = {report["frames"][i]["function"] for i in sample["stack"]}
        for name in sampled:
            if name in names:
                sampled[name] += sample["values"][1]
    true_share = spent["heavy"] / (spent["heavy"] + spent["light"])
    reported = sampled["heavy"] / max(1, sampled["heavy"] + sampled["light"])
    print(
        json.dumps(
            {
                "true_heavy_share": round(true_share, 4),
                "reported_heavy_share": round(reported, 4),
                "error_points": round(100 * abs(reported - true_share), 2),
                "cpu_samples": sampled["heavy"] + sampled["light"],
                "sample_rate_hz": report["metadata"]["sample_rate_hz"],
            }
        )
    )


if __name__ == "__main__":
    main()
