"""Sampling bias at GIL hand-overs: where do samples land when the profiled code releases the GIL?

    python bias.py --seconds 5

An in-process sampler needs the GIL to read stacks, so it can only look when the running thread
lets go of it: at a call that releases the GIL (a socket or file write, a lock wait) or when the
interpreter's switch interval (5 ms) forces a hand-over, which bytecode honours between
instructions but C code running without a break (the C JSON encoder, ``sorted``) does not.
Each scenario loops ``work`` (about ``--work-ms`` of CPU) then ``write_out`` (an ``os.write`` of
a few bytes to ``/dev/null``: almost no CPU, but it releases the GIL), measures the true CPU
split with the thread's own clock, and prints it beside the split of the agent's samples.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Callable, Dict

import greenflame.agent as agent

PAYLOAD = [{"id": i, "name": f"item {i}", "tags": ["a", "b", "c"], "price": i * 1.5} for i in range(2000)]


def c_encode(_: float) -> None:
    json.dumps(PAYLOAD)  # the C encoder: no GIL hand-over until it returns


def python_loop(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def run(name: str, work: Callable[[float], None], seconds: float, work_s: float) -> Dict[str, object]:
    out = os.path.join(tempfile.mkdtemp(), "p.json")
    devnull = os.open(os.devnull, os.O_WRONLY)
    agent.start(out=out, report_interval_s=3600, group="bias", cpu_budget=1.0)
    spent = {"work": 0.0, "write_out": 0.0}

    def write_out() -> None:
        os.write(devnull, b"HTTP/1.1 200 OK\r\n\r\n")

    end = time.monotonic() + seconds
    clock = time.thread_time
    while time.monotonic() < end:
        before = clock()
        work(work_s)
        middle = clock()
        write_out()
        spent["work"] += middle - before
        spent["write_out"] += clock() - middle
    agent.stop()
    os.close(devnull)
    with open(out) as handle:
        report = json.load(handle)
    frames = report["frames"]
    sampled = {"work": [0, 0], "write_out": [0, 0]}
    for sample in report["samples"]:
        names = [frames[i]["function"] for i in sample["stack"]]
        # By the caller in the stack, not the leaf: under c_encode the leaf is json's own code.
        key = "write_out" if any(n.endswith("write_out") for n in names) else None
        key = key or ("work" if any(work.__name__ in n for n in names) else None)
        if key is not None:
            sampled[key][0] += sample["values"][0]
            sampled[key][1] += sample["values"][1]
    total_cpu = spent["work"] + spent["write_out"]
    cpu_samples = sampled["work"][1] + sampled["write_out"][1]
    wall_samples = sampled["work"][0] + sampled["write_out"][0]
    return {
        "scenario": name,
        "true_write_out_cpu_share": round(spent["write_out"] / total_cpu, 4),
        "sampled_write_out_cpu_share": round(sampled["write_out"][1] / max(1, cpu_samples), 4),
        "sampled_write_out_wall_share": round(sampled["write_out"][0] / max(1, wall_samples), 4),
        "cpu_samples": cpu_samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--work-ms", type=float, default=2.0, help="CPU per iteration of the Python loop")
    args = parser.parse_args()
    for name, work in (
        ("C code holding the GIL, then a write", c_encode),
        ("Python bytecode, then a write", python_loop),
    ):
        print(json.dumps(run(name, work, args.seconds, args.work_ms / 1000)))


if __name__ == "__main__":
    main()
