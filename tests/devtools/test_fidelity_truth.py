"""The agent's CPU and wall views on programs whose truth is known (issue 14), through the real
command lines: ``greenflame run`` for a service, ``greenflame lambda invoke`` (the real awslambdaric
client on the local runtime) for Lambda handlers. Not timed: shares, with bounds wide enough for a
loaded machine and narrow enough that the faults they guard against (CPU charged to a sleep, waits
unseen, a cached client counted in every invocation) fail them.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

pytest.importorskip("awslambdaric")
pytestmark = pytest.mark.timeout(240)

BURN = """
import time

def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
"""

SERVICE = (
    BURN
    + """
def crunch():
    burn(0.02)

def nap():
    time.sleep(0.03)

def parse():
    burn(0.01)

started = time.perf_counter()
while time.perf_counter() - started < 3.0:
    crunch()
    nap()
    parse()
"""
)

HANDLERS = (
    BURN
    + """
import functools

def half_wait(event, context):
    burn(0.01)
    time.sleep(0.01)
    return "ok"

def make_client():
    burn(0.15)  # building an SDK client: slow, and done once
    return object()

@functools.lru_cache(maxsize=None)
def get_client():
    return make_client()

def cached_client(event, context):
    get_client()
    burn(0.005)
    return "ok"
"""
)


def clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENFLAME_")}
    env.update(extra)
    return env


def leaf_totals(report: Dict[str, Any], names: List[str]) -> Dict[str, List[int]]:
    """Per function of ``names``: wall, cpu and idle samples of the stacks it is the innermost of."""
    totals = {name: [0, 0, 0] for name in names}
    for sample in report["samples"]:
        stack = [report["frames"][i]["function"] for i in sample["stack"]]
        leaf = next((name for name in reversed(stack) if name in totals), None)
        if leaf is not None:
            for i in range(3):
                totals[leaf][i] += sample["values"][i]
    return totals


def invoke(tmp_path: Path, handler: str, invocations: int) -> Dict[str, Any]:
    (tmp_path / "fidelity_handlers.py").write_text(textwrap.dedent(HANDLERS))
    out = tmp_path / "profile.json.gz"
    command = [sys.executable, "-m", "greenflame.cli", "lambda", "invoke", f"fidelity_handlers.{handler}"]
    command += ["--invocations", str(invocations), "--out", str(out)]
    done = subprocess.run(command, env=clean_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report: Dict[str, Any] = json.loads(gzip.decompress(out.read_bytes()))
    return report


def test_a_sleeping_function_never_shows_in_the_cpu_view_and_fills_its_share_of_the_wall_view(
    tmp_path: Path,
) -> None:
    (tmp_path / "service.py").write_text(textwrap.dedent(SERVICE))
    out = tmp_path / "p.json"
    command = [sys.executable, "-m", "greenflame.cli", "run", "--out", str(out), "--", sys.executable, "service.py"]
    done = subprocess.run(command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    totals = leaf_totals(json.loads(out.read_text()), ["crunch", "nap", "parse"])
    cpu = sum(t[1] for t in totals.values())
    wall = sum(t[0] for t in totals.values())
    assert cpu >= 50 and wall >= 80, totals
    # Truth: nap uses under 1% of the CPU and 50% of the wall time (crunch 20 ms, nap 30, parse 10).
    assert totals["nap"][1] <= max(2, 0.03 * cpu), totals  # charged with CPU used before the sleep
    assert totals["nap"][2] >= totals["nap"][0] - 2, totals  # idle (but before the first disassembly)
    # Wall: 50% true; short runs under the CPU budget see 33-50% (benchmarks/agent/fidelity.py measures it).
    assert 0.25 <= totals["nap"][0] / wall <= 0.65, totals
    assert 0.55 <= totals["crunch"][1] / cpu <= 0.8, totals  # 2:1 against parse


def test_a_handler_that_waits_half_its_time_shows_half_idle(tmp_path: Path) -> None:
    report = invoke(tmp_path, "half_wait", 150)
    wall, cpu, idle = leaf_totals(report, ["half_wait"])["half_wait"]
    assert wall >= 100, (wall, cpu, idle)
    # Truth 0.5 each; 0.25 idle seen on a loaded machine (the CPU half stretches in wall time when
    # other processes take the CPU); the agent before issue 14 showed 0.08.
    assert 0.2 <= idle / wall <= 0.75 and 0.25 <= cpu / wall <= 0.75, (wall, cpu, idle)
    assert cpu + idle <= wall  # never both (a running sample may lack the CPU credit to count)


def test_a_lazily_cached_clients_creation_belongs_to_the_first_invocation_only(tmp_path: Path) -> None:
    report = invoke(tmp_path, "cached_client", 40)
    labels: List[Tuple[str, ...]] = []
    for sample in report["samples"]:
        stack = [report["frames"][i]["function"] for i in sample["stack"]]
        if "make_client" in stack:
            tags = sample.get("labels", {})
            labels += [(tags.get("lambda_phase", ""), tags.get("lambda_cold_start", ""))] * sample["values"][0]
    assert len(labels) >= 5, labels  # 150 ms of CPU: about 15 samples
    assert set(labels) == {("invoke", "true")}, labels
    invocations = report["metadata"]["invocations"]
    assert invocations["count"] == 40 and invocations["first_sequence"] == 1
