"""Soak: run a sample Lambda function many times under load and count the runs whose runtime crashed.

Each run is ``greenflame lambda invoke`` of ``sample_apps.<app>.lambda_handler`` (300 invocations by
default) against the local stand-in API, ``--parallel`` runs at a time, beside ``--busy`` processes
that spin, so that the agent's threads are preempted at awkward moments. A run fails when the CLI
exits non-zero, or when its profile holds no samples of the handler (an agent that did not run
cannot crash anything); its output is kept under ``--keep`` (with ``PYTHONFAULTHANDLER=1`` the
runtime's threads are dumped there when it crashes). Prints the failures over the runs.

    python benchmarks/lambda/crash_soak.py --runs 150 --parallel 3 --busy 1 [--app http_brown]

How a crash of the agent's frame reads was found and checked this way: docs/agent.md ("Reading
another thread's frames without crashing it").
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import List, Tuple


def start_stub() -> Tuple[subprocess.Popen[str], str]:
    """The stand-in HTTP API the sample apps call, and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "greenflame.sample_apps.stub_api"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def handler_samples(profile: Path) -> Tuple[int, str]:
    """The wall samples of the profile whose stacks hold ``lambda_handler`` (0 without a profile), and
    what the SIGPROF handler's timer counted (``metadata.signal_clock``: ``wall``, ``cpu`` or ``none``)."""
    try:
        raw = profile.read_bytes()
        report = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, ValueError):
        return 0, "none"
    frames = report["frames"]
    count = sum(
        sample["values"][0]
        for sample in report["samples"]
        if any(frames[i]["function"] == "lambda_handler" for i in sample["stack"])
    )
    return count, report["metadata"].get("signal_clock", "none")


def one_run(app: str, invocations: int, url: str, out: Path) -> Tuple[int, str]:
    """One ``greenflame lambda invoke`` run: its exit code and output."""
    env = dict(os.environ, SAMPLE_API_URL=url, PYTHONFAULTHANDLER="1")
    command = [
        sys.executable,
        "-m",
        "greenflame.cli",
        "lambda",
        "invoke",
        f"greenflame.sample_apps.{app}.lambda_handler",
    ]
    command += ["--invocations", str(invocations), "--out", str(out), "--event", "{}"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


def worker(
    app: str, invocations: int, url: str, runs: List[int], keep: Path, failures: List[str], clocks: List[str]
) -> None:
    """Take runs from ``runs`` until none are left; note each failure's output file and each run's clock."""
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    while runs:
        try:
            number = runs.pop()
        except IndexError:
            return
        profile = work / "profile.json"
        profile.unlink(missing_ok=True)
        code, output = one_run(app, invocations, url, profile)
        sampled, clock = handler_samples(profile)
        clocks.append(clock)
        if code == 0 and sampled == 0:
            code, output = -1, output + "\nno samples of the handler in the profile: the agent did not run\n"
        if code != 0:
            kept = keep / f"run-{number}.log"
            kept.write_text(output)
            failures.append(str(kept))
            print(f"run {number}: exit {code}, output in {kept}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", default="http_brown")
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--invocations", type=int, default=300)
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--busy", type=int, default=1, help="processes that spin beside the runs")
    parser.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "greenflame-soak")
    args = parser.parse_args()
    args.keep.mkdir(parents=True, exist_ok=True)
    stub, url = start_stub()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    runs = list(range(args.runs, 0, -1))
    failures: List[str] = []
    clocks: List[str] = []
    try:
        threads = [
            threading.Thread(target=worker, args=(args.app, args.invocations, url, runs, args.keep, failures, clocks))
            for _ in range(args.parallel)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for process in [stub, *busy]:
            process.terminate()
            process.wait(timeout=10)
    print(f"{args.app}: {len(failures)} failed runs of {args.runs} ({args.invocations} invocations each)")
    print("SIGPROF timer of the runs:", ", ".join(f"{clock} {clocks.count(clock)}" for clock in sorted(set(clocks))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
