"""The ``thread`` engine: a daemon thread that samples every thread's stack with ``sys._current_frames()``.

Ticks are spaced by a random interval of 0.5 to 1.5 times the period (mean: the period), so
that the sampler cannot lock on to a periodic pattern in the program (aliasing). The time a tick
takes, and how late the thread woke up (it waits for the GIL behind busy threads), are
subtracted from the next waits, so the mean rate stays close to ``rate_hz``.

Per sampled thread a tick records: the stack (root first, at most ``max_depth`` frames), the
labels (the thread's or its running asyncio task's, plus the automatic ``thread`` and
``asyncio_task`` labels), whether it was on a CPU (:mod:`.cpuprobe`) and, when it was not,
whether it waited in an idle call (:mod:`.idle`). The agent's own threads are never sampled; at
most ``max_threads`` threads are, in rotation. A :class:`~.budget.CpuBudget` checked once a
second may lower the rate.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from types import CodeType, FrameType
from typing import Callable, Dict, List, Optional, Set, Tuple

from . import threadlabels
from .aggregator import Aggregator, FrameKey, Observation, Stack
from .budget import CpuBudget
from .cpuprobe import CpuProbe
from .drops import DropCounter
from .idle import IdleClassifier
from .threadlabels import LabelKey
from .worker import PeriodicWorker

ENGINE = "thread"
TRUNCATED: FrameKey = ("[truncated]", "", 0)

_FRAME_CACHE_LIMIT = 50_000
_LABEL_CACHE_LIMIT = 10_000
_NATIVE_REFRESH_NS = 1_000_000_000

if sys.version_info >= (3, 11):

    def _code_name(code: CodeType) -> str:
        return code.co_qualname

else:  # pragma: no cover - exercised on Python 3.9 and 3.10

    def _code_name(code: CodeType) -> str:
        return code.co_name


class StackReader:
    """Turns a frame into a root-first stack of frame keys, at most ``max_depth`` long."""

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth
        # id(code) -> (code, key). Holding the code object keeps its id from being reused while
        # cached, and lets every sample share one key tuple per function.
        self._cache: Dict[int, Tuple[CodeType, FrameKey]] = {}

    def read(self, frame: Optional[FrameType]) -> Stack:
        """The stack of ``frame``, root first; a too-deep one keeps the root side and ends in ``[truncated]``."""
        # The hot path: one dict lookup per frame, no other allocation than the list and the tuple.
        cache = self._cache
        keys: List[FrameKey] = []
        append = keys.append
        while frame is not None:
            code = frame.f_code
            entry = cache.get(id(code))
            if entry is None:
                entry = self._remember(code)
            append(entry[1])
            frame = frame.f_back
        keys.reverse()
        if len(keys) > self._max_depth:
            keys[self._max_depth - 1 :] = [TRUNCATED]
        return tuple(keys)

    def _remember(self, code: CodeType) -> Tuple[CodeType, FrameKey]:
        if len(self._cache) >= _FRAME_CACHE_LIMIT:
            self._cache.clear()
        entry = self._cache[id(code)] = (code, (_code_name(code), code.co_filename, code.co_firstlineno))
        return entry


class ThreadSampler:
    """Samples all threads but the agent's own at ``rate_hz`` into an :class:`Aggregator`."""

    def __init__(
        self,
        aggregator: Aggregator,
        drops: DropCounter,
        probe: CpuProbe,
        rate_hz: float = 100.0,
        max_threads: int = 64,
        max_depth: int = 128,
        excluded: Callable[[], Set[Optional[int]]] = set,
        auto_labels: bool = True,
        budget: Optional[CpuBudget] = None,
    ) -> None:
        self.aggregator = aggregator
        self.probe = probe
        self.budget = budget
        self._drops = drops
        self._period = 1.0 / rate_hz
        self._max_threads = max_threads
        self._excluded = excluded
        self._auto_labels = auto_labels
        self._stacks = StackReader(max_depth)
        self._idle = IdleClassifier()
        self._native: Dict[int, int] = {}
        self._names: Dict[int, str] = {}
        self._unresolved: Set[int] = set()
        self._native_refreshed_ns = -_NATIVE_REFRESH_NS
        self._labels: Dict[Tuple[LabelKey, str, str], LabelKey] = {}
        self._debt = 0.0  # seconds the schedule is behind: tick costs and late wake-ups
        self._wait_started: Optional[float] = None
        self._waited_for = 0.0
        self._ticks = 0
        self._worker = PeriodicWorker("greenflame-sampler", self.sample, self._next_delay)

    @property
    def rate_hz(self) -> float:
        """The rate sampled at now (lower than configured while over the CPU budget)."""
        return 1.0 / self._period

    def set_rate(self, rate_hz: float) -> None:
        """Sample at ``rate_hz`` from the next tick on."""
        self._period = 1.0 / rate_hz

    @property
    def ident(self) -> Optional[int]:
        """The sampler thread's identifier while it runs."""
        return self._worker.ident

    @property
    def native_id(self) -> Optional[int]:
        """The sampler thread's kernel thread id while it runs."""
        return self._worker.native_id

    def is_alive(self) -> bool:
        """Whether the sampler thread runs."""
        return self._worker.is_alive()

    def start(self) -> None:
        """Start sampling (harmless when already started)."""
        self._wait_started = None
        self._worker.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop sampling, waiting up to ``timeout`` seconds for the thread."""
        self._worker.stop(timeout)

    def sample(self) -> None:
        """Take one sample of every thread (the sampler thread calls this at each tick)."""
        started = time.perf_counter()
        if self._wait_started is not None:
            self._debt += started - self._wait_started - self._waited_for
        now_ns = time.monotonic_ns()
        skip = self._excluded()
        skip.add(threading.get_ident())
        frames = sys._current_frames()
        threads = [(ident, frame) for ident, frame in frames.items() if ident not in skip]
        del frames
        native = self._native_ids([ident for ident, _ in threads], now_ns)
        tasks = threadlabels.running_tasks() if "asyncio" in sys.modules else {}
        probe, read, is_idle, label = self.probe, self._stacks.read, self._idle.is_idle, self._label_key
        probe.begin_tick(now_ns)
        observations: List[Observation] = []
        for ident, frame in self._rotate(threads):
            cpu = probe.on_cpu(native.get(ident), now_ns)
            idle = 0 if cpu else int(is_idle(frame))
            observations.append((read(frame), label(ident, tasks.get(ident)), cpu, idle))
        del threads
        self.aggregator.add(observations)
        self._check_budget()
        self._debt += time.perf_counter() - started

    def _label_key(self, ident: int, task: Optional[object]) -> LabelKey:
        """The labels of thread ``ident`` (or of its running asyncio ``task``), automatic ones included."""
        labels = threadlabels.get(ident)
        task_name = ""
        if task is not None:
            task_labels = threadlabels.for_task(task)
            if task_labels is not None:
                labels = task_labels
            get_name = getattr(task, "get_name", None)
            task_name = str(get_name()) if get_name is not None else ""
        if not self._auto_labels:
            return labels
        thread_name = self._names.get(ident, "")
        cache_key = (labels, thread_name, task_name)
        merged = self._labels.get(cache_key)
        if merged is None:
            if len(self._labels) >= _LABEL_CACHE_LIMIT:
                self._labels.clear()
            values = dict(labels)
            if thread_name:
                values.setdefault("thread", thread_name)
            if task_name:
                values.setdefault("asyncio_task", task_name)
            merged = self._labels[cache_key] = tuple(sorted(values.items()))
        return merged

    def _check_budget(self) -> None:
        budget = self.budget
        if budget is not None and budget.due(time.monotonic()):
            rate = budget.check()
            if rate != self.rate_hz:
                self.set_rate(rate)

    def _rotate(self, threads: List[Tuple[int, FrameType]]) -> List[Tuple[int, FrameType]]:
        """At most ``max_threads`` threads, starting at a different one each tick so none is starved."""
        self._ticks += 1
        if len(threads) <= self._max_threads:
            return threads
        self._drops.add("max_threads", len(threads) - self._max_threads)
        start = self._ticks % len(threads)
        rotated = threads[start:] + threads[:start]
        return rotated[: self._max_threads]

    def _native_ids(self, idents: List[int], now_ns: int) -> Dict[int, int]:
        """Thread identifier -> kernel thread id; refreshed each second and whenever a new thread shows up."""
        stale = now_ns - self._native_refreshed_ns >= _NATIVE_REFRESH_NS
        if stale or any(i not in self._native and i not in self._unresolved for i in idents):
            known = [t for t in threading.enumerate() if t.ident is not None]
            self._native = {t.ident: t.native_id for t in known if t.native_id is not None}  # type: ignore[misc]
            self._names = {t.ident: t.name for t in known}  # type: ignore[misc]
            # Threads started outside ``threading`` have no known kernel id: do not look again each tick.
            self._unresolved = {i for i in idents if i not in self._native}
            self._native_refreshed_ns = now_ns
            self.probe.forget_others(self._native.values())
        return self._native

    def _next_delay(self) -> float:
        period = self._period
        planned = random.uniform(0.5, 1.5) * period
        delay = max(0.0, planned - self._debt)
        # Carry at most one period of debt, so a long stall (a frozen Lambda) causes no burst.
        self._debt = min(period, max(0.0, self._debt - planned))
        self._waited_for = delay
        self._wait_started = time.perf_counter()
        return delay
