"""``profile_handler``: return values and exceptions pass through, invocations and Lambda facts recorded."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import pytest

import greenflame.agent as agent
from greenflame.agent import aws_lambda, profiler
from greenflame.agent.aws_lambda import profile_handler

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:checkout"


class Context:
    """The attributes of Lambda's context object that the decorator reads."""

    invoked_function_arn = ARN
    aws_request_id = "req-1"


@pytest.fixture(autouse=True)
def lambda_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh Lambda process: Lambda's variables, no cold start seen, no lambda metadata."""
    for name in ("GREENFLAME_GROUP", "GREENFLAME_OUT", "GREENFLAME_SERVER", "GREENFLAME_REPORT_INTERVAL_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(aws_lambda.ENV_ARCHITECTURE, raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "checkout")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.11")
    monkeypatch.setenv("_HANDLER", "app.lambda_handler")
    monkeypatch.setattr(aws_lambda, "_SESSION", aws_lambda._Session())
    yield
    agent.stop(flush=False)
    profiler._metadata.pop("lambda", None)  # process-wide: keep it out of other tests' reports


def written(out: Path) -> List[Dict[str, Any]]:
    """Every report file the agent wrote for ``out`` (``x.json``, ``x.1.json``, ...), in order."""
    files = [out, *sorted(out.parent.glob(out.stem + ".*" + out.suffix))]
    return [json.loads(path.read_text()) for path in files if path.exists()]


def test_return_value_is_the_handlers_own(tmp_path: Path) -> None:
    result = {"statusCode": 200}

    @profile_handler(out=str(tmp_path / "p.json"), report_interval_s=3600)
    def handler(event: Any, context: Any) -> Dict[str, int]:
        return result

    assert handler({}, Context()) is result
    assert handler.__name__ == "handler"


def test_handler_exception_is_reraised_unchanged(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    error = Boom("payment declined")

    @profile_handler(out=str(tmp_path / "p.json"), report_interval_s=3600)
    def handler(event: Any, context: Any) -> None:
        raise error

    with pytest.raises(Boom) as raised:
        handler({}, Context())
    assert raised.value is error
    assert raised.traceback[-1].name == "handler"
    agent.flush()
    (report,) = written(tmp_path / "p.json")
    assert report["metadata"]["invocations"]["count"] == 1  # a failed invocation is still one


def test_bare_decorator_starts_the_agent_with_the_lambda_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENFLAME_OUT", str(tmp_path / "p.json"))

    @profile_handler
    def handler(event: Any, context: Any) -> str:
        return "ok"

    assert agent.current() is None  # nothing starts before the first invocation
    assert handler({}, Context()) == "ok"
    running = agent.current()
    assert running is not None and running.group == "aws-lambda-checkout"


def test_group_from_options_or_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert aws_lambda.start_options({"group": "mine"})["group"] == "mine"
    monkeypatch.setenv("GREENFLAME_GROUP", "from-env")
    assert "group" not in aws_lambda.start_options({})


def test_metadata_invocations_and_one_cold_start(tmp_path: Path) -> None:
    out = tmp_path / "p.json"

    @profile_handler(out=str(out), report_interval_s=3600)
    def handler(event: Any, context: Any) -> int:
        return int(event["n"]) * 2

    assert [handler({"n": n}, Context()) for n in range(3)] == [0, 2, 4]
    assert agent.flush()
    (report,) = written(out)
    assert report["group"] == "aws-lambda-checkout"
    invocations = report["metadata"]["invocations"]
    assert invocations["count"] == 3
    assert invocations["cold_starts"] == 1
    assert len(invocations["durations_ms"]) == 3
    expected_arch = "arm64" if platform.machine().lower() in ("aarch64", "arm64") else platform.machine().lower()
    assert report["metadata"]["lambda"] == {
        "function_name": "checkout",
        "function_arn": ARN,
        "memory_size_mb": 512,
        "architecture": expected_arch,
        "host_architecture": expected_arch,
        "region": "eu-west-1",
        "runtime": "AWS_Lambda_python3.11",
        "handler": "app.lambda_handler",
    }


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def load_module() -> None:
    spin(0.2)


def busy_checkout(event: Any, context: Any) -> None:
    spin(0.02)


def phases_of(report: Dict[str, Any], function: str) -> Set[Optional[str]]:
    """The ``lambda_phase`` labels of the samples whose stack holds ``function``."""
    frames = report["frames"]
    return {
        sample.get("labels", {}).get("lambda_phase")
        for sample in report["samples"]
        if any(frames[i]["function"] == function for i in sample["stack"])
    }


def test_handler_samples_are_labelled_invoke_and_init_ones_init(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    handler = profile_handler(busy_checkout, out=str(out), report_interval_s=3600, rate_hz=500)
    handler({}, Context())  # starts the agent
    with aws_lambda.init_phase():
        load_module()
    for _ in range(10):
        handler({}, Context())
    agent.flush()
    (report,) = written(out)
    assert phases_of(report, "busy_checkout") == {"invoke"}
    assert phases_of(report, "load_module") == {"init"}


class FlushContext(Context):
    """A context whose client context asks the agent to report at the end of the invocation."""

    class client_context:
        custom = {aws_lambda.FLUSH_KEY: "1"}


def test_no_report_before_the_interval_unless_the_invoker_asks(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    handler = profile_handler(lambda event, context: "ok", out=str(out), report_interval_s=3600)

    handler({}, Context())
    assert written(out) == []  # the interval has not passed: nothing sent yet

    handler({}, FlushContext())
    (report,) = written(out)  # written on the calling thread, before the handler returned
    assert report["metadata"]["invocations"]["count"] == 2
    assert report["metadata"]["invocations"]["cold_starts"] == 1


def test_report_at_an_invocation_end_once_the_interval_passed(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    handler = profile_handler(lambda event, context: "ok", out=str(out), report_interval_s=0.1)

    handler({}, Context())
    time.sleep(0.15)
    handler({}, Context())

    reports = written(out)
    assert reports and reports[-1]["metadata"]["invocations"]["count"] >= 1
    assert sum(r["metadata"]["invocations"]["count"] for r in reports) == 2
    running = agent.current()
    assert running is not None and running.config.report_interval_s >= 86400  # its scheduler never fires


def test_a_profiled_handler_is_not_wrapped_twice() -> None:
    def handler(event: Any, context: Any) -> None:
        return None

    once = profile_handler(handler)
    assert profile_handler(once) is once
    assert aws_lambda.is_profiled(once) and not aws_lambda.is_profiled(handler)


@pytest.mark.agent_errors_expected
def test_agent_errors_never_reach_the_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("agent bug")

    monkeypatch.setattr(aws_lambda, "record_invocation", broken)
    from greenflame.agent import threadlabels

    monkeypatch.setattr(threadlabels, "push", broken)
    monkeypatch.setattr(aws_lambda, "set_metadata", broken)
    handler = profile_handler(lambda event, context: event["x"], out=str(tmp_path / "p.json"))

    assert handler({"x": 41}, Context()) == 41
    with pytest.raises(KeyError):
        handler({}, Context())
    from greenflame.agent import guard

    assert {record.where for record in guard.swallowed()} == {
        "lambda labels",
        "lambda metadata",
        "lambda invocation end",
    }


def test_switched_off_agent_still_runs_the_handler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GREENFLAME_ENABLED", "false")
    handler = profile_handler(lambda event, context: "ran", out=str(tmp_path / "p.json"))
    assert handler({}, Context()) == "ran"
    assert handler({}, Context()) == "ran"
    assert agent.current() is None and written(tmp_path / "p.json") == []


def test_architecture_override_and_names() -> None:
    assert aws_lambda.normalize_architecture("aarch64") == "arm64"
    assert aws_lambda.normalize_architecture("AMD64") == "x86_64"
    env = {"AWS_LAMBDA_FUNCTION_NAME": "f", aws_lambda.ENV_ARCHITECTURE: "arm64"}
    facts = aws_lambda.lambda_metadata(None, env)
    assert facts["architecture"] == "arm64"
    assert facts["host_architecture"] == aws_lambda.normalize_architecture(platform.machine())
    assert facts["function_arn"] == "" and facts["memory_size_mb"] is None
    assert aws_lambda.default_group({}) == "aws-lambda"


def test_outbox_is_known_empty_until_the_next_report(tmp_path: Path) -> None:
    import socket
    import time as clock

    from greenflame.agent.lambda_outbox import OutboxExporter

    with socket.socket() as probe:  # a port nothing listens on: every send is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outbox = OutboxExporter(f"http://127.0.0.1:{port}", None, str(tmp_path / "outbox"), "test")
    assert not outbox.empty  # a previous process may have left reports: look once
    assert outbox.resend(clock.monotonic() + 1.0)
    assert outbox.empty  # nothing to resend: invocation ends skip the check from now on

    outbox.export({"metadata": {}, "samples": []}, clock.monotonic() + 1.0)  # refused: kept for later
    assert not outbox.empty and len(outbox.pending()) == 1
    assert not outbox.resend(clock.monotonic() + 1.0)
    assert not outbox.empty and len(outbox.pending()) == 1
