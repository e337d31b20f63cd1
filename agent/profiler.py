"""The profiler: sampler -> bounded aggregator -> scheduler -> exporters, and the public API.

At most one profiler runs per process (:func:`current`). Every public function runs inside the
guard: the agent never raises into, nor blocks, the program it profiles, except that an explicit
:func:`flush` exports on the calling thread, as documented.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

from . import __version__, own_threads
from .config import Config, ConfigError
from .guard import guard, guarded, logger
from .lifecycle import PAUSED, RUNNING, Lifecycle

# The engine, aggregator, budget, CPU probe, scheduler and exporters load when a
# profiler is built (start()), not when this module is imported: importing the package or the
# Lambda decorator must stay cheap (a cold start pays for every module). mypy treats any name
# ``TYPE_CHECKING`` as true; typing itself is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Set

    from .callprofiler import CallProfiler
    from .drops import DropCounter
    from .engines import Engine
    from .exporters import Exporter

AGENT = f"greenflame-agent/{__version__}"
_JOIN_TIMEOUT_S = 1.0


def runtime_name() -> str:
    """``cpython-3.11.7``: the interpreter implementation and version."""
    version = sys.implementation.version
    return f"{sys.implementation.name}-{version.major}.{version.minor}.{version.micro}"


def default_group() -> str:
    """The running script's name without extension, or ``""``."""
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return os.path.splitext(script)[0] if script not in ("", "-c", "-m") else ""


def exporters_for(config: Config, group: str = "", drops: Optional[DropCounter] = None) -> List[Exporter]:
    """The exporters ``config`` asks for: a file, a server (with its spool), S3, or several.

    Raises :class:`ConfigError` when S3 is asked for without boto3 installed.
    """
    from .drops import DropCounter
    from .exporters import FileExporter, HttpExporter, S3Exporter

    exporters: List[Exporter] = []
    if config.out:
        exporters.append(FileExporter(config.out))
    if config.server:
        spool = None
        if config.spool_max_mb > 0:
            from .spool import Spool, default_directory

            directory = config.spool_dir or default_directory(group)
            spool = Spool(directory, int(config.spool_max_mb * 1024 * 1024), drops or DropCounter())
        exporters.append(HttpExporter(config.server, config.ingest_key, config.export_timeout_s, AGENT, spool))
    if config.s3:
        import importlib.util

        if importlib.util.find_spec("boto3") is None:
            raise ConfigError("GREENFLAME_S3 needs boto3, which is not installed: pip install boto3")
        exporters.append(S3Exporter(config.s3, group, config.export_timeout_s))
    return exporters


class Profiler:
    """One running profile: owns the pipeline's objects and threads, and its lifecycle.

    States (:mod:`greenflame.agent.lifecycle`): ``created`` -> ``running`` <-> ``paused`` ->
    ``stopped``. While paused (by :meth:`pause` or the kill-switch file) nothing is sampled;
    what was collected stays and is reported.
    """

    def __init__(
        self,
        config: Config,
        exporters: Optional[List[Exporter]] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.config = config
        self.group = config.group or default_group()
        self._metadata = metadata if metadata is not None else {}
        self.lifecycle = Lifecycle()
        self._killed = False
        self._build_pipeline()
        self.exporters = exporters if exporters is not None else exporters_for(config, self.group, self._drops)

    def _build_pipeline(self) -> None:
        from .aggregator import Aggregator
        from .budget import CpuBudget
        from .drops import DropCounter
        from .engines import build_engine
        from .invocations import InvocationStats
        from .scheduler import Scheduler

        config = self.config
        self._drops = DropCounter()
        self._invocations = InvocationStats()
        self._aggregator = Aggregator(config.max_stacks, self._drops)
        self._budget = CpuBudget(
            config.cpu_budget, config.rate_hz, self._agent_native_ids, extra_cpu_ns=self._signal_cpu_ns
        )
        self._engine: Engine = build_engine(config, self._aggregator, self._drops, self._budget, self._agent_threads)
        #: The per-call profiler behind :class:`profile_call` (``pyinstrument`` engine), else None.
        self.call_profiler: Optional[CallProfiler] = self._engine.call_profiler
        # Without a kill-switch file there is nothing to look after between reports: no wake-ups.
        housekeeping = self._housekeeping if config.kill_file else None
        self._scheduler = Scheduler(
            config.report_interval_s, self._scheduled_flush, housekeeping, imports=self._report_imports
        )
        self._last_flush = time.monotonic()

    def _report_imports(self) -> List[str]:
        """The modules the scheduler thread's reports use (none when it never reports)."""
        from .thread_imports import REPORTS

        if not self._scheduler.reports:
            return []
        return [*REPORTS, *(name for e in self.exporters for name in getattr(e, "thread_imports", ()))]

    # -- lifecycle ----------------------------------------------------------------

    @property
    def state(self) -> str:
        """``created``, ``running``, ``paused`` or ``stopped``."""
        return self.lifecycle.state

    def start(self) -> None:
        """Start the sampler and scheduler threads (paused at once if the kill-switch file exists)."""
        if self.lifecycle.fire("start") is None:
            return
        self._scheduler.start()
        if self._kill_file_present():
            self._kill()
        else:
            self._engine.start()

    def pause(self) -> bool:
        """Stop sampling but keep what was collected and keep reporting; True if it was running."""
        if self.lifecycle.fire("pause") is None:
            return False
        self._engine.stop(_JOIN_TIMEOUT_S)
        return True

    def resume(self) -> bool:
        """Sample again after :meth:`pause`; True if it was paused (a kill-switch file keeps it paused)."""
        if self._killed or self.lifecycle.fire("resume") is None:
            return False
        self._engine.start()
        return True

    def stop(self, flush: bool = True, timeout_s: Optional[float] = None) -> bool:
        """Stop the threads (each joined within a second), then export the last report if ``flush``.

        The last report is exported even when empty, so a short run still leaves its profile.
        """
        if self.lifecycle.fire("stop") is None:
            return True
        self._engine.stop(_JOIN_TIMEOUT_S)
        self._scheduler.stop(_JOIN_TIMEOUT_S)
        delivered = self.flush(timeout_s, even_if_empty=True) if flush else True
        self._engine.close()
        return delivered

    def is_running(self) -> bool:
        """Whether the engine samples (for the thread engine: its sampler thread is alive)."""
        return self._engine.is_alive()

    def restart_after_fork(self) -> None:
        """In a forked child: drop the parent's samples and state, and start fresh threads."""
        # The parent's threads do not exist here and its locks may be held: build everything anew.
        self._engine.close()
        state = self.state
        self.lifecycle = Lifecycle()
        self._build_pipeline()
        for exporter in self.exporters:
            exporter.reset_after_fork()
            spool = getattr(exporter, "spool", None)
            if spool is not None:
                spool.rebind(self._drops)
        from . import threadlabels

        threadlabels.keep_only(iter([threading.get_ident()]))
        if state in (RUNNING, PAUSED):
            self.start()
            if state == PAUSED:
                self.pause()

    # -- the kill-switch file ----------------------------------------------------------

    def _kill_file_present(self) -> bool:
        path = self.config.kill_file
        return bool(path) and os.path.exists(path)  # type: ignore[arg-type]

    def _housekeeping(self) -> None:
        present = self._kill_file_present()
        if present and not self._killed:
            self._kill()
        elif not present and self._killed:
            self._killed = False
            logger.warning("greenflame: kill-switch file %s is gone: profiling resumes", self.config.kill_file)
            self.resume()

    def _kill(self) -> None:
        self.pause()
        self._killed = True
        logger.warning("greenflame: kill-switch file %s exists: profiling paused", self.config.kill_file)

    # -- reports ------------------------------------------------------------------

    def flush(self, timeout_s: Optional[float] = None, even_if_empty: bool = False) -> bool:
        """Drain the aggregator and export now, on the calling thread; True when delivered.

        ``timeout_s`` bounds the whole export (default: ``export_timeout_s``). A report with no
        samples, invocations or drops is not sent unless ``even_if_empty``. A report kept in the
        spool for a later replay counts as not delivered (yet).
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
        import uuid

        engine = self._engine
        engine.collect()  # samples the SIGPROF handler recorded belong in this report
        metadata: Dict[str, Any] = dict(self._metadata)
        window = self._budget.take_window()
        metadata.update(
            agent=AGENT,
            engine=engine.name,
            runtime=runtime_name(),
            hostname=os.uname().nodename,
            pid=os.getpid(),
            cpu_source=engine.cpu_source,
            report_id=str(uuid.uuid4()),
            state=self.state,
            **window,
        )
        metadata.update(engine.report_metadata())
        if self._killed:
            metadata["kill_switch"] = "file"
        invocations = self._invocations.take()
        if invocations is not None:
            metadata["invocations"] = invocations
        rate = metadata["sample_rate_hz"] or self.config.rate_hz
        skipped = metadata.pop("skipped_hz", 0.0)
        if skipped:
            # The rate achieved, not the one asked: a sample then stands for its share of the time.
            achieved = max(rate - skipped, 0.001 * rate)
            metadata.update(asked_rate_hz=rate, schedule_skipped=round(1.0 - achieved / rate, 3))
            rate = metadata["sample_rate_hz"] = round(achieved, 3)
        period_ns = round(1e9 / rate)
        # Taken last, so that drops counted while draining land in this report or the next.
        report = self._aggregator.drain(self.group, period_ns, metadata)
        metadata["dropped"] = self._drops.take()
        return report

    def _export(self, report: Dict[str, Any], deadline: float) -> bool:
        from .exporters import ExportError

        delivered = True
        restored = False
        for exporter in self.exporters:
            try:
                exporter.export(report, deadline)
            except ExportError as error:
                delivered = False
                if error.spooled:
                    logger.info("greenflame: a profile report was kept for later: %s", error)
                    continue
                logger.warning("greenflame: a profile report was not delivered: %s", error)
                if not restored:
                    # The drop counts travelled with a lost report: count them again in the next one.
                    self._drops.restore(report["metadata"]["dropped"])
                    restored = True
                self._drops.add(error.reason)
        return delivered

    def _scheduled_flush(self) -> None:
        self.flush(3 * self.config.export_timeout_s)

    # -- data from the host -------------------------------------------------------

    def record_invocation(self, duration_ms: float, cold_start: bool) -> None:
        """Count one invocation in the current report's ``metadata["invocations"]``."""
        self._invocations.record(duration_ms, cold_start)

    def invocation(self, active: bool) -> bool:
        """A Lambda invocation starts (``active``) or ends: the engine samples no wall time between them.
        For ``active``: whether the process was waiting between invocations until then."""
        return self._engine.invocation(active)

    def _agent_threads(self) -> Set[Optional[int]]:
        return self._scheduler.idents() | own_threads.idents()

    def signal_stats(self) -> Dict[str, int]:
        """What the thread engine's SIGPROF trigger did since the start (see ``ThreadSampler.signal_stats``)."""
        return self._engine.signal_stats()

    def _signal_cpu_ns(self) -> int:
        return self.signal_stats()["cpu_ns"]

    def _agent_native_ids(self) -> List[Optional[int]]:
        return [self._scheduler.native_id, *self._engine.native_ids(), *own_threads.native_ids()]


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
    if not (config.out or config.server or config.s3):
        logger.warning("greenflame: profiling disabled: set GREENFLAME_SERVER, GREENFLAME_OUT or GREENFLAME_S3")
        return None
    try:
        profiler = Profiler(config, None, _metadata)
    except ConfigError as error:
        logger.error("greenflame: profiling disabled: %s", error)
        return None
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


@guarded("pause", default=False)
def pause() -> bool:
    """Stop sampling, keeping what was collected; True if the profiler was running."""
    profiler = _current
    return profiler.pause() if profiler is not None else False


@guarded("resume", default=False)
def resume() -> bool:
    """Sample again after :func:`pause`; True if the profiler was paused."""
    profiler = _current
    return profiler.resume() if profiler is not None else False


class profile_call:  # a class used as a function: ``with profile_call():``
    """Context manager around one call (a request, an invocation).

    With the ``pyinstrument`` engine, a random ``call_share`` of these calls is profiled
    precisely; otherwise (the ``thread`` engine samples everything already) it does nothing.
    """

    __slots__ = ("_inner",)

    def __init__(self) -> None:
        self._inner: Optional[Any] = None

    def __enter__(self) -> profile_call:
        profiler = _current
        if profiler is not None and profiler.call_profiler is not None:
            with guard("profile_call"):
                inner = profiler.call_profiler.call()
                inner.__enter__()
                self._inner = inner
        return self

    def __exit__(self, *exc_info: Any) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            with guard("profile_call"):
                inner.__exit__(*exc_info)


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
        from . import threadlabels

        with guard("labels"):
            self._token = threadlabels.push(self._labels)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        token, self._token = self._token, None
        if token is not None:
            from . import threadlabels

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
        from . import thread_imports

        thread_imports.install_fork_hooks()  # first: the child's new lock before its new threads
        os.register_at_fork(after_in_child=_after_fork_in_child)


@guarded("atexit")
def _at_exit() -> None:
    global _current
    profiler, _current = _current, None
    if profiler is not None:
        profiler.stop(flush=True, timeout_s=profiler.config.exit_timeout_s)


@guarded("after fork")
def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    profiler = _current
    if profiler is not None:
        profiler.restart_after_fork()
        _flush_multiprocessing_children(profiler)


def _flush_multiprocessing_children(profiler: Profiler) -> None:
    """Make a ``multiprocessing`` worker forked from here flush its profile when it ends.

    Such a worker leaves with ``os._exit()`` after running multiprocessing's finalizers, skipping
    ``atexit``. The worker clears the finalizers inherited from its parent and then runs its
    after-fork callbacks, so the finalizer is registered from one of those. Only when the program
    already imported multiprocessing (the agent never imports it).
    """
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(profiler, _register_exit_finalizer)


@guarded("multiprocessing finalizer")
def _register_exit_finalizer(profiler: Profiler) -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, _at_exit, exitpriority=100)


def _log_to_stderr() -> None:
    import logging

    if not any(getattr(h, "_greenflame", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler._greenflame = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
