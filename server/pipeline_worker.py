"""The pipeline's worker thread, and how the app starts it and tells it about stored profiles.

The storage's :data:`.events.profile_stored` signal only calls :meth:`Scheduler.notify`, which
records the group in a bounded in-memory table under a lock and returns: it never waits for the
database or the analysis. The worker thread analyses each notified group once its delay has
passed (``GREENFLAME_ANALYSIS_DELAY_MS`` after the first notification, so a burst of reports
gives one run) and no sooner than ``GREENFLAME_ANALYSIS_INTERVAL_S`` after the start of its
previous run in this process (a group reporting all the time is analysed once per interval, not
after every burst, so analysis leaves the cores to ingest). Every :data:`SWEEP_S` seconds it asks
the database for groups whose data changed since their last analysis, which catches
notifications dropped when the table was full, groups other processes were notified about but
could not finish, and runs lost to a restart.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Set

from flask import Flask

from . import metrics
from .context import SETTINGS_KEY
from .crypto import key_folder, secret_box
from .events import ProfileStored, connect_storage, profile_stored
from .pipeline import Pipeline, PipelineConfig
from .pipeline_store import PipelineStore
from .settings import IN_PROCESS, Settings
from .storage import Storage
from .tickets.store import TicketStore

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
SWEEP_S = 60.0
STOP_TIMEOUT_S = 10.0
SLOT_POLL_S = 0.5
EXTENSION_KEY = "greenflame.pipeline"


@dataclass
class _Run:
    group: str
    done: bool = False
    over_budget: bool = False


class Scheduler:
    """A daemon thread that runs ``run(group)`` for notified groups on ``workers`` threads, coalescing bursts.

    A run still going after ``budget_s`` seconds gives its worker back (Python cannot stop it,
    but the other groups no longer wait for it); at most ``workers`` runs may be over budget at
    once, so threads stay bounded.
    """

    def __init__(
        self,
        run: Callable[[str], object],
        delay_s: float,
        sweep: Optional[Callable[[], List[str]]] = None,
        sweep_s: float = SWEEP_S,
        max_pending: int = MAX_PENDING,
        workers: int = 1,
        budget_s: Optional[float] = None,
        interval_s: float = 0.0,
    ) -> None:
        self._run = run
        self._interval_s = max(0.0, interval_s)
        #: When each group's last run started (monotonic seconds), for the interval.
        self._started: Dict[str, float] = {}
        self._slots = threading.Semaphore(max(1, workers))
        self._max_overrun = max(1, workers)
        self._overrunning = 0
        self._budget_s = budget_s
        self._runs: Set[threading.Thread] = set()
        self._delay_s = max(0.0, delay_s)
        self._sweep = sweep
        self._sweep_s = sweep_s
        self._max_pending = max_pending
        self._due: Dict[str, float] = {}
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Groups waiting for their run."""
        with self._cond:
            return len(self._due)

    def notify(self, group: str, urgent: bool = False) -> bool:
        """Ask for a run of ``group`` after the delay and the interval since its last run (``urgent``:
        the delay only); False (and counted) when the table is full."""
        with self._cond:
            now = time.monotonic()
            due = now + self._delay_s
            last = self._started.get(group)
            if last is not None and not urgent:
                due = max(due, last + self._interval_s)
            if group not in self._due or due < self._due[group]:
                if group not in self._due and len(self._due) >= self._max_pending:
                    self.dropped += 1
                    return False
                self._due[group] = due
                self._cond.notify()
        self.start()
        return True

    def start(self) -> None:
        """Start the worker thread unless it runs already."""
        with self._cond:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._loop, name="greenflame-pipeline", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop after the current run; wait up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            runs = list(self._runs)
        for run in runs:
            run.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        # Sweep at start: catch up on what arrived while this process was down.
        next_sweep = time.monotonic() if self._sweep is not None else float("inf")
        while self._acquire_slot():  # a free worker first, so groups wait in the table until one is
            group = self._next(next_sweep)
            while group == "":
                next_sweep = time.monotonic() + self._sweep_s
                self._do_sweep()
                group = self._next(next_sweep)
            if group is None:
                self._slots.release()
                return
            self._start_run(group)

    def _acquire_slot(self) -> bool:
        """Wait for a free worker; False when stopping."""
        while not self._slots.acquire(timeout=SLOT_POLL_S):
            with self._cond:
                if self._stopping:
                    return False
        with self._cond:
            if self._stopping:
                self._slots.release()
                return False
        return True

    def _start_run(self, group: str) -> None:
        run = _Run(group)
        with self._cond:
            self._started[group] = time.monotonic()
            if len(self._started) > self._max_pending:  # forget the longest-idle groups' starts
                for old, _ in sorted(self._started.items(), key=lambda item: item[1])[: len(self._started) // 2]:
                    del self._started[old]
        thread = threading.Thread(target=self._run_one, args=(run,), name="greenflame-analysis", daemon=True)
        with self._cond:
            self._runs.add(thread)
        thread.start()

    def _run_one(self, run: _Run) -> None:
        timer = None
        if self._budget_s is not None:
            timer = threading.Timer(self._budget_s, self._over_budget, args=(run,))
            timer.daemon = True
            timer.start()
        try:
            metrics.timed(metrics.ANALYSIS_SECONDS, lambda: self._run(run.group))
        except Exception:  # never let one group's failure stop the worker
            log.exception("pipeline run for group %r failed", run.group)
        finally:
            if timer is not None:
                timer.cancel()
            with self._cond:
                run.done = True
                self._runs.discard(threading.current_thread())
                if run.over_budget:
                    self._overrunning -= 1
            if not run.over_budget:
                self._slots.release()

    def _over_budget(self, run: _Run) -> None:
        """A run past its budget gives its worker to the other groups (while spare threads remain)."""
        with self._cond:
            if run.done:
                return
            if self._overrunning >= self._max_overrun:
                log.warning("analysis of group %r is over its budget; no spare worker left", run.group)
                return
            run.over_budget = True
            self._overrunning += 1
        log.warning(
            "analysis of group %r is over its budget of %.0f s; the other groups go on without waiting for it",
            run.group,
            self._budget_s,
        )
        self._slots.release()

    def _next(self, next_sweep: float) -> Optional[str]:
        """The next due group, ``""`` when a sweep is due, None when stopping."""
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._due:
                    group, due = min(self._due.items(), key=lambda item: item[1])
                    if due <= now:
                        del self._due[group]
                        return group
                    wake = min(due, next_sweep)
                else:
                    wake = next_sweep
                if next_sweep <= now:
                    return ""
                self._cond.wait(timeout=None if wake == float("inf") else wake - now)
            return None

    def _do_sweep(self) -> None:
        if self._sweep is None:
            return
        try:
            stale = self._sweep()
        except Exception:
            log.exception("pipeline sweep failed")
            return
        for group in stale:
            self.notify(group)


class PipelineService:
    """The app's pipeline: the analysis runs and the scheduler that triggers them.

    ``in_process`` false (``GREENFLAME_ANALYSIS=workers``): this process never analyses;
    ``greenflame worker`` processes find the groups to analyse in the database.
    """

    def __init__(self, pipeline: Pipeline, scheduler: Scheduler, in_process: bool = True) -> None:
        self.pipeline = pipeline
        self.scheduler = scheduler
        self.in_process = in_process

    @property
    def store(self) -> PipelineStore:
        """The pipeline's tables."""
        return self.pipeline.store

    @property
    def tickets(self) -> TicketStore:
        """The ticket links."""
        return self.pipeline.tickets

    def request_run(self, group: str, force: bool = False) -> None:
        """Schedule a run of ``group``; ``force`` re-analyses even without new profiles."""
        if force:
            self.store.invalidate(group)
        if self.in_process:
            self.scheduler.notify(group, urgent=force)

    def on_profile_stored(self, _storage: Storage, profile: ProfileStored) -> None:
        """Schedule a run of the group a new profile was stored for (returns at once)."""
        self.scheduler.notify(profile.group)


def build_pipeline(settings: Settings, storage: Storage) -> Pipeline:
    """The analysis pipeline on ``storage``'s database, configured by ``settings``."""
    config = PipelineConfig(
        window_s=settings.analysis_window_s,
        history_s=settings.anomaly_history_s,
        max_profiles=settings.max_query_profiles,
        public_url=settings.public_url,
    )
    key_dir = key_folder(settings.resolved_database_url(), settings.data_path)
    store = PipelineStore(storage.engine, secret_box(settings.secret_keys, key_dir))
    store.reseal_channels()  # seals clear credentials of older versions; re-seals after a key rotation
    return Pipeline(storage, store, TicketStore(storage.engine), config)


def build_scheduler(pipeline: Pipeline, settings: Settings, sweep_s: float = SWEEP_S) -> Scheduler:
    """A scheduler running ``pipeline`` for notified groups and, every ``sweep_s``, for stale ones."""
    # With an interval, a run does one round: data arriving meanwhile waits for the interval.
    run = functools.partial(pipeline.run_group, rounds=1) if settings.analysis_interval_s else pipeline.run_group
    return Scheduler(
        run,
        settings.analysis_delay_ms / 1000.0,
        sweep=pipeline.store.stale_groups,
        sweep_s=sweep_s,
        workers=settings.analysis_workers,
        budget_s=settings.analysis_budget_s,
        interval_s=settings.analysis_interval_s,
    )


def init_app(app: Flask) -> PipelineService:
    """Create the pipeline on the app's storage and hook it to the storage's ``profile_stored``.

    The thread starts lazily, with the first notification. With ``GREENFLAME_ANALYSIS=workers``
    nothing is hooked and nothing starts: separate ``greenflame worker`` processes analyse.
    """
    settings: Settings = app.config[SETTINGS_KEY]
    storage: Storage = app.extensions["greenflame.storage"]
    pipeline = build_pipeline(settings, storage)
    in_process = settings.analysis == IN_PROCESS
    service = PipelineService(pipeline, build_scheduler(pipeline, settings), in_process)
    app.extensions[EXTENSION_KEY] = service
    if in_process:
        connect_storage(app, profile_stored, storage, service.on_profile_stored)
    return service


def get_scheduler(app: Flask) -> Scheduler:
    """The scheduler of ``app``'s pipeline (``serve`` starts it at once and stops it on shutdown)."""
    service: PipelineService = app.extensions[EXTENSION_KEY]
    return service.scheduler


def analyses_in_process(app: Flask) -> bool:
    """Whether ``app``'s process analyses groups (else ``greenflame worker`` processes do)."""
    service: PipelineService = app.extensions[EXTENSION_KEY]
    return service.in_process


def get_pipeline() -> PipelineService:
    """The current app's pipeline."""
    from flask import current_app

    service: PipelineService = current_app.extensions[EXTENSION_KEY]
    return service
