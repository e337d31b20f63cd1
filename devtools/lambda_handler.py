"""What ``greenflame lambda invoke`` is told and what it prints: the handler spec, the event, the run's figures.

The runner itself is :mod:`greenflame.devtools.lambda_invoke` (the function runs on the local
Lambda runtime of :mod:`greenflame.devtools.lambda_runtime`, under the real runtime client).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
from dataclasses import dataclass, field
from typing import List, Set, Tuple

from greenflame.agent.aws_lambda import normalize_architecture
from greenflame.analyzer.errors import UserError

__all__ = [
    "HandlerSpec",
    "RunStats",
    "function_arn",
    "load_event",
    "parse_handler_spec",
    "show_error",
    "show_progress",
    "summary_line",
]

PROGRESS_EVERY = 100
MAX_ERRORS_SHOWN = 5
ACCOUNT_ID = "000000000000"


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
        raise UserError(usage)
    module = module.replace("/", ".")
    parts = module.split(".")
    if not function.isidentifier() or not all(part.isidentifier() for part in parts):
        raise UserError(usage)
    return HandlerSpec(module, function)


# -- the event ----------------------------------------------------------------


def load_event(text: str) -> str:
    """The event as JSON text, from ``text`` itself or ``@FILE``; checked to be valid JSON."""
    source = "--event"
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise UserError(f"cannot read the event file {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise UserError(f"the event file {path} is not UTF-8 text") from None
        source = path
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    return text


def function_arn(region: str, name: str) -> str:
    """The ARN a local function gets, under a placeholder account id."""
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"


# -- running ----------------------------------------------------------------


@dataclass
class RunStats:
    """What the invocations did: durations (ms, as seen from outside) and the errors."""

    durations_ms: List[float] = field(default_factory=list)
    errors: int = 0
    shown: Set[Tuple[str, str]] = field(default_factory=set)
    init_ms: float = 0.0
    cold_starts: int = 0
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


def show_progress(stats: RunStats, total: int) -> None:
    done = len(stats.durations_ms)
    if done % PROGRESS_EVERY == 0 and done < total and sys.stderr.isatty():
        median = statistics.median(stats.durations_ms)
        print(f"greenflame: {done}/{total} invocations, {stats.errors} errors, median {median:.2f} ms", file=sys.stderr)


def _resets(stats: RunStats) -> str:
    """`` (N cold starts)`` when the sandbox was reset (timeouts, crashes), else nothing."""
    return f" ({stats.cold_starts} cold starts)" if stats.cold_starts > 1 else ""


def summary_line(spec: HandlerSpec, stats: RunStats, memory_mb: int, arch: str) -> str:
    count = len(stats.durations_ms)
    median = f"{statistics.median(stats.durations_ms):.2f} ms" if count else "n/a"
    machine = platform.machine()
    ran_on = "" if arch == normalize_architecture(machine) else f", ran on {machine}"
    return (
        f"greenflame: {spec.lambda_handler}: {count} invocations, {stats.errors} errors, "
        f"median duration {median}, init duration {stats.init_ms:.1f} ms{_resets(stats)}, "
        f"memory size {memory_mb} MB, {arch}{ran_on}"
    )
