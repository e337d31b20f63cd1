"""The profiler: sampler -> bounded aggregator -> scheduler -> exporters, and the public API.

At most one profiler runs per process (:func:`current`). Every public function runs inside the
guard: the agent never raises into, nor blocks, the program it profiles, except that an explicit
:func:`flush` exports on the calling thread, as documented.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Set

from . import __version__, threadlabels
from .aggregator import Aggregator
from .config import Config, ConfigError
from .cpuprobe import select_probe
from .drops import DropCounter
from .exporters import Exporter, ExportError, FileExporter, HttpExporter
from .guard import guard, guarded, logger
from .invocations import InvocationStats
from .sampler import ENGINE, ThreadSampler
from .scheduler import Scheduler

AGENT = f"greenflame-agent/{__version__}"
#: Seconds the interpreter's exit may wait for the last report.
EXIT_DEADLINE_S = 2.0
_JOIN_TIMEOUT_S = 1.0


def runtime_name() -> str:
    """``cpython-3.11.7``: the interpreter implementation and version."""
    version = sys.implementation.version
    return f"{sys.implementation.name}-{version.major}.{version.minor}.{version.micro}"


def default_group() -> str:
    """The running script's name without extension, or ``""``."""
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return os.path.splitext(script)[0] if script not in ("", "-c", "-m") else ""


def exporters_for(config: Config) -> List[Exporter]:
    """The exporters ``config`` asks for: a file, a server, or both."""
    exporters: List[Exporter] = []
    if config.out:
        exporters.append(FileExporter(config.out))
    if config.server:
        exporters.append(HttpExporter(config.server, config.ingest_key, config.export_timeout_s, AGENT))
    return exporters


class Profiler:
    """One running profile: owns the pipeline's objects and threads."""

    def __init__(self, config: Config, exporters: List[Exporter], metadata: Optional[Dict[str, Any]] = None) -> None:
        self.config = config
        self.group = config.group or default_group()
        self.exporters = exporters
        self._metadata = metadata if metadata is not None else {}
        self._build_pipeline()
        self._running = False

    def _build_pipeline(self) -> None:
        config = self.config
        self._drops = DropCounter()
        self._invocations = InvocationStats()
        self._aggregator = Aggregator(config.max_stacks, self._drops)
        self._sampler = ThreadSampler(
            self._aggregator,
            self._drops,
            select_probe(),
            rate_hz=config.rate_hz,
            max_threads=config.max_threads,
            max_depth=config.max_depth,
            excluded=self._agent_threads,
        )
        self._scheduler = Scheduler(config.report_interval_s, self._scheduled_flush)
        self._last_flush = time.monotonic()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Start the sampler and scheduler threads."""
        self._running = True
        self._sampler.start()
        self._scheduler.start()

    def stop(self, flush: bool = True, timeout_s: Optional[float] = None) -> bool:
        """Stop the threads (each joined within a second), then export the last report if ``flush``.

        The last report is exported even when empty, so a short run still leaves its profile.
        """
        self._running = False
        self._sampler.stop(_JOIN_TIMEOUT_S)
        self._scheduler.stop(_JOIN_TIMEOUT_S)
        delivered = self.flush(timeout_s, even_if_empty=True) if flush else True
        self._sampler.probe.close()
        return delivered

    def is_running(self) -> bool:
        """Whether the sampler thread runs."""
        return self._sampler.is_alive()

    def restart_after_fork(self) -> None:
        """In a forked child: drop the parent's samples and state, and start fresh threads."""
        # The parent's threads do not exist here and its locks may be held: build everything anew.
        self._sampler.probe.close()
        self._build_pipeline()
        for exporter in self.exporters:
            exporter.reset_after_fork()
        threadlabels.keep_only(iter([threading.get_ident()]))
        if self._running:
            self.start()

    # -- reports ------------------------------------------------------------------

    def flush(self, timeout_s: Optional[float] = None, even_if_empty: bool = False) -> bool:
        """Drain the aggregator and export now, on the calling thread; True when delivered.

        ``timeout_s`` bounds the whole export (default: ``export_timeout_s``). A report with no
        samples, invocations or drops is not sent unless ``even_if_empty``.
        """
        timeout = self.config.export_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        self._last_flush = time.monotonic()
        report = self.build_report()
        meta = report["metadata"]
        if not (even_if_empty or report["samples"] or meta.get("invocations") or meta["dropped"]):
            return True
        return self._export(report, deadline)

    def flush_due(self) -> bool:
        """Whether ``report_interval_s`` has passed since the last flush (for Lambda, at invocation end)."""
        return time.monotonic() - self._last_flush >= self.config.report_interval_s

    def build_report(self) -> Dict[str, Any]:
        """Drain the aggregator into a wire-format document with this window's metadata."""
        metadata: Dict[str, Any] = dict(self._metadata)
        metadata.update(
            agent=AGENT,
            engine=ENGINE,
            runtime=runtime_name(),
            hostname=os.uname().nodename,
            pid=os.getpid(),
            sample_rate_hz=self.config.rate_hz,
            cpu_source=self._sampler.probe.name,
        )
        invocations = self._invocations.take()
        if invocations is not None:
            metadata["invocations"] = invocations
        period_ns = round(1e9 / self.config.rate_hz)
        # Taken last, so that drops counted while draining land in this report or the next.
        report = self._aggregator.drain(self.group, period_ns, metadata)
        metadata["dropped"] = self._drops.take()
        return report

    def _export(self, report: Dict[str, Any], deadline: float) -> bool:
        delivered = True
        for exporter in self.exporters:
            try:
                exporter.export(report, deadline)
            except ExportError as error:
                logger.warning("greenflame: a profile report was not delivered: %s", error)
                if delivered:
                    self._drops.restore(report["metadata"]["dropped"])
                self._drops.add(error.reason)
                delivered = False
        return delivered

    def _scheduled_flush(self) -> None:
        self.flush(3 * self.config.export_timeout_s)

    # -- data from the host -------------------------------------------------------

    def record_invocation(self, duration_ms: float, cold_start: bool) -> None:
        """Count one invocation in the current report's ``metadata["invocations"]``."""
        self._invocations.record(duration_ms, cold_start)

    def _agent_threads(self) -> Set[Optional[int]]:
        return {self._scheduler.ident}


# -- the process-wide profiler and the public API -----------------------------------

_lock = threading.Lock()
_current: Optional[Profiler] = None
_metadata: Dict[str, Any] = {}
_hooks_installed = False


def start(**overrides: Any) -> Optional[Profiler]:
    """Start profiling this process with ``Config.from_env(**overrides)``.

    Returns the running profiler (the same one when already started), or None when the agent
    is disabled, has nowhere to send reports, or is misconfigured (logged as an error).
    """
    global _current
    with _lock:
        if _current is not None:
            return _current
        try:
            config = Config.from_env(**overrides)
        except ConfigError as error:
            logger.error("greenflame: profiling disabled, invalid configuration: %s", error)
            return None
        return _start_with(config)


@guarded("start")
def _start_with(config: Config) -> Optional[Profiler]:
    global _current
    if not config.enabled:
        return None
    if config.debug:
        _log_to_stderr()
    exporters = exporters_for(config)
    if not exporters:
        logger.warning("greenflame: profiling disabled: set GREENFLAME_SERVER or GREENFLAME_OUT")
        return None
    profiler = Profiler(config, exporters, _metadata)
    _install_hooks()
    profiler.start()
    _current = profiler
    logger.debug("greenflame: profiling group %r at %s Hz", profiler.group, config.rate_hz)
    return profiler


@guarded("stop")
def stop(flush: bool = True) -> None:
    """Stop profiling; with ``flush``, export the last report first (on this thread)."""
    global _current
    with _lock:
        profiler, _current = _current, None
    if profiler is not None:
        profiler.stop(flush)


@guarded("flush", default=False)
def flush() -> bool:
    """Drain the aggregator and export now, on this thread; True when delivered (or nothing to send)."""
    profiler = _current
    return profiler.flush() if profiler is not None else False


def current() -> Optional[Profiler]:
    """The running profiler, or None."""
    return _current


@guarded("set_metadata")
def set_metadata(key: str, value: Any) -> None:
    """Merge ``key: value`` into every later report's metadata (``value`` must be JSON data)."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        logger.warning("greenflame: metadata %r ignored, not JSON data: %s", key, error)
        return
    _metadata[str(key)] = value


@guarded("record_invocation")
def record_invocation(duration_ms: float, cold_start: bool) -> None:
    """Count one invocation (duration in milliseconds) in the current report."""
    profiler = _current
    if profiler is not None:
        profiler.record_invocation(duration_ms, cold_start)


class labels:  # a class used as a function: ``with labels(endpoint="/users"):``
    """Context manager: ``labels`` are attached to the current thread's samples while inside.

    Nested blocks add to (and may override) the outer labels; values are turned into text.
    """

    __slots__ = ("_labels", "_token")

    def __init__(self, **labels: Any) -> None:
        self._labels = labels
        self._token: Optional[Any] = None

    def __enter__(self) -> labels:
        with guard("labels"):
            self._token = threadlabels.push(self._labels)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        token, self._token = self._token, None
        if token is not None:
            with guard("labels"):
                threadlabels.pop(token)


# -- process hooks --------------------------------------------------------------------


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


@guarded("atexit")
def _at_exit() -> None:
    global _current
    profiler, _current = _current, None
    if profiler is not None:
        profiler.stop(flush=True, timeout_s=EXIT_DEADLINE_S)


@guarded("after fork")
def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    profiler = _current
    if profiler is not None:
        profiler.restart_after_fork()


def _log_to_stderr() -> None:
    if not any(getattr(h, "_greenflame", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler._greenflame = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
