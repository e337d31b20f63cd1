"""Profile AWS Lambda handlers with one decorator.

::

    from greenflame.agent.aws_lambda import profile_handler

    @profile_handler                      # or @profile_handler(group="checkout", server="https://...")
    def lambda_handler(event, context):
        ...

The agent starts on the first invocation (unless it already runs), the profiling group defaults
to ``aws-lambda-<function name>`` like CodeGuru Profiler's, and every report carries the
function's configuration (``metadata["lambda"]``) and its invocations (``metadata["invocations"]``).

Lambda freezes the process between invocations, so no background thread can be trusted to
deliver a report: the decorator flushes synchronously at the end of an invocation once
``report_interval_s`` has passed since the last report. The handler's own exceptions pass through
unchanged; the agent's errors are logged and never reach the handler.
"""

from __future__ import annotations

import functools
import os
import platform
import threading
import time
from types import TracebackType
from typing import Any, Callable, Dict, Mapping, Optional, Type, TypeVar, cast

from . import current, flush, labels, record_invocation, set_metadata, start
from .config import ENV_PREFIX
from .guard import guard, guarded

__all__ = ["ENV_ARCHITECTURE", "default_group", "init_phase", "lambda_metadata", "profile_handler"]

#: Overrides the architecture recorded in ``metadata["lambda"]`` (``x86_64`` or ``arm64``). Real
#: Lambda has no variable for it, so the agent reads the machine; ``greenflame lambda invoke``
#: sets this to the requested ``--arch`` while the code runs on the local machine.
ENV_ARCHITECTURE = "GREENFLAME_LAMBDA_ARCHITECTURE"

#: Attribute set on wrapped handlers, so that nothing wraps a handler twice.
WRAPPED_MARK = "__greenflame_profiled__"

Handler = TypeVar("Handler", bound=Callable[..., Any])


class _SafeLabels:
    """``labels(...)`` that never raises into user code nor swallows the user's exceptions."""

    def __init__(self, **values: str) -> None:
        self._values = values
        self._inner: Any = None

    def __enter__(self) -> _SafeLabels:
        with guard("lambda labels"):
            inner = labels(**self._values)
            inner.__enter__()
            self._inner = inner
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            with guard("lambda labels"):
                # The user's exception is not the agent's business: exit as if none happened.
                inner.__exit__(None, None, None)


def init_phase() -> _SafeLabels:
    """A context manager that labels samples of this thread ``lambda_phase=init``.

    Wrap the import of the function's module in it (the local runner and the layer's wrapper do).
    """
    return _SafeLabels(lambda_phase="init")


def _invoke_phase() -> _SafeLabels:
    return _SafeLabels(lambda_phase="invoke")


def normalize_architecture(machine: str) -> str:
    """Lambda's name for a machine type: ``aarch64`` -> ``arm64``, ``AMD64`` -> ``x86_64``."""
    name = machine.strip().lower()
    if name in ("aarch64", "arm64", "armv8", "armv8l"):
        return "arm64"
    if name in ("x86_64", "amd64", "x64"):
        return "x86_64"
    return name


def default_group(env: Optional[Mapping[str, str]] = None) -> str:
    """``aws-lambda-<function name>``, CodeGuru Profiler's default profiling group name."""
    environ = os.environ if env is None else env
    name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "").strip()
    return f"aws-lambda-{name}" if name else "aws-lambda"


def _memory_mb(text: str) -> Optional[int]:
    try:
        return int(text)
    except ValueError:
        return None


def lambda_metadata(context: Any = None, env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """``metadata["lambda"]`` from Lambda's environment variables and the invocation context."""
    environ = os.environ if env is None else env
    machine = normalize_architecture(platform.machine())
    facts: Dict[str, Any] = {
        "function_name": environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
        "function_arn": str(getattr(context, "invoked_function_arn", "") or ""),
        "memory_size_mb": _memory_mb(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")),
        "architecture": normalize_architecture(environ.get(ENV_ARCHITECTURE) or machine),
        "host_architecture": machine,
        "region": environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION", ""),
        "runtime": environ.get("AWS_EXECUTION_ENV", ""),
        "handler": environ.get("_HANDLER", ""),
    }
    version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
    if version:
        facts["function_version"] = version
    return facts


class _Session:
    """Process-wide Lambda state: the cold start, and the metadata already sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._invoked = False
        self._start_refused = False
        self._sent_arn: Optional[str] = None

    def begin(self, context: Any, options: Mapping[str, Any]) -> Optional[bool]:
        """Start the agent if needed and note the invocation; return cold start, or None if off."""
        with self._lock:
            cold = not self._invoked
            self._invoked = True
            if current() is None and not self._start_refused:
                # None when switched off or misconfigured (logged): do not retry every invocation.
                self._start_refused = start(**start_options(options)) is None
            if current() is None:
                return None
            with guard("lambda metadata"):  # a failure here must not cost the invocation's profile
                self._describe(context)
            return cold

    def _describe(self, context: Any) -> None:
        """Send ``metadata["lambda"]`` when it is new (first call, or another qualified ARN)."""
        arn = str(getattr(context, "invoked_function_arn", "") or "")
        if arn != self._sent_arn:
            set_metadata("lambda", lambda_metadata(context))
            self._sent_arn = arn

    def end(self, duration_ms: float, cold: bool) -> None:
        """Record the invocation, and report now (synchronously) if the interval has passed."""
        record_invocation(duration_ms, cold)
        profiler = current()
        if profiler is not None and profiler.flush_due():
            flush()


def start_options(options: Mapping[str, Any], env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """``options`` for :func:`greenflame.agent.start`, with the Lambda default group.

    The default applies only when neither ``options`` nor ``GREENFLAME_GROUP`` names a group.
    """
    environ = os.environ if env is None else env
    overrides = dict(options)
    if overrides.get("group") is None and not environ.get(ENV_PREFIX + "GROUP"):
        overrides["group"] = default_group(environ)
    return overrides


_SESSION = _Session()


@guarded("lambda invocation start")
def _guarded_begin(context: Any, options: Mapping[str, Any]) -> Optional[bool]:
    return _SESSION.begin(context, options)


@guarded("lambda invocation end")
def _guarded_end(duration_ms: float, cold: bool) -> None:
    _SESSION.end(duration_ms, cold)


def _wrap(handler: Handler, options: Mapping[str, Any]) -> Handler:
    if getattr(handler, WRAPPED_MARK, False):
        return handler

    @functools.wraps(handler)
    def profiled(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        cold = _guarded_begin(context, options)
        if cold is None:
            return handler(event, context, *args, **kwargs)
        began = time.perf_counter()
        try:
            with _invoke_phase():
                return handler(event, context, *args, **kwargs)
        finally:
            _guarded_end((time.perf_counter() - began) * 1000.0, cold)

    setattr(profiled, WRAPPED_MARK, True)
    return cast(Handler, profiled)


def profile_handler(handler: Optional[Handler] = None, **agent_options: Any) -> Any:
    """Profile a Lambda handler; use as ``@profile_handler`` or ``@profile_handler(group=...)``.

    ``agent_options`` are passed to :func:`greenflame.agent.start` when the first invocation
    starts the agent (``group`` defaults to ``aws-lambda-<function name>``); they are ignored if
    the agent is already running. A handler is never wrapped twice.
    """
    if handler is None:
        return functools.partial(profile_handler, **agent_options)
    if not callable(handler):
        raise TypeError(f"profile_handler expects a function, got {type(handler).__name__}")
    return _wrap(handler, dict(agent_options))


def is_profiled(handler: Any) -> bool:
    """Whether ``handler`` is already wrapped by :func:`profile_handler`."""
    return bool(getattr(handler, WRAPPED_MARK, False))
