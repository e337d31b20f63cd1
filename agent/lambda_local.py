"""``greenflame lambda invoke``: run a Lambda handler N times on this machine, as Lambda would.

The runner sets Lambda's environment variables, starts the agent, imports the handler's module
under ``lambda_phase=init`` (the cold start), then calls the handler, wrapped by
:func:`greenflame.agent.aws_lambda.profile_handler`, once per invocation with the event and a
context object shaped like Lambda's. ``--arch`` only labels the profile: the code runs on this
machine, whose architecture is recorded beside the requested one.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import statistics
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from . import flush, start, stop
from .aws_lambda import (
    ENV_ARCHITECTURE,
    init_phase,
    is_profiled,
    normalize_architecture,
    profile_handler,
    start_options,
)
from .config import ENV_PREFIX, Config, ConfigError
from .exporters import FileExporter, HttpExporter

__all__ = ["HandlerSpec", "InvokeError", "LambdaContext", "invoke", "load_event", "parse_handler_spec"]

#: Lambda's default timeout for a new function; only get_remaining_time_in_millis() uses it.
DEFAULT_TIMEOUT_MS = 3000
PROGRESS_EVERY = 100
MAX_ERRORS_SHOWN = 5
ACCOUNT_ID = "000000000000"


class InvokeError(ConfigError):
    """A mistake in the command (handler, event, options): the CLI prints it as one line."""


def _user_error(message: str) -> InvokeError:
    return InvokeError(message)


# -- the handler ------------------------------------------------------------


@dataclass(frozen=True)
class HandlerSpec:
    """Where the handler lives: ``module`` (dotted) and ``function`` (an attribute name)."""

    module: str
    function: str

    @property
    def lambda_handler(self) -> str:
        """The spec in Lambda's ``_HANDLER`` form, ``module.function``."""
        return f"{self.module}.{self.function}"

    @property
    def function_name(self) -> str:
        """The Lambda function name used locally: the module's last component."""
        return self.module.rsplit(".", 1)[-1]


def parse_handler_spec(text: str) -> HandlerSpec:
    """Parse ``module:function``, or Lambda's ``module.function`` (``dir/module.function`` too)."""
    usage = f"bad handler {text!r}: expected MODULE:FUNCTION or MODULE.FUNCTION, e.g. app.lambda_handler"
    spec = text.strip()
    if ":" in spec:
        module, _, function = spec.partition(":")
    elif "." in spec:
        module, _, function = spec.rpartition(".")
    else:
        raise _user_error(usage)
    module = module.replace("/", ".")
    parts = module.split(".")
    if not function.isidentifier() or not all(part.isidentifier() for part in parts):
        raise _user_error(usage)
    return HandlerSpec(module, function)


class InitError(Exception):
    """The function's module raised while loading: reported like Lambda's init error."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _module_missing(error: ModuleNotFoundError, module: str) -> bool:
    """Whether ``error`` is about ``module`` itself (or a parent package), not one it imports."""
    missing = error.name or ""
    return module == missing or module.startswith(missing + ".")


def import_handler_module(spec: HandlerSpec) -> Any:
    """Import the handler's module (under ``lambda_phase=init``), translating failures."""
    try:
        with init_phase():
            return importlib.import_module(spec.module)
    except ModuleNotFoundError as error:
        if _module_missing(error, spec.module):
            raise _user_error(
                f"cannot find module {spec.module!r} for handler {spec.lambda_handler!r} "
                f"(looked in {os.getcwd()} and the Python path)"
            ) from None
        raise InitError("Runtime.ImportModuleError", f"Unable to import module '{spec.module}': {error}") from None
    except ImportError as error:
        raise InitError("Runtime.ImportModuleError", f"Unable to import module '{spec.module}': {error}") from None
    except SyntaxError as error:
        raise InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{spec.module}': {error}") from None
    except Exception as error:
        raise InitError(type(error).__name__, str(error)) from None


def resolve_handler(module: Any, spec: HandlerSpec) -> Any:
    """The handler of an imported module; a one-line error (the runtime's words) if absent.

    A handler that is not callable is returned as is: Lambda then fails every invocation with a
    ``TypeError``, and so does this runner.
    """
    try:
        return getattr(module, spec.function)
    except AttributeError:
        where = getattr(module, "__file__", None) or spec.module
        message = f"Handler '{spec.function}' missing on module '{spec.module}' (Runtime.HandlerNotFound, {where})"
        raise _user_error(message) from None


# -- the event and the context ------------------------------------------------


def load_event(text: str) -> str:
    """The event as JSON text, from ``text`` itself or ``@FILE``; checked to be valid JSON."""
    source = "--event"
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise _user_error(f"cannot read the event file {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise _user_error(f"the event file {path} is not UTF-8 text") from None
        source = path
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise _user_error(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    return text


class LambdaContext:
    """The context object a Python Lambda handler receives, with the same attribute names."""

    def __init__(self, function_arn: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = function_arn
        # A string, as in the real runtime (it is read from the environment there too).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (simulated) timeout; never below zero."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_arn(region: str, name: str) -> str:
    """The ARN a local function gets, under a placeholder account id."""
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"


def lambda_environment(spec: HandlerSpec, memory_mb: int, region: str, arch: str) -> Dict[str, str]:
    """The environment variables Lambda sets for this function (those a handler may read)."""
    name = spec.function_name
    today = time.strftime("%Y/%m/%d", time.gmtime())
    return {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{today}/[$LATEST]{uuid.uuid4().hex}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
        "_HANDLER": spec.lambda_handler,
        "LAMBDA_TASK_ROOT": os.getcwd(),
        # Lambda has no instance metadata service; without this, a boto3 client created with no
        # credentials configured would probe it over the network on every credential lookup.
        "AWS_EC2_METADATA_DISABLED": "true",
        ENV_ARCHITECTURE: arch,
    }


@contextmanager
def _lambda_process(env: Dict[str, str]) -> Iterator[None]:
    """Lambda's environment variables and task root on ``sys.path``, restored afterwards."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    task_root = env["LAMBDA_TASK_ROOT"]
    added = task_root not in sys.path
    if added:
        sys.path.insert(0, task_root)
    try:
        yield
    finally:
        if added and task_root in sys.path:
            sys.path.remove(task_root)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- running ----------------------------------------------------------------


@dataclass
class RunStats:
    """What the invocations did: durations (ms, as seen from outside) and the errors."""

    durations_ms: List[float] = field(default_factory=list)
    errors: int = 0
    shown: Set[Tuple[str, str]] = field(default_factory=set)
    init_ms: float = 0.0
    interrupted: bool = False


def show_error(stats: RunStats, error_type: str, message: str, request_id: str) -> None:
    """Print an error as Lambda reports it, each distinct one once, at most a few."""
    key = (error_type, message)
    if key in stats.shown or len(stats.shown) >= MAX_ERRORS_SHOWN:
        return
    stats.shown.add(key)
    label = f"request {request_id}" if request_id else "init"
    print(f"greenflame: invocation failed ({label}):", file=sys.stderr)
    print(f"  errorMessage: {json.dumps(message)}", file=sys.stderr)
    print(f"  errorType: {json.dumps(error_type)}", file=sys.stderr)


def _call(handler: Callable[..., Any], event_text: str, arn: str, stats: RunStats) -> None:
    context = LambdaContext(arn)
    event = json.loads(event_text)  # a fresh event per call, as Lambda deserialises each one
    began = time.perf_counter()
    try:
        handler(event, context)
    except Exception as error:
        stats.errors += 1
        show_error(stats, type(error).__name__, str(error), context.aws_request_id)
    finally:
        stats.durations_ms.append((time.perf_counter() - began) * 1000.0)


def show_progress(stats: RunStats, total: int) -> None:
    done = len(stats.durations_ms)
    if done % PROGRESS_EVERY == 0 and done < total and sys.stderr.isatty():
        median = statistics.median(stats.durations_ms)
        print(f"greenflame: {done}/{total} invocations, {stats.errors} errors, median {median:.2f} ms", file=sys.stderr)


def _run(handler: Callable[..., Any], event_text: str, invocations: int, arn: str, stats: RunStats) -> None:
    try:
        for _ in range(invocations):
            _call(handler, event_text, arn, stats)
            show_progress(stats, invocations)
    except KeyboardInterrupt:
        stats.interrupted = True


def summary_line(spec: HandlerSpec, stats: RunStats, memory_mb: int, arch: str) -> str:
    count = len(stats.durations_ms)
    median = f"{statistics.median(stats.durations_ms):.2f} ms" if count else "n/a"
    machine = platform.machine()
    ran_on = "" if arch == normalize_architecture(machine) else f", ran on {machine}"
    return (
        f"greenflame: {spec.lambda_handler}: {count} invocations, {stats.errors} errors, "
        f"median duration {median}, init duration {stats.init_ms:.1f} ms, "
        f"memory size {memory_mb} MB, {arch}{ran_on}"
    )


#: One run writes one file: the runner flushes at its end rather than every interval.
LOCAL_REPORT_INTERVAL_S = 86400.0


def agent_options(out: Optional[str], server: Optional[str], env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The options the runner starts the agent with.

    Without ``--out`` or ``--server`` (nor ``GREENFLAME_OUT``/``GREENFLAME_SERVER``) the profile
    goes to ``<group>.json`` in the current directory.
    """
    environ = os.environ if env is None else env
    options: Dict[str, Any] = start_options({}, environ)
    if server:
        options["server"] = server
        key = environ.get(ENV_PREFIX + "INGEST_KEY")
        if key:
            options["ingest_key"] = key
    elif out:
        options["out"] = out
    elif not environ.get(ENV_PREFIX + "OUT") and not environ.get(ENV_PREFIX + "SERVER"):
        options["out"] = f"{options.get('group') or 'aws-lambda'}.json"
    if not server and ENV_PREFIX + "REPORT_INTERVAL_S" not in environ:
        options["report_interval_s"] = LOCAL_REPORT_INTERVAL_S
    Config.from_env(environ, **options)  # a bad GREENFLAME_* value: one line, before any work
    return options


def _destinations(profiler: Any) -> List[str]:
    """Where the profiler's reports went: files written, servers."""
    places: List[str] = []
    for exporter in getattr(profiler, "exporters", []):
        if isinstance(exporter, FileExporter):
            places.extend(exporter.written())
        elif isinstance(exporter, HttpExporter):
            places.append(exporter.url)
    return places


def _load(spec: HandlerSpec, stats: RunStats) -> Optional[Callable[..., Any]]:
    """Import and resolve the handler, timing the init; None (error shown) if init failed."""
    began = time.perf_counter()
    try:
        module = import_handler_module(spec)
    except InitError as error:
        stats.errors += 1
        show_error(stats, error.error_type, error.message, "")
        return None
    finally:
        stats.init_ms = (time.perf_counter() - began) * 1000.0
    handler = resolve_handler(module, spec)
    return handler if is_profiled(handler) or not callable(handler) else profile_handler(handler)


def invoke(
    handler_spec: str,
    invocations: int = 1,
    event: str = "{}",
    memory_mb: int = 128,
    arch: str = "x86_64",
    region: str = "us-east-1",
    out: Optional[str] = None,
    server: Optional[str] = None,
) -> int:
    """Run ``handler_spec`` ``invocations`` times with the agent; 0, or 1 if any call raised."""
    spec = parse_handler_spec(handler_spec)
    event_text = load_event(event)
    if invocations < 1:
        raise _user_error(f"--invocations must be at least 1, got {invocations}")
    stats = RunStats()
    with _lambda_process(lambda_environment(spec, memory_mb, region, arch)):
        profiler = start(**agent_options(out, server))
        if profiler is None:
            print("greenflame: profiling is off (GREENFLAME_ENABLED): running without it", file=sys.stderr)
        try:
            handler = _load(spec, stats)
        except BaseException:
            stop(flush=False)  # a mistake in the command: no profile of a run that did not happen
            raise
        try:
            if handler is not None:
                _run(handler, event_text, invocations, function_arn(region, spec.function_name), stats)
        finally:
            delivered = flush() if profiler is not None else False
            stop(flush=False)
    print(summary_line(spec, stats, memory_mb, arch), file=sys.stderr)
    if stats.interrupted:
        raise KeyboardInterrupt
    if profiler is None:
        return 1 if stats.errors else 0
    if not delivered:
        print("greenflame: the profile could not be delivered (see the messages above)", file=sys.stderr)
        return 1
    print(f"greenflame: profile: {', '.join(_destinations(profiler)) or 'nothing to report'}", file=sys.stderr)
    return 1 if stats.errors else 0
