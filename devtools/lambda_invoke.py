"""``greenflame lambda invoke`` on the local Lambda runtime (:mod:`greenflame.devtools.lambda_runtime`).

The handler runs in its own process under the real runtime client (``awslambdaric``), started
through the greenflame layer's exec wrapper exactly as a deployed function with
``AWS_LAMBDA_EXEC_WRAPPER=/opt/greenflame-wrapper``: frozen between invocations, killed on
timeout (``--timeout``, 3 s by default as on Lambda), a cold start again after a timeout or a
crash. The last invocation asks the agent for a report through the client context, so every
invocation is in the profile.

With ``--server`` the function ships to that server itself; otherwise it ships to the local
runtime, which merges what it received (each report once, by its Idempotency-Key) into one file:
``--out FILE``, or ``<group>.json``. The runtime client ``awslambdaric`` and the analyzer's
``protobuf`` (to write the file) come with the ``lambda`` extra (awslambdaric: Linux only);
without them the command says so, before any work.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from greenflame.agent.aws_lambda import ENV_ARCHITECTURE, ENV_LOCAL_RUNNER, FLUSH_KEY, default_group
from greenflame.agent.config import ENV_PREFIX, Config
from greenflame.agent.lambda_outbox import OutboxExporter, default_outbox_dir
from greenflame.analyzer.errors import UserError

from .lambda_handler import (
    HandlerSpec,
    RunStats,
    function_arn,
    load_event,
    parse_handler_spec,
    show_error,
    show_progress,
    summary_line,
)
from .lambda_layer import WRAPPER_PATH, extract_layer, write_layer
from .lambda_runtime import FunctionConfig, InvokeResult, LocalLambda

__all__ = ["invoke", "require", "runtime_available"]

DEFAULT_TIMEOUT_S = 3.0
#: Time allowed after the run for reports the function could not deliver within its budget.
DRAIN_TIMEOUT_S = 10.0
#: Faults that mean the command named the handler wrongly: a one-line usage error, exit status 2.
_COMMAND_FAULTS = ("Runtime.HandlerNotFound", "Runtime.MalformedHandlerName", "Runtime.BuiltInModuleConflict")


def runtime_available() -> bool:
    """Whether the real runtime client can run here (``awslambdaric`` installed, POSIX signals)."""
    return os.name == "posix" and importlib.util.find_spec("awslambdaric") is not None


def require(module: str) -> None:
    """Raise :class:`ModuleNotFoundError` (named) now when ``module`` is not installed, before any work.

    The command line names the PyPI package and the extra that brings it.
    """
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    if found is None:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def _check_module(spec: HandlerSpec, task_root: str) -> None:
    """A one-line error when the handler's module cannot be found (before starting anything)."""
    sys.path.insert(0, task_root)
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        found = None
    finally:
        sys.path.remove(task_root)
    if found is None:
        raise UserError(
            f"cannot find module {spec.module!r} for handler {spec.lambda_handler!r} "
            f"(looked in {task_root} and the Python path)"
        )


def _function_environment(spec: HandlerSpec, arch: str, server: Optional[str], out_mode: bool) -> Dict[str, str]:
    env = {
        "AWS_LAMBDA_EXEC_WRAPPER": WRAPPER_PATH,
        ENV_ARCHITECTURE: arch,
        ENV_LOCAL_RUNNER: "greenflame lambda invoke",  # its back-to-back rate is never extrapolated
        # No instance metadata service locally: boto3 would probe it on every credential lookup.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if server:
        env[ENV_PREFIX + "SERVER"] = server
    if out_mode and ENV_PREFIX + "REPORT_INTERVAL_S" not in os.environ:
        env[ENV_PREFIX + "REPORT_INTERVAL_S"] = "86400"  # one report, at the last invocation
    return env


class _Run:
    """One ``lambda invoke`` run: the environment, the invocations, what became of the reports."""

    def __init__(self, spec: HandlerSpec, work: Path, memory_mb: int, region: str, arch: str, timeout_s: float) -> None:
        self.spec = spec
        self.work = work
        self.memory_mb, self.arch, self.timeout_s = memory_mb, arch, timeout_s
        self.arn = function_arn(region, spec.function_name)
        self.stats = RunStats()

    def function(self, server: Optional[str], out_mode: bool) -> LocalLambda:
        write_layer(self.work / "layer.zip")
        extract_layer(self.work / "layer.zip", self.work / "opt")
        config = FunctionConfig(
            handler=self.spec.lambda_handler,
            task_root=Path.cwd(),
            environment=_function_environment(self.spec, self.arch, server, out_mode),
            opt_dir=self.work / "opt",
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
            function_arn=self.arn,
        )
        function = LocalLambda(config, self.work / "environment")
        if not server:
            config.environment[ENV_PREFIX + "SERVER"] = f"http://{function.api.address}"
            config.environment.pop(ENV_PREFIX + "INGEST_KEY", None)
        return function

    def run(self, function: LocalLambda, event: Any, invocations: int) -> None:
        try:
            for number in range(invocations):
                last = number == invocations - 1
                result = function.invoke(event, {"custom": {FLUSH_KEY: "1"}} if last else None)
                if not self._record(result):
                    break
                show_progress(self.stats, invocations)
        except KeyboardInterrupt:
            self.stats.interrupted = True

    def _record(self, result: InvokeResult) -> bool:
        """Note one result; False when the init failed (nothing more can run)."""
        if result.init_duration_ms is not None or result.init_failed:
            self.stats.cold_starts += 1
        if result.init_duration_ms is not None:
            self.stats.init_ms = result.init_duration_ms
        if result.init_failed:
            if result.error_type in _COMMAND_FAULTS:
                raise UserError(f"{result.error_message} ({result.error_type})")
            self.stats.errors += 1
            show_error(self.stats, result.error_type, result.error_message, "")
            return False
        self.stats.durations_ms.append(result.duration_ms)
        if result.error is not None:
            self.stats.errors += 1
            show_error(self.stats, result.error_type, result.error_message, result.request_id)
        return True


def _drain(function: LocalLambda, server: str, group: str) -> bool:
    """Deliver what the function left in its outbox (cut off by its budget); True when nothing is left."""
    directory = default_outbox_dir(group, {"TMPDIR": str(function.tmp_dir)})
    key = os.environ.get(ENV_PREFIX + "INGEST_KEY")
    outbox = OutboxExporter(server, key, directory, "greenflame-lambda-invoke")
    return outbox.resend(time.monotonic() + DRAIN_TIMEOUT_S)


def _write_merged(reports: List[bytes], group: str, out: str) -> None:
    from greenflame.analyzer.formats import greenflame_json
    from greenflame.analyzer.model import merge

    merged = merge([greenflame_json.loads(report) for report in reports], group)
    data = greenflame_json.dumps(merged)
    if out.endswith(".gz"):
        import gzip

        data = gzip.compress(data, mtime=0)
    try:
        Path(out).write_bytes(data)
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror or error}") from None


def invoke(
    handler_spec: str,
    invocations: int = 1,
    event: str = "{}",
    memory_mb: int = 128,
    arch: str = "x86_64",
    region: str = "us-east-1",
    out: Optional[str] = None,
    server: Optional[str] = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> int:
    """Run ``handler_spec`` ``invocations`` times on the local runtime; 0, or 1 if any call failed.

    An invocation that runs past ``timeout_s`` fails as on Lambda (``Sandbox.Timedout``, "Task timed
    out after S seconds") and its sandbox is reset: the next invocation is a cold start.
    """
    if not runtime_available():
        raise UserError(
            "lambda invoke needs awslambdaric (the Lambda runtime client, Linux only), which is not installed; "
            "install it with: pip install 'greenflame[lambda]'"
        )
    if not server:
        require("google.protobuf")  # the merged profile is written through the analyzer's formats
    spec = parse_handler_spec(handler_spec)
    event_data = json.loads(load_event(event))
    _check_module(spec, os.getcwd())
    environ = dict(os.environ, AWS_LAMBDA_FUNCTION_NAME=spec.function_name)
    settings = Config.from_env(environ)  # a bad GREENFLAME_* value: one line, before any work
    group, enabled = settings.group or default_group(environ), settings.enabled
    out_path = None if server else os.path.abspath(out or os.environ.get(ENV_PREFIX + "OUT") or f"{group}.json")
    with tempfile.TemporaryDirectory(prefix="greenflame-lambda-") as work:
        run = _Run(spec, Path(work), memory_mb, region, arch, timeout_s)
        with run.function(server, out_path is not None) as function:
            run.run(function, event_data, invocations)
            target = server or f"http://{function.api.address}"
            delivered = _drain(function, target, group)
            reports = list(function.api.reports.values())
    return _finish(run, enabled, delivered, reports, group, out_path, server)


def _finish(
    run: _Run,
    enabled: bool,
    delivered: bool,
    reports: List[bytes],
    group: str,
    out_path: Optional[str],
    server: Optional[str],
) -> int:
    stats = run.stats
    print(summary_line(run.spec, stats, run.memory_mb, run.arch), file=sys.stderr)
    if stats.interrupted:
        raise KeyboardInterrupt
    failed = 1 if stats.errors else 0
    if not enabled:
        print("greenflame: profiling is off (GREENFLAME_ENABLED): ran without it", file=sys.stderr)
        return failed
    if not delivered:
        print("greenflame: the profile could not be delivered (see the messages above)", file=sys.stderr)
        return 1
    if out_path is not None:
        if not reports:
            print("greenflame: profile: nothing to report", file=sys.stderr)
            return failed
        _write_merged(reports, group, out_path)
    where = f"{server.rstrip('/')}/api/v1/ingest" if server else out_path
    print(f"greenflame: profile: {where}", file=sys.stderr)
    return failed
