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
deliver a report. When the decorator starts the agent itself (the usual case, and the layer's), the
agent's scheduler never fires; instead the end of an invocation reports synchronously once the
reporting interval (``GREENFLAME_REPORT_INTERVAL_S``, 10 s by default in Lambda) has passed, within
a budget of at most 250 ms that also stays 100 ms clear of the invocation's deadline. Reports to a
server go through :class:`~greenflame.agent.lambda_outbox.OutboxExporter`: written to ``/tmp``
before sending and resent later with the same ``Idempotency-Key`` if a freeze, a kill or the budget
cuts them off. An invoker may ask for a report at the end of one invocation with the client context
``{"custom": {"greenflame_flush": "1"}}`` (``greenflame lambda invoke`` does on its last one).

Labels on the samples of an invocation: ``lambda_phase=invoke``, ``lambda_cold_start=true`` on the
cold start, and ``lambda_request_id`` on the first 8 invocations of each report only. Request ids
are unique, and every distinct (stack, labels) pair takes a slot of the bounded aggregator, so
labelling every invocation would multiply the stacks kept by the invocation count (160 a report
at 16 invocations a second); 8 keeps the growth bounded while still letting a user follow single
requests (the cold one always among them) from the profile to the logs.

The handler's own exceptions pass through unchanged; the agent's errors are logged and never
reach the handler.
"""

from __future__ import annotations

import os
import threading
import time

from . import __version__, scheduler
from .config import ENV_PREFIX, Config, ConfigError
from .guard import copy_identity, guard, guarded
from .profiler import current, flush, record_invocation, set_metadata, start  # direct: hot path

# Every module imported here is paid for on each cold start: no typing, functools or platform at
# run time, and the label store and outbox load with the agent. mypy treats any name
# ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type, TypeVar

    from .lambda_outbox import OutboxExporter

    Handler = TypeVar("Handler", bound=Callable[..., Any])

__all__ = [
    "ENV_ARCHITECTURE",
    "ENV_LOCAL_RUNNER",
    "default_group",
    "flush_at_shutdown",
    "init_phase",
    "install_shutdown_flush",
    "lambda_metadata",
    "profile_handler",
    "start_lambda_agent",
]

#: Overrides the architecture recorded in ``metadata["lambda"]`` (``x86_64`` or ``arm64``). Real
#: Lambda has no variable for it, so the agent reads the machine; ``greenflame lambda invoke``
#: sets this to the requested ``--arch`` while the code runs on the local machine.
ENV_ARCHITECTURE = "GREENFLAME_LAMBDA_ARCHITECTURE"
#: Names the local runner that invokes the handler (``greenflame lambda invoke``); recorded as
#: ``metadata["lambda"]["local_runner"]``: its invocations run back to back, so their rate is no
#: traffic rate and the analyzer never extrapolates it to a month.
ENV_LOCAL_RUNNER = "GREENFLAME_LAMBDA_LOCAL_RUNNER"

#: Attribute set on wrapped handlers, so that nothing wraps a handler twice.
WRAPPED_MARK = "__greenflame_profiled__"

AGENT = f"greenflame-agent/{__version__}"


@guarded("lambda labels")
def _push_labels(values: Dict[str, str]) -> Any:
    from . import threadlabels

    return threadlabels.push(dict(values))


@guarded("lambda labels")
def _pop_labels(token: Any) -> None:
    from . import threadlabels

    threadlabels.pop(token)


class _SafeLabels:
    """Labels on this thread's samples that never raise into user code nor swallow its exceptions.

    On the hot path of every invocation: plain guarded calls, no generator-based context managers.
    """

    __slots__ = ("_token", "_values")

    def __init__(self, **values: str) -> None:
        self._values = values
        self._token: Any = None

    def __enter__(self) -> _SafeLabels:
        self._token = _push_labels(self._values)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        # The user's exception is not the agent's business: exit as if none happened.
        token, self._token = self._token, None
        if token is not None:
            _pop_labels(token)


class _InitPhase(_SafeLabels):
    """:func:`init_phase`: its label, and its time sampled as an invocation's (the sampler takes no
    sample while the process waits between invocations)."""

    __slots__ = ("_reopened",)

    def __init__(self) -> None:
        super().__init__(lambda_phase="init")
        self._reopened = False

    def __enter__(self) -> _SafeLabels:
        with guard("lambda init phase"):
            profiler = current()
            self._reopened = profiler is not None and profiler.invocation(True)
        return super().__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        super().__exit__(*exc_info)
        reopened, self._reopened = self._reopened, False
        if reopened:
            with guard("lambda init phase"):
                profiler = current()
                if profiler is not None:
                    profiler.invocation(False)  # waiting between invocations again


def init_phase() -> _SafeLabels:
    """A context manager that labels samples of this thread ``lambda_phase=init``.

    Wrap the import of the function's module in it (the local runner and the layer's wrapper do).
    """
    return _InitPhase()


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
    machine = normalize_architecture(os.uname().machine)  # what platform.machine() reads
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
    runner = environ.get(ENV_LOCAL_RUNNER)
    if runner:
        facts["local_runner"] = runner
    return facts


#: Seconds between two reports in Lambda unless ``report_interval_s``/GREENFLAME_REPORT_INTERVAL_S
#: says otherwise: short, so that a recommendation shows within a minute, and cheap (one POST).
LAMBDA_REPORT_INTERVAL_S = 10.0
#: At most this long is spent delivering at the end of one invocation ...
FLUSH_BUDGET_S = 0.25
#: ... and never closer than this to the invocation's deadline (the function must not time out).
DEADLINE_MARGIN_S = 0.1
#: Reports cut off earlier are retried at most this often (the server may be down).
RESEND_EVERY_S = 2.0
#: Invocations per report whose samples carry the ``lambda_request_id`` label (see module doc).
MAX_LABELLED_REQUESTS = 8
#: The labels of a warm invocation past the first MAX_LABELLED_REQUESTS of a report, prebuilt.
_INVOKE_LABELS = (("lambda_phase", "invoke"),)
#: ``context.client_context.custom[FLUSH_KEY]`` truthy: report at the end of this invocation.
FLUSH_KEY = "greenflame_flush"


class _Session:
    """Process-wide Lambda state: the cold start, the reporting cadence, the metadata already sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._invoked = False
        self._start_refused = False
        self._sent_arn: Optional[str] = None
        self._owned = False  # whether this session started the agent (and so owns its cadence)
        self._interval_s = LAMBDA_REPORT_INTERVAL_S
        self._last_report = time.monotonic()
        self._labelled = 0
        self._unreported = True  # samples (init, invocations) not in a report yet
        self._outboxes: List[OutboxExporter] = []
        self._label_store: Any = None  # the threadlabels module, once the first invocation loaded it

    def start_agent(self, options: Mapping[str, Any]) -> bool:
        """Start the agent in Lambda mode unless it runs (or was refused); whether it runs."""
        if current() is None and not self._start_refused:
            self._start_refused = not self._start_owned(options)
        return current() is not None

    def _start_owned(self, options: Mapping[str, Any]) -> bool:
        settings = start_options(options)
        if settings.get("ingest_key") is None:
            with guard("lambda ingest key"):  # from SSM or Secrets Manager, when configured so
                from .lambda_secrets import ingest_key_from_aws

                settings["ingest_key"] = ingest_key_from_aws()
        interval = lambda_interval(settings)
        if interval is None:
            return start(**settings) is not None  # a bad value: start() logs it once
        settings["report_interval_s"] = scheduler.OFF_S  # reports go at invocation ends
        # The write-ahead outbox replaces the HTTP exporter and its spool: building a spool only to
        # drop it would cost a folder and the tempfile/shutil imports on every cold start.
        settings["spool_max_mb"] = 0
        profiler = start(**settings)
        if profiler is None:
            return False
        self._owned, self._interval_s, self._last_report = True, interval, time.monotonic()
        with guard("lambda outbox"):
            self._outboxes = _install_outboxes(profiler)
        return True

    def begin(self, context: Any, options: Mapping[str, Any]) -> Optional[Tuple[bool, Any]]:
        """Note an invocation and push its labels: (cold start, the labels' token), or None when off.

        The hot path of every warm invocation, which runs with caches a handler's run made cold:
        few calls, no objects but the token, the usual label set prebuilt.
        """
        with self._lock:
            cold = not self._invoked
            self._invoked = True
            profiler = current()
            if profiler is None:
                if not self.start_agent(options):
                    return None
                profiler = current()
            if profiler is not None:
                profiler.invocation(True)
            if getattr(context, "invoked_function_arn", None) != self._sent_arn:
                with guard("lambda metadata"):  # a failure here must not cost the invocation's profile
                    self._describe(context)
            key = self._label_key(context, cold)
        with guard("lambda labels"):
            store = self._label_store
            if store is None:
                from . import threadlabels as store

                self._label_store = store
            return cold, store.push(key)
        return cold, None

    def _label_key(self, context: Any, cold: bool) -> Tuple[Tuple[str, str], ...]:
        if not cold and self._labelled >= MAX_LABELLED_REQUESTS:
            return _INVOKE_LABELS
        values = {"lambda_phase": "invoke"}
        if cold:
            values["lambda_cold_start"] = "true"
        if self._labelled < MAX_LABELLED_REQUESTS:
            request_id = getattr(context, "aws_request_id", None)
            if request_id:
                self._labelled += 1
                values["lambda_request_id"] = str(request_id)
        return tuple(sorted(values.items()))

    def _describe(self, context: Any) -> None:
        """Send ``metadata["lambda"]`` when it is new (first call, or another qualified ARN)."""
        set_metadata("lambda", lambda_metadata(context))
        self._sent_arn = getattr(context, "invoked_function_arn", None)

    def end(self, duration_ms: float, cold: bool, token: Any, context: Any) -> None:
        """Pop the labels, record the invocation; report now (synchronously, within budget) if it is time to."""
        profiler = current()
        if profiler is not None:
            profiler.invocation(False)
        if token is not None:
            with guard("lambda labels"):
                self._label_store.pop(token)
        record_invocation(duration_ms, cold)
        self._unreported = True
        if profiler is None:
            return
        if not self._owned:
            if profiler.flush_due():
                flush()
            return
        now = time.monotonic()
        if now - self._last_report >= self._interval_s or _flush_requested(context):
            self._report(profiler, context, now)
        else:
            for outbox in self._outboxes:  # a loop, not any(<generator>): this runs every invocation
                if not outbox.empty and outbox.last_attempt + RESEND_EVERY_S <= now:
                    self._resend(context, now)
                    return

    def _resend(self, context: Any, now: float) -> None:
        budget = _budget(context)
        if budget > 0:
            for outbox in self._outboxes:
                outbox.resend(now + budget)

    def _report(self, profiler: Any, context: Any, now: float) -> None:
        budget = _budget(context)
        if budget <= 0:
            return  # too close to the deadline: the samples wait for a later invocation
        self._last_report, self._labelled = now, 0
        profiler.flush(timeout_s=budget)
        self._unreported = False

    def final_report(self, budget_s: float) -> None:
        """At the sandbox's end: report what no report holds yet, and resend what was cut off."""
        profiler = current()
        if profiler is None:
            return
        deadline = time.monotonic() + budget_s
        # With no invocation since the last report, what remains is the runtime waiting: no report.
        if self._unreported or not self._owned:
            profiler.flush(timeout_s=budget_s)
            self._unreported = False
        for outbox in self._outboxes:
            if not outbox.empty and time.monotonic() < deadline:
                outbox.resend(deadline)


def flush_at_shutdown(budget_s: float) -> None:
    """Report what no report holds yet, within ``budget_s`` (the sandbox is ending)."""
    _SESSION.final_report(budget_s)


def install_shutdown_flush() -> bool:
    """Flush at the sandbox's end (:mod:`~greenflame.agent.lambda_shutdown`) when the agent runs; whether set up."""
    if current() is None:
        return False
    from .lambda_shutdown import install

    return bool(install(flush_at_shutdown))


def lambda_interval(settings: Mapping[str, Any], env: Optional[Mapping[str, str]] = None) -> Optional[float]:
    """The reporting interval in Lambda: the configured one, else 10 s; None if misconfigured."""
    environ = os.environ if env is None else env
    explicit = settings.get("report_interval_s") is not None or ENV_PREFIX + "REPORT_INTERVAL_S" in environ
    try:
        config = Config.from_env(environ, **settings)
    except ConfigError:
        return None
    return config.report_interval_s if explicit else LAMBDA_REPORT_INTERVAL_S


def _install_outboxes(profiler: Any) -> List[OutboxExporter]:
    """Replace the profiler's HTTP exporters by write-ahead outboxes (same server and key)."""
    from .exporters import HttpExporter
    from .lambda_outbox import OutboxExporter, default_outbox_dir

    config = profiler.config
    outboxes: List[OutboxExporter] = []
    exporters: List[Any] = []
    for exporter in profiler.exporters:
        if isinstance(exporter, HttpExporter) and config.server:
            directory = default_outbox_dir(profiler.group)
            exporter = OutboxExporter(config.server, config.ingest_key, directory, AGENT)
            outboxes.append(exporter)
        exporters.append(exporter)
    profiler.exporters[:] = exporters
    return outboxes


def _budget(context: Any) -> float:
    """Seconds the end of this invocation may spend reporting: the budget, within the deadline."""
    budget = FLUSH_BUDGET_S
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        left = remaining()
        if isinstance(left, (int, float)):
            budget = min(budget, left / 1000.0 - DEADLINE_MARGIN_S)
    return budget


def _flush_requested(context: Any) -> bool:
    custom = getattr(getattr(context, "client_context", None), "custom", None)
    return isinstance(custom, dict) and bool(custom.get(FLUSH_KEY))


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
def _guarded_begin(context: Any, options: Mapping[str, Any]) -> Optional[Tuple[bool, Any]]:
    return _SESSION.begin(context, options)


@guarded("lambda invocation end")
def _guarded_end(duration_ms: float, cold: bool, token: Any, context: Any) -> None:
    _SESSION.end(duration_ms, cold, token, context)


@guarded("lambda agent start", default=False)
def start_lambda_agent(**agent_options: Any) -> bool:
    """Start the agent as in Lambda (reports at invocation ends, write-ahead outbox); whether it runs.

    The layer's entry calls it before importing the function, so that the init phase is sampled.
    """
    return _SESSION.start_agent(agent_options)


def _wrap(handler: Handler, options: Mapping[str, Any]) -> Handler:
    if getattr(handler, WRAPPED_MARK, False):
        return handler

    def profiled(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        begun = _guarded_begin(context, options)
        if begun is None:
            return handler(event, context, *args, **kwargs)
        cold, token = begun
        began = time.perf_counter()
        try:
            return handler(event, context, *args, **kwargs)
        finally:
            _guarded_end((time.perf_counter() - began) * 1000.0, cold, token, context)

    copy_identity(handler, profiled)  # what functools.wraps does
    setattr(profiled, WRAPPED_MARK, True)
    return profiled  # type: ignore[return-value]


def profile_handler(handler: Optional[Handler] = None, **agent_options: Any) -> Any:
    """Profile a Lambda handler; use as ``@profile_handler`` or ``@profile_handler(group=...)``.

    ``agent_options`` are passed to :func:`greenflame.agent.start` when the first invocation
    starts the agent (``group`` defaults to ``aws-lambda-<function name>``); they are ignored if
    the agent is already running. A handler is never wrapped twice.
    """
    if handler is None:

        def decorate(function: Handler) -> Handler:
            return profile_handler(function, **agent_options)

        return decorate
    if not callable(handler):
        raise TypeError(f"profile_handler expects a function, got {type(handler).__name__}")
    return _wrap(handler, dict(agent_options))


def is_profiled(handler: Any) -> bool:
    """Whether ``handler`` is already wrapped by :func:`profile_handler`."""
    return bool(getattr(handler, WRAPPED_MARK, False))
