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

from . import threadlabels
from .aggregator import Aggregator
from .budget import CpuBudget
from .cpuprobe import CpuProbe
from .drops import DropCounter
from .idle import IdleClassifier
from .worker import PeriodicWorker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Set, Tuple

    from .aggregator import FrameKey, Observation, Stack
    from .threadlabels import LabelKey

ENGINE = "thread"
TRUNCATED: FrameKey = ("[truncated]", "", 0)

_FRAME_CACHE_LIMIT = 50_000
_LABEL_CACHE_LIMIT = 10_000
_BUDGET_CHECK_NS = 1_000_000_000
_NO_TASKS: Dict[int, object] = {}
_NATIVE_REFRESH_NS = 1_000_000_000

if sys.version_info >= (3, 11):

    def _code_name(code: CodeType) -> str:
        return code.co_qualname

else:  # pragma: no cover - exercised on Python 3.9 and 3.10

    def _code_name(code: CodeType) -> str:
        return code.co_name


# CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR (stable values; ``inspect``
# has them but costs milliseconds to import).
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x100 | 0x200


class _ThreadStack:
    """The frames and stack of one thread at its previous sample, for an incremental re-read."""

    __slots__ = ("frames", "index", "keys", "stack")

    def __init__(self) -> None:
        self.frames: List[FrameType] = []  # root first
        self.keys: List[FrameKey] = []
        self.index: Dict[int, int] = {}  # id(frame) -> position in ``frames``
        # The stack returned last time: the same object while nothing changed, so the aggregator's
        # dict compares it by identity instead of frame by frame.
        self.stack: Stack = ()


class StackReader:
    """Turns a thread's innermost frame into a root-first stack of frame keys, at most ``max_depth`` long.

    The hot path of the sampler, so it is incremental: a thread's stack rarely changes but at its
    leaf end between two samples. Walking up from the innermost frame, the first frame that was
    already on that thread's stack at its previous sample ends the walk, and the keys from there
    to the root are reused. That frame must be the very same object (identity, not just its code),
    and not a generator's or coroutine's frame (those can be resumed under another caller); an
    ordinary frame's callers cannot change while it is alive, so the reuse is exact.

    To make the identity check sound, the frames of each thread's previous sample are referenced
    until the next sample of that thread: a frame that returned in between (and the locals it
    held) is released at most one sampling interval later than without the agent.
    """

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth
        # id(code) -> (code, key, is a generator). Holding the code object keeps its id from being
        # reused while cached, and lets every sample share one key tuple per function.
        self._codes: Dict[int, Tuple[CodeType, FrameKey, bool]] = {}
        self._threads: Dict[int, _ThreadStack] = {}

    def read(self, frame: Optional[FrameType], thread: int = 0) -> Stack:
        """The stack of ``frame`` (the innermost frame of ``thread``), root first; a too-deep one keeps
        the root side and ends in ``[truncated]``."""
        state = self._threads.get(thread)
        if state is None:
            state = self._threads[thread] = _ThreadStack()
        codes, index, frames = self._codes, state.index, state.frames
        new: List[FrameType] = []
        keep = 0
        while frame is not None:
            code = frame.f_code
            entry = codes.get(id(code))
            if entry is None:
                entry = self._remember(code)
            position = index.get(id(frame))
            if position is not None and frames[position] is frame and not entry[2]:
                keep = position + 1
                break
            new.append(frame)
            frame = frame.f_back
        if keep < len(frames) or new:
            self._replace(state, keep, new)
            keys = state.keys
            if len(keys) > self._max_depth:
                state.stack = (*keys[: self._max_depth - 1], TRUNCATED)
            else:
                state.stack = tuple(keys)
        return state.stack

    def _replace(self, state: _ThreadStack, keep: int, new: List[FrameType]) -> None:
        """Keep the first ``keep`` frames of the previous stack and put ``new`` (leaf first) on top."""
        frames, index, keys, codes = state.frames, state.index, state.keys, self._codes
        for gone in frames[keep:]:
            index.pop(id(gone), None)
        del frames[keep:], keys[keep:]
        for frame in reversed(new):
            index[id(frame)] = len(frames)
            frames.append(frame)
            keys.append(codes[id(frame.f_code)][1])

    def forget_others(self, alive: Set[int]) -> None:
        """Release the frames of threads not in ``alive``."""
        for thread in [t for t in self._threads if t not in alive]:
            del self._threads[thread]

    def clear(self) -> None:
        """Release every frame held (when sampling stops)."""
        self._threads = {}

    def _remember(self, code: CodeType) -> Tuple[CodeType, FrameKey, bool]:
        if len(self._codes) >= _FRAME_CACHE_LIMIT:
            self._codes.clear()
        key = (_code_name(code), code.co_filename, code.co_firstlineno)
        entry = self._codes[id(code)] = (code, key, bool(code.co_flags & _GENERATOR_FLAGS))
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
        self._skip: Set[Optional[int]] = set()
        self._thread_count = -1
        self._refresh_at_ns = 0
        self._budget_at_ns = 0
        self._labels: Dict[Tuple[LabelKey, str, str], LabelKey] = {}
        self._thread_labels: Dict[int, Tuple[LabelKey, LabelKey]] = {}  # ident -> (recorded, merged)
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
        self._thread_count = -1  # refresh at the first tick: the sampler's own thread is new
        self._budget_at_ns = time.monotonic_ns() + _BUDGET_CHECK_NS
        self._worker.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop sampling, waiting up to ``timeout`` seconds for the thread; release the frames held."""
        self._worker.stop(timeout)
        if not self._worker.is_alive():
            self._stacks.clear()

    def sample(self) -> None:
        """Take one sample of every thread (the sampler thread calls this at each tick)."""
        started = time.perf_counter()
        if self._wait_started is not None:
            self._debt += started - self._wait_started - self._waited_for
        now_ns = time.monotonic_ns()
        frames = sys._current_frames()
        if now_ns >= self._refresh_at_ns or len(frames) != self._thread_count:
            self._refresh(frames, now_ns)
        skip = self._skip
        threads = [(ident, frame) for ident, frame in frames.items() if ident not in skip]
        del frames
        if len(threads) > self._max_threads:
            threads = self._rotate(threads)
        self.probe.begin_tick(now_ns)
        self.aggregator.add(self._observe(threads, now_ns))
        del threads
        if now_ns >= self._budget_at_ns:
            self._check_budget(now_ns)
        self._debt += time.perf_counter() - started

    def _observe(self, threads: List[Tuple[int, FrameType]], now_ns: int) -> List[Observation]:
        """One observation per thread: stack, labels, on a CPU, idle."""
        native, on_cpu, read, is_idle = self._native, self.probe.on_cpu, self._stacks.read, self._idle.is_idle
        tasks = threadlabels.running_tasks() if "asyncio" in sys.modules else _NO_TASKS
        by_thread, known = threadlabels.by_thread(), self._thread_labels
        observations: List[Observation] = []
        append = observations.append
        for ident, frame in threads:
            cpu = on_cpu(native.get(ident), now_ns)
            task = tasks.get(ident) if tasks else None
            if task is None:
                # Fast path: the merged labels of a thread outside tasks, until its label set changes.
                raw = by_thread.get(ident, ())
                entry = known.get(ident)
                if entry is None or entry[0] is not raw:
                    entry = known[ident] = (raw, self._label_key(ident, None))
                labels = entry[1]
            else:
                labels = self._label_key(ident, task)
            append((read(frame, ident), labels, cpu, 0 if cpu else int(is_idle(frame))))
        return observations

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

    def _check_budget(self, now_ns: int) -> None:
        self._budget_at_ns = now_ns + _BUDGET_CHECK_NS
        budget = self.budget
        if budget is not None:
            rate = budget.check()
            if rate != self.rate_hz:
                self.set_rate(rate)

    def _rotate(self, threads: List[Tuple[int, FrameType]]) -> List[Tuple[int, FrameType]]:
        """At most ``max_threads`` threads, starting at a different one each tick so none is starved."""
        self._ticks += 1
        self._drops.add("max_threads", len(threads) - self._max_threads)
        start = self._ticks % len(threads)
        rotated = threads[start:] + threads[:start]
        return rotated[: self._max_threads]

    def _refresh(self, frames: Dict[int, FrameType], now_ns: int) -> None:
        """Once a second, or when the number of threads changed: kernel ids, names, the threads to skip."""
        known = [t for t in threading.enumerate() if t.ident is not None]
        self._native = {t.ident: t.native_id for t in known if t.native_id is not None}  # type: ignore[misc]
        self._names = {t.ident: t.name for t in known}  # type: ignore[misc]
        self._thread_labels = {}  # thread names may have changed
        self._skip = self._excluded() | {threading.get_ident()}
        self._thread_count = len(frames)
        self._refresh_at_ns = now_ns + _NATIVE_REFRESH_NS
        self.probe.forget_others(self._native.values())
        self._stacks.forget_others(set(frames))

    def _next_delay(self) -> float:
        period = self._period
        planned = (0.5 + random.random()) * period
        delay = max(0.0, planned - self._debt)
        # Carry at most one period of debt, so a long stall (a frozen Lambda) causes no burst.
        self._debt = min(period, max(0.0, self._debt - planned))
        self._waited_for = delay
        self._wait_started = time.perf_counter()
        return delay
