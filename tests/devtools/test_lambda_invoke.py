"""``greenflame lambda invoke`` as a real subprocess, on the seed's sample apps and on failing handlers."""

from __future__ import annotations

import json
import os
import platform
import pty
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from support.agent import IngestServer
from support.server import server_command

pytest.importorskip("boto3")

BROWN = "greenflame.sample_apps.seed_brown.lambda_handler"
GREEN = "greenflame.sample_apps.seed_green.lambda_handler"


def greenflame(*args: str, cwd: Path, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run the ``greenflame`` command beside this interpreter."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENFLAME_", "AWS_"))}
    full_env.update(env or {})
    return subprocess.run(server_command(*args), cwd=cwd, env=full_env, capture_output=True, text=True, timeout=180)


def stacks(report: Dict[str, Any]) -> Iterator[Tuple[List[Dict[str, Any]], Dict[str, str], int]]:
    """(frames root first, labels, wall count) for every sample."""
    frames = report["frames"]
    for sample in report["samples"]:
        yield [frames[i] for i in sample["stack"]], sample.get("labels", {}), sample["values"][0]


def is_client_creation(frame: Dict[str, Any]) -> bool:
    return frame["function"] == "client" and frame["file"].replace("\\", "/").endswith("boto3/__init__.py")


def client_creation_samples(report: Dict[str, Any], app: str) -> Dict[Tuple[Optional[str], bool], int]:
    """Samples inside ``boto3.client``, by (lambda_phase, whether under ``app``'s lambda_handler)."""
    found: Dict[Tuple[Optional[str], bool], int] = {}
    for frames, labels, count in stacks(report):
        positions = [i for i, frame in enumerate(frames) if is_client_creation(frame)]
        if not positions:
            continue
        handler = [
            i
            for i, frame in enumerate(frames)
            if frame["function"] == "lambda_handler" and frame["file"].endswith(f"{app}.py")
        ]
        key = (labels.get("lambda_phase"), bool(handler) and handler[0] < positions[0])
        found[key] = found.get(key, 0) + count
    return found


def test_brown_creates_the_client_in_the_handler_on_every_invocation(tmp_path: Path) -> None:
    result = greenflame("lambda", "invoke", BROWN, "--invocations", "200", "--out", "brown.json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Hello World") == 200  # the handler's own output, untouched
    report = json.loads((tmp_path / "brown.json").read_text())
    assert report["group"] == "aws-lambda-seed_brown"
    found = client_creation_samples(report, "seed_brown")
    assert found.get(("invoke", True), 0) > 0, found
    assert found.get(("invoke", True), 0) > sum(found.values()) / 2  # mostly per invocation, not at init
    invocations = report["metadata"]["invocations"]
    assert (invocations["count"], invocations["cold_starts"]) == (200, 1)
    assert report["metadata"]["lambda"]["function_arn"] == ("arn:aws:lambda:us-east-1:000000000000:function:seed_brown")
    summary = result.stderr.strip().splitlines()
    assert "200 invocations, 0 errors, median duration" in summary[-2]
    assert summary[-1] == f"greenflame: profile: {tmp_path / 'brown.json'}"


def test_green_creates_the_client_only_at_init(tmp_path: Path) -> None:
    result = greenflame(
        "lambda",
        "invoke",
        GREEN,
        "--invocations",
        "200",
        "--arch",
        "arm64",
        "--memory-mb",
        "512",
        "--region",
        "eu-west-1",
        "--out",
        "green.json",
        cwd=tmp_path,
        env={"GREENFLAME_RATE_HZ": "250"},  # denser samples of the short init phase
    )

    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "green.json").read_text())
    found = client_creation_samples(report, "seed_green")
    assert found and set(found) == {("init", False)}, found
    facts = report["metadata"]["lambda"]
    machine = "arm64" if platform.machine().lower() in ("aarch64", "arm64") else platform.machine().lower()
    assert (facts["architecture"], facts["host_architecture"]) == ("arm64", machine)
    assert (facts["memory_size_mb"], facts["region"]) == (512, "eu-west-1")
    assert facts["handler"] == GREEN
    assert facts["runtime"] == f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}"


HANDLERS = """
import json
import os

def echo(event, context):
    with open(event["record"], "w") as handle:
        json.dump({
            "event": event,
            "request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "arn": context.invoked_function_arn,
            "memory": context.memory_limit_in_mb,
            "log_group": context.log_group_name,
            "log_stream": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "handler_env": os.environ["_HANDLER"],
            "region": os.environ["AWS_DEFAULT_REGION"],
        }, handle)
    return "ok"

def hello(event, context):
    return "Hello World"

def fail(event, context):
    raise ValueError("card declined")

CALLS_IN_THIS_PROCESS = []

# Sleeps past the timeout on the sandbox's first call only (a marker in /tmp outlives a reset).
def slow_once(event, context):
    CALLS_IN_THIS_PROCESS.append(context.aws_request_id)
    marker = os.path.join(os.environ["TMPDIR"], "slept")
    if not os.path.exists(marker):
        open(marker, "w").close()
        import time
        time.sleep(30)
    with open(event["record"], "a") as handle:
        handle.write(json.dumps({"pid": os.getpid(), "calls": len(CALLS_IN_THIS_PROCESS)}) + "\\n")
    return "ok"

NOT_A_FUNCTION = 3
"""


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    """A directory holding a handler module, as Lambda's task root."""
    (tmp_path / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    (tmp_path / "broken_init.py").write_text("raise RuntimeError('no table name configured')\n")
    (tmp_path / "needs_dep.py").write_text("import greenflame_no_such_dependency\n")
    return tmp_path


def test_event_file_and_context_shaped_like_lambdas(task_root: Path) -> None:
    record = task_root / "record.json"
    (task_root / "event.json").write_text(json.dumps({"record": str(record), "rawPath": "/pay"}))

    result = greenflame("lambda", "invoke", "handlers.echo", "--event", "@event.json", "--out", "p.json", cwd=task_root)

    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert seen["event"]["rawPath"] == "/pay"
    assert seen["function_name"] == "handlers" and seen["function_version"] == "$LATEST"
    assert seen["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:handlers"
    assert seen["memory"] == "128" and seen["log_group"] == "/aws/lambda/handlers"
    assert "[$LATEST]" in seen["log_stream"] and len(seen["request_id"]) == 36
    assert 0 < seen["remaining_ms"] <= 3000
    assert (seen["task_root"], seen["handler_env"], seen["region"]) == (str(task_root), "handlers.echo", "us-east-1")


def test_server_gets_the_profile_with_the_ingest_key(task_root: Path, ingest_server: IngestServer) -> None:
    result = greenflame(
        "lambda",
        "invoke",
        "handlers:hello",
        "--invocations",
        "5",
        "--server",
        ingest_server.url,
        cwd=task_root,
        env={"GREENFLAME_INGEST_KEY": "key-123"},
    )

    assert result.returncode == 0, result.stderr
    (request,) = ingest_server.received
    assert request.headers["Authorization"] == "Bearer key-123"
    report = request.report()
    assert report["group"] == "aws-lambda-handlers"
    assert report["metadata"]["invocations"]["count"] == 5
    assert result.stderr.strip().splitlines()[-1] == f"greenflame: profile: {ingest_server.url}/api/v1/ingest"


def test_progress_lines_on_a_terminal(task_root: Path) -> None:
    leader, follower = pty.openpty()
    try:
        process = subprocess.run(
            server_command("lambda", "invoke", "handlers.hello", "--invocations", "250", "--out", "p.json"),
            cwd=task_root,
            stderr=follower,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        os.close(follower)
        follower = -1
        shown = read_all(leader)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert process.returncode == 0, shown
    progress = [line.split(",")[0] for line in shown.splitlines() if "/250 invocations" in line]
    assert progress == ["greenflame: 100/250 invocations", "greenflame: 200/250 invocations"], shown


def read_all(fd: int) -> str:
    """What the child wrote to the terminal (Linux reports EIO once the other side is closed)."""
    chunks: List[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_failing_handler_exits_1_with_lambdas_error_lines(task_root: Path) -> None:
    result = greenflame("lambda", "invoke", "handlers:fail", "--invocations", "3", "--out", "p.json", cwd=task_root)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count('errorMessage: "card declined"') == 1  # the same error is shown once
    assert result.stderr.count('errorType: "ValueError"') == 1
    assert "3 invocations, 3 errors" in result.stderr
    report = json.loads((task_root / "p.json").read_text())
    assert report["metadata"]["invocations"]["count"] == 3


def test_timeout_fails_the_invocation_as_lambda_does_and_resets_the_sandbox(task_root: Path) -> None:
    record = task_root / "calls.jsonl"
    event = json.dumps({"record": str(record)})
    result = greenflame(
        "lambda", "invoke", "handlers.slow_once", "--timeout", "1", "--invocations", "3", "--event", event,
        "--out", "p.json", cwd=task_root,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.count('errorType: "Sandbox.Timedout"') == 1
    assert "Error: Task timed out after 1.00 seconds" in result.stderr
    assert "3 invocations, 1 errors" in result.stderr and "(2 cold starts)" in result.stderr
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    # After the timeout a new process served the next calls: its first call, then its second.
    assert [call["calls"] for call in calls] == [1, 2] and calls[0]["pid"] == calls[1]["pid"]


@pytest.mark.parametrize("value", ["0", "901", "soon"])
def test_a_timeout_lambda_would_refuse_is_a_usage_error(task_root: Path, value: str) -> None:
    result = greenflame("lambda", "invoke", "handlers.hello", "--timeout", value, cwd=task_root)

    assert result.returncode == 2 and "--timeout" in result.stderr


def test_a_handler_that_is_not_a_function_fails_each_invocation_as_on_lambda(task_root: Path) -> None:
    result = greenflame("lambda", "invoke", "handlers.NOT_A_FUNCTION", "--invocations", "2", cwd=task_root)

    assert result.returncode == 1
    assert 'errorType: "TypeError"' in result.stderr and "'int' object is not callable" in result.stderr
    assert "2 invocations, 2 errors" in result.stderr


@pytest.mark.parametrize(
    ("module", "error_type", "message"),
    [
        ("broken_init", "RuntimeError", "no table name configured"),
        ("needs_dep", "Runtime.ImportModuleError", "Unable to import module 'needs_dep'"),
    ],
)
def test_an_init_error_exits_1_as_lambda_reports_it(
    task_root: Path, module: str, error_type: str, message: str
) -> None:
    result = greenflame("lambda", "invoke", f"{module}.handler", "--out", "p.json", cwd=task_root)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f'errorType: "{error_type}"' in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("handler", "extra", "expected"),
    [
        ("handlers", [], "bad handler 'handlers'"),
        ("handlers:not-valid", [], "bad handler"),
        ("no_such_module.handler", [], "cannot find module 'no_such_module'"),
        ("handlers.missing", [], "Handler 'missing' missing on module 'handlers' (Runtime.HandlerNotFound"),
        ("handlers.echo", ["--event", "{not json"], "--event is not valid JSON"),
        ("handlers.echo", ["--event", "@absent.json"], "cannot read the event file absent.json"),
    ],
)
def test_command_mistakes_are_one_line(task_root: Path, handler: str, extra: List[str], expected: str) -> None:
    result = greenflame("lambda", "invoke", handler, *extra, "--out", "p.json", cwd=task_root)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenflame: error: ") and expected in lines[0], result.stderr
    assert not (task_root / "p.json").exists()
