"""Time from a function's first invocation to its first recommendation visible in the server.

The seed's brown function runs on the local Lambda runtime through the layer's exec wrapper,
invoked every 60 ms (the seed post's curl loop), shipping to a real ``greenflame serve``; a
poller asks ``GET /api/v1/groups/<g>/recommendations`` every 0.5 s until
``aws-sdk-client-per-invocation`` shows.

    python benchmarks/lambda/time_to_recommendation.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List

import requests

from greenflame.devtools.lambda_layer import WRAPPER_PATH, extract_layer, write_layer
from greenflame.devtools.lambda_runtime import FunctionConfig, LocalLambda

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support.server import start_server  # noqa: E402 - the test suite's real-server helper

RULE = "aws-sdk-client-per-invocation"
PERIOD_S = 0.060
LIMIT_S = 300.0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = start_server(work / "data")
        try:
            key = server.create_group("aws-lambda-seed_brown")
            (work / "task").mkdir()
            shutil.copy(ROOT / "sample_apps" / "seed_brown.py", work / "task" / "seed_brown.py")
            write_layer(work / "layer.zip")
            extract_layer(work / "layer.zip", work / "opt")
            env = {
                "AWS_LAMBDA_EXEC_WRAPPER": WRAPPER_PATH,
                "GREENFLAME_SERVER": server.url,
                "GREENFLAME_INGEST_KEY": key,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
            arn = "arn:aws:lambda:us-east-1:123456789012:function:seed_brown"
            config = FunctionConfig("seed_brown.lambda_handler", work / "task", env, work / "opt", function_arn=arn)
            found: List[float] = []
            with LocalLambda(config, work / "env", subprocess.DEVNULL, subprocess.DEVNULL) as function:
                began = time.monotonic()
                poller = threading.Thread(target=poll, args=(server.url, began, found), daemon=True)
                poller.start()
                invocations = 0
                while not found and time.monotonic() - began < LIMIT_S:
                    function.invoke({"rawPath": "/"})
                    invocations += 1
                    time.sleep(max(0.0, began + invocations * PERIOD_S - time.monotonic()))
            print(
                json.dumps(
                    {
                        "seconds_to_first_recommendation": round(found[0], 1) if found else None,
                        "invocations": invocations,
                    },
                    indent=2,
                )
            )
        finally:
            server.stop()


def poll(url: str, began: float, found: List[float]) -> None:
    while time.monotonic() - began < LIMIT_S:
        response = requests.get(f"{url}/api/v1/groups/aws-lambda-seed_brown/recommendations", timeout=30)
        if response.status_code == 200 and any(f["rule"] == RULE for f in response.json()["recommendations"]):
            found.append(time.monotonic() - began)
            return
        time.sleep(0.5)


if __name__ == "__main__":
    main()
