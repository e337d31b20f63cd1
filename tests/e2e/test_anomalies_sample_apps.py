"""Acceptance: real profiles of a sample app, a regression switched on halfway, the right frame named.

The workload runs ``seed_green``'s Lambda handler in a loop under ``greenflame run`` (a real child
process with the agent inside, one profile per second). Halfway through, it starts doing what
``seed_brown`` does wrong: creating a boto3 client on every invocation, in ``create_client``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict

import pytest

from greenflame.cli.anomalies import anomalies_command

pytest.importorskip("boto3")

HALF_S = 7

WORKLOAD = '''
import sys
import time

import boto3

from greenflame.sample_apps import seed_green

half, marker = float(sys.argv[1]), sys.argv[2]


def create_client():
    """seed_brown's mistake: a new client on every invocation."""
    return boto3.client("dynamodb", region_name="us-east-1")


def handle(event, regressed):
    if regressed:
        create_client()
    return seed_green.lambda_handler(event, None)


start = time.monotonic()
switched = False
while time.monotonic() - start < 2 * half:
    regressed = time.monotonic() - start >= half
    if regressed and not switched:
        switched = True
        with open(marker, "w") as out:
            out.write(repr(time.time()))
    handle({"rawPath": "/"}, regressed)
'''


def _env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENFLAME_") and k != "PYTHONPATH"}
    env.update(GREENFLAME_REPORT_INTERVAL_S="1", AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1")
    # On a busy machine the default 1% CPU budget lowers the rate to a few samples a second; this
    # test is about the analyzer, so the agent may spend more and keep its 100 Hz.
    env["GREENFLAME_CPU_BUDGET"] = "0.25"
    return env


@pytest.mark.slow
def test_regression_switched_on_halfway_names_the_frame(tmp_path: Path) -> None:
    (tmp_path / "workload.py").write_text(WORKLOAD)
    marker = tmp_path / "switched-at"
    command = [sys.executable, "-m", "greenflame.cli", "run", "--group", "orders", "--out"]
    command += [str(tmp_path / "profile.json"), "--", sys.executable, "workload.py", str(HALF_S), str(marker)]
    done = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    files = sorted(str(p) for p in tmp_path.glob("profile*.json"))
    assert len(files) >= HALF_S  # about one per second

    anomalies = json.loads(anomalies_command(files, "json"))["anomalies"]
    assert [a["frame"] for a in anomalies] == ["workload.create_client"]
    found = anomalies[0]
    assert "boto3.client" in found["related_frames"]
    switched_at = float(marker.read_text())
    start = datetime.strptime(found["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    # The first regressed window may begin up to a second before the switch.
    assert switched_at - 2 <= start <= switched_at + 3
    assert found["observed"] - found["baseline"] > 0.2
    assert found["reason"].startswith("workload.create_client went from 0.0% to ")
