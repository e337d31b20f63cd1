"""The ``thread`` engine: samples every thread's stack with ``sys._current_frames()``.

Samples are due at random intervals of 0.5 to 1.5 times the period (mean: the period), so that
the sampler cannot lock on to a periodic pattern in the program (aliasing); a sample taken late
(behind a busy GIL) brings the next one closer, so the mean rate stays close to ``rate_hz``.
A daemon thread takes them, or the main thread from a SIGPROF handler while it runs Python code
(:mod:`.sigprof`), which costs a small fraction of a thread wake-up; see :class:`ThreadSampler`.

Per sampled thread a sample records: the stack (root first, at most ``max_depth`` frames), the
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
from collections import deque
from types import CodeType, FrameType

from . import threadlabels
from .aggregator import Aggregator
from .budget import CHECK_INTERVAL_S, CpuBudget
from .cpuprobe import CpuProbe, thread_cpu_ns
from .drops import DropCounter
from .guard import logger, report
from .idle import IdleClassifier
from .sigprof import ProfSignalTrigger
from .worker import PeriodicWorker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

    from .aggregator import FrameKey, Observation, Stack
    from .threadlabels import LabelKey

    #: What the handler records per thread: ident, code objects (leaf first), on a CPU, the leaf's
    #: code and instruction offset (for the idle test), the thread's labels, its running task.
    _Captured = Tuple[int, List[CodeType], int, CodeType, int, LabelKey, Optional[object]]
    #: One sample the handler took: when (monotonic seconds), and what of each thread.
    _Pending = Tuple[float, List[_Captured]]

ENGINE = "thread"
TRUNCATED: FrameKey = ("[truncated]", "", 0)

_FRAME_CACHE_LIMIT = 50_000
_LABEL_CACHE_LIMIT = 10_000
_NO_TASKS: Dict[int, object] = {}
_NATIVE_REFRESH_NS = 1_000_000_000
#: threading's live table of the threads it started (or adopted), read only for its length (atomic):
#: a change tells the SIGPROF handler that the main thread may no longer be alone.
_ACTIVE: Optional[Dict[int, object]] = getattr(threading, "_active", None)
_BY_THREAD = threadlabels.by_thread()
# Bound once: the SIGPROF handler runs cold, where each module attribute looked up costs.
_random = random.random
_monotonic = time.monotonic
_MODULES = sys.modules
_PENDING_LIMIT = 1_000  # samples the handler may record before the thread aggregates them

#: How often the sampler thread looks at what the SIGPROF handler did (and wakes at least).
WINDOW_S = 0.5
#: ... and while the thread samples itself with the timer armed: the cheap mode starts sooner.
THREAD_WINDOW_S = 0.1
#: ... and in the cheap mode while the main thread is the only thread to sample: when it stops
#: running Python, no other thread's samples are lost until the sampler thread looks again.
SOLO_WINDOW_S = 1.0
#: Share of the window the handler must have sampled on time for the thread to stop sampling.
COVERED = 0.9
#: When the handler took no sample for :data:`WINDOW_S`, the timer stops for this long.
RETRY_S = 5.0
#: The main thread's CPU share of a window below which it counts as idle: if the handler still ran
#: for at least :data:`WOKEN_SHARE` of the samples due, each signal woke it (through a wake-up fd,
#: as event loops set up), which costs more than the sampler thread: the timer stops for good.
IDLE_MAIN = 0.2
WOKEN_SHARE = 0.25
#: ... and when the main thread used less CPU than this per handler call (it only woke for it),
#: in two windows in a row.
WOKEN_CPU_S = 0.0005
#: ITIMER_PROF fires on the kernel's scheduler tick (4 ms at 250 Hz), after the CPU time elapsed.
_TIMER_SLACK_S = 0.005

if sys.version_info >= (3, 11):

    def _code_name(code: CodeType) -> str:
        return code.co_qualname

else:  # pragma: no cover - exercised on Python 3.9 and 3.10

    def _code_name(code: CodeType) -> str:
        return code.co_name


# CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR (stable values; ``inspect``
# has them but costs milliseconds to import).
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x100 | 0x200


def _active_count() -> int:
    """The length of threading's table of live threads, -1 when this Python has none."""
    return len(_ACTIVE) if _ACTIVE is not None else -1


#: The SIGPROF handler's entry point, and how deep under it the agent's own calls go at most.
_HANDLER_CODE = ProfSignalTrigger._handle.__code__
_HANDLER_DEPTH = 8


def _interrupted(frame: FrameType) -> FrameType:
    """The frame the SIGPROF handler interrupted when the main thread's ``frame`` is inside the handler
    (the sampler thread can take the GIL while the handler runs), else ``frame``: the agent's own
    frames never show."""
    walk: Optional[FrameType] = frame
    for _ in range(_HANDLER_DEPTH):
        if walk is None:
            break
        if walk.f_code is _HANDLER_CODE:
            return walk.f_back or frame
        walk = walk.f_back
    return frame


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

    def from_codes(self, codes: List[CodeType]) -> Stack:
        """The stack of a thread recorded as its frames' code objects, leaf first (by the SIGPROF handler)."""
        known, remember = self._codes, self._remember
        keys = [(known.get(id(code)) or remember(code))[1] for code in reversed(codes)]
        if len(keys) > self._max_depth:
            return (*keys[: self._max_depth - 1], TRUNCATED)
        return tuple(keys)

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
    """Samples all threads but the agent's own at ``rate_hz`` into an :class:`Aggregator`.

    Samples are taken by the sampler thread, or, with ``signal_trigger``, by the main thread from
    a SIGPROF handler while it runs Python code (:mod:`.sigprof`): whoever finds a sample due
    first takes it. Every :data:`WINDOW_S` the sampler thread looks at what the handler did in
    the window:

    - it covered at least :data:`COVERED` of the window (no gap between its samples longer than
      a normal interval; the timer's granularity makes no gap): the thread stops waking for each
      sample and only checks again at the end of the next window (the cheap mode; the window is
      :data:`SOLO_WINDOW_S` long while the main thread is the only thread to sample, and the
      handler then samples it alone, without ``sys._current_frames()`` or a lock);
    - it took no sample for :data:`WINDOW_S` (the main thread waits, or the process is idle):
      the timer stops, to be tried again :data:`RETRY_S` later;
    - it ran although the main thread was mostly idle (each signal woke it, through a wake-up
      file descriptor such as event loops set up, which costs more than the thread): the timer
      stops for good;
    - otherwise the thread samples on its own schedule, the handler taking what it finds due.
    """

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
        signal_trigger: bool = False,
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
        self._main_ident: Optional[int] = None
        # len(threading._active) when the main thread was found to be the only thread to sample, or -1:
        # while the length holds, the SIGPROF handler samples the main thread alone.
        self._solo_active = -1
        self._refresh_at_ns = 0
        self._refresh_wanted = False
        self._budget_at = 0.0
        self._labels: Dict[Tuple[LabelKey, str, str], LabelKey] = {}
        self._thread_labels: Dict[int, Tuple[LabelKey, LabelKey]] = {}  # ident -> (recorded, merged)
        self._tick_lock = threading.Lock()  # one sample at a time, whichever thread takes it
        self._due = 0.0  # monotonic time the next sample is due
        self._ticks = 0
        # Counted where the DropCounter's lock must not be waited for (the signal handler).
        self._pending_drops: Dict[str, int] = {}
        self._pending: Deque[_Pending] = deque()  # samples the handler recorded
        self._use_signal = signal_trigger
        self._trigger: Optional[ProfSignalTrigger] = None
        self._signal_mode = False
        self._retry_at: Optional[float] = None
        self._retired_signal_ns = 0
        self._retired_calls = 0
        self._woken_windows = 0
        self._main_loop_running = False  # seen from the handler: asyncio's loop runs in the main thread
        self._signal_samples = 0
        self._window_started = 0.0
        self._window_end = 0.0
        self._window_signal = 0  # samples the handler took in this window
        self._window_calls = 0  # the trigger's handler calls at the window's start
        self._main_cpu: Optional[int] = None  # the main thread's CPU ns at the window's start
        self._window_gaps = 0.0  # seconds of the window between handler samples beyond normal intervals
        self._last_signal_sample = 0.0
        self._worker = PeriodicWorker("greenflame-sampler", self._thread_tick, self._next_delay)

    @property
    def rate_hz(self) -> float:
        """The rate sampled at now (lower than configured while over the CPU budget)."""
        return 1.0 / self._period

    def set_rate(self, rate_hz: float) -> None:
        """Sample at ``rate_hz`` from the next sample on."""
        self._period = 1.0 / rate_hz
        trigger = self._trigger
        if trigger is not None and trigger.armed:
            trigger.retime(self._period)

    @property
    def ident(self) -> Optional[int]:
        """The sampler thread's identifier while it runs."""
        return self._worker.ident

    @property
    def native_id(self) -> Optional[int]:
        """The sampler thread's kernel thread id while it runs."""
        return self._worker.native_id

    def signal_stats(self) -> Dict[str, int]:
        """Since the start: SIGPROF handler ``calls``, the ``cpu_ns`` they cost the main thread (time in
        the handler plus an estimate of each delivery) and the ``samples`` they took."""
        trigger = self._trigger
        calls = self._retired_calls + (trigger.calls if trigger is not None else 0)
        cpu = self._retired_signal_ns + (trigger.cpu_ns() if trigger is not None else 0)
        return {"calls": calls, "cpu_ns": cpu, "samples": self._signal_samples + len(self._pending)}

    def is_alive(self) -> bool:
        """Whether the sampler thread runs."""
        return self._worker.is_alive()

    def start(self) -> None:
        """Start sampling (harmless when already started); arms SIGPROF when allowed and possible."""
        now = time.monotonic()
        self._due = now + (0.5 + random.random()) * self._period
        self._thread_count = -1  # refresh at the first tick: the sampler's own thread is new
        self._budget_at = now + CHECK_INTERVAL_S
        self._signal_mode = False
        self._start_window(now)
        self._worker.start()
        if self._use_signal:
            # The handler needs the thread table (which threads are the agent's) before the sampler
            # thread's first sample: behind a main thread that releases the GIL often and briefly
            # (I/O), the sampler thread can wait seconds for it (the GIL's convoy effect).
            with self._tick_lock:
                self._refresh_now()
            self._arm_trigger()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop sampling, waiting up to ``timeout`` seconds for the thread; release the frames held."""
        if self._trigger is not None:
            self._trigger.disarm()
        self._signal_mode = False
        self._worker.stop(timeout)
        self.process_pending()
        self._flush_pending_drops()
        if not self._worker.is_alive():
            self._stacks.clear()

    def sample(self) -> None:
        """Take one sample of every thread now (the sampler thread's way; also for benchmarks)."""
        self._take(time.monotonic(), recheck=False)

    # -- who samples when ----------------------------------------------------------------

    def _thread_tick(self) -> None:
        now = time.monotonic()
        self.process_pending()  # first: the window's coverage counts the handler's samples
        if now >= self._window_end:
            self._end_window(now)
        if not self._signal_mode and now >= self._thread_due():
            self._take(now)

    def _next_delay(self) -> float:
        now = time.monotonic()
        until_window = self._window_end - now
        if self._signal_mode:
            return max(0.0, until_window)
        return max(0.0, min(self._thread_due() - now, until_window))

    def _thread_due(self) -> float:
        """When the thread takes the next sample: when it is due, or, while the SIGPROF timer runs, a
        little later, leaving it to the handler if the main thread runs (the timer fires on the
        kernel's tick, a few ms late)."""
        trigger = self._trigger
        return self._due + _TIMER_SLACK_S if trigger is not None and trigger.armed else self._due

    def _on_signal(self, frame: Optional[FrameType]) -> float:
        """The SIGPROF handler's work, in the main thread: a sample when one is due; the seconds until
        the next one is due.

        As little as possible runs here, and in as few calls as possible, because it runs cold (the
        program's work between two samples evicts the agent's code and data from the CPU caches,
        and every statement costs a microsecond or more): no lock waited for, no import, no
        aggregation, no bookkeeping (the sampler thread derives it from the samples' times). Code
        objects are recorded rather than frames, which would keep the locals of returned calls
        alive until the thread gets to them.
        """
        now = _monotonic()
        due = self._due
        if now < due or self._thread_count < 0:
            return due - now
        if "asyncio" in _MODULES and _MODULES["asyncio"].events._get_running_loop() is not None:
            self._main_loop_running = True  # the thread retires the trigger at the window's end
            return self._period
        solo = self._solo_active
        if solo < 0 or frame is None or _ACTIVE is None or len(_ACTIVE) != solo:
            self._capture(now, frame)  # other threads to sample
            return self._due - now
        # The main thread is the only one to sample: its frame is at hand, so no sys._current_frames()
        # (which visits every thread), no thread table, and no lock: the sampler thread re-checks the
        # due time under its lock before it samples (see _take()). _schedule(), inlined.
        period = self._period
        self._due = due = max(due, now - period) + (0.5 + _random()) * period
        if len(self._pending) >= _PENDING_LIMIT:
            self._count_drop("signal_backlog", 1)
            return due - now
        codes = []
        walk: Optional[FrameType] = frame
        while walk is not None:
            codes.append(walk.f_code)
            walk = walk.f_back
        main = self._main_ident or 0
        self._pending.append((now, [(main, codes, 1, frame.f_code, frame.f_lasti, _BY_THREAD.get(main, ()), None)]))
        return due - now

    def _capture(self, now: float, main_frame: Optional[FrameType]) -> None:
        """In the handler: record a sample of every thread but the agent's as plain data, for the thread
        to aggregate later; skipped when the sampler thread is sampling or aggregating (the timer
        tries again in a moment)."""
        if not self._tick_lock.acquire(blocking=False):
            return
        try:
            self._capture_locked(now, main_frame)
        finally:
            self._tick_lock.release()

    def _capture_locked(self, now: float, main_frame: Optional[FrameType]) -> None:
        self._schedule(now)
        pending = self._pending
        if len(pending) >= _PENDING_LIMIT:
            self._count_drop("signal_backlog", 1)
            return
        frames = sys._current_frames()
        main = threading.get_ident()
        if main_frame is None:
            frames.pop(main, None)
        else:
            frames[main] = main_frame
        if len(frames) != self._thread_count:
            self._refresh_wanted = True  # enumerating threads takes a lock: the thread does it
        skip = self._skip
        threads = [(ident, frame) for ident, frame in frames.items() if ident not in skip]
        del frames
        if len(threads) > self._max_threads:
            threads = self._rotate(threads)
        now_ns = time.monotonic_ns()
        self.probe.begin_tick(now_ns)
        native, on_cpu, by_thread = self._native, self.probe.on_cpu, threadlabels.by_thread()
        tasks = threadlabels.running_tasks() if "asyncio" in sys.modules else _NO_TASKS
        records: List[_Captured] = []
        for ident, frame in threads:
            # The main thread runs this handler: it is on a CPU, no clock needed.
            cpu = 1 if ident == main else on_cpu(native.get(ident), now_ns)
            leaf, offset = frame.f_code, frame.f_lasti
            codes = []
            walk: Optional[FrameType] = frame
            while walk is not None:
                codes.append(walk.f_code)
                walk = walk.f_back
            task = tasks.get(ident) if tasks else None
            records.append((ident, codes, cpu, leaf, offset, by_thread.get(ident, ()), task))
        pending.append((now, records))

    def process_pending(self) -> None:
        """Aggregate the samples the handler recorded (the sampler thread, or before a report)."""
        if not self._pending:
            return
        is_idle_at = self._idle.is_idle_at
        for _, records in list(self._pending):  # classify new call sites first, outside the lock
            for record in records:
                if not record[2]:
                    is_idle_at(record[3], record[4])
        with self._tick_lock:
            # Counted by the code objects' ids first (cheap to hash, and alive while their records
            # are), so that a stack of frame keys, slow to build and to hash, is made once per batch.
            counted: Dict[Tuple[Tuple[int, ...], int, LabelKey, Optional[object], int, int], List[Any]] = {}
            pending = self._pending
            while pending:
                taken_at, records = pending.popleft()
                self._count_signal_sample(taken_at)
                for ident, codes, cpu, leaf, offset, raw, task in records:
                    idle = 0 if cpu else int(is_idle_at(leaf, offset))
                    key = (tuple(map(id, codes)), ident, raw, task, cpu, idle)
                    entry = counted.get(key)
                    if entry is None:
                        counted[key] = [codes, 1]
                    else:
                        entry[1] += 1
            from_codes, labels_of = self._stacks.from_codes, self._labels_of
            self.aggregator.add_counts(
                (from_codes(codes), labels_of(ident, raw, task), (count, count * cpu, count * idle))
                for (_, ident, raw, task, cpu, idle), (codes, count) in counted.items()
            )

    def _count_signal_sample(self, taken_at: float) -> None:
        """Account for a sample the handler took at ``taken_at``: in the totals and in the window's
        coverage (the handler itself does no bookkeeping, every statement there costs)."""
        self._signal_samples += 1
        if taken_at >= self._window_started:
            self._window_signal += 1
            self._window_gaps += self._gap(self._last_signal_sample, taken_at)
        if taken_at > self._last_signal_sample:
            self._last_signal_sample = taken_at

    def _gap(self, since: float, now: float) -> float:
        """How much of ``since``..``now`` the handler could not have sampled: beyond the longest normal
        interval (1.5 periods) and the timer's own granularity (a few ms of CPU time)."""
        return max(0.0, now - max(since, self._window_started) - 1.5 * self._period - _TIMER_SLACK_S)

    def _schedule(self, now: float) -> None:
        """The next due time: a random interval of 0.5 to 1.5 periods after the previous one, so the mean
        rate holds when samples come late (a busy GIL), carrying at most one period of lateness."""
        period = self._period
        self._due = max(self._due, now - period) + (0.5 + random.random()) * period

    def _start_window(self, now: float) -> None:
        self._window_started = now
        self._window_end = now + self._window_length()
        self._window_signal = 0
        trigger = self._trigger
        self._window_calls = trigger.calls if trigger is not None else 0
        main = threading.main_thread().native_id
        self._main_cpu = thread_cpu_ns(main) if main is not None else None
        self._window_gaps = 0.0

    def _window_length(self) -> float:
        if self._signal_mode:
            return SOLO_WINDOW_S if self._solo_active >= 0 else WINDOW_S
        trigger = self._trigger
        # Without the timer there is no mode to switch to soon: a window's look costs ~0.2 ms here.
        return THREAD_WINDOW_S if trigger is not None and trigger.armed else WINDOW_S

    def _end_window(self, now: float) -> None:
        """The sampler thread's periodic look: the trigger's errors and coverage, drops, the budget."""
        trigger = self._trigger
        if trigger is not None:
            for where, error in trigger.take_errors():
                report(where, error)
            self._judge_trigger(trigger, now)
        self._flush_pending_drops()
        self._idle.classify_pending()
        # In the cheap mode no sample of the thread's does it; a thread that threading does not know
        # (started from C) only shows in the count of frames.
        with self._tick_lock:
            active = _active_count()
            self._refresh_if_due(sys._current_frames(), time.monotonic_ns(), active)
        if now >= self._budget_at:
            self._check_budget(now)
        self._start_window(now)

    def _judge_trigger(self, trigger: ProfSignalTrigger, now: float) -> None:
        if not trigger.installed():
            self._retire_trigger(trigger, "the program installed its own SIGPROF handler")
            return
        if not trigger.armed:
            if self._retry_at is not None and now >= self._retry_at:
                self._arm_trigger()
            return
        taken, calls = self._window_signal, trigger.calls - self._window_calls
        length = now - self._window_started
        expected = length / self._period
        # The share of the window in which the handler sampled on time (the main thread ran Python).
        covered = 1.0 - (self._window_gaps + self._gap(self._last_signal_sample, now)) / length if length > 0 else 0.0
        if self._main_loop_running:
            self._retire_trigger(trigger, "an asyncio event loop runs in the main thread (its wake-up fd)")
        elif self._woken(calls, expected, length):
            self._retire_trigger(trigger, "SIGPROF wakes the idle main thread (a wake-up fd, as event loops set)")
        elif taken and covered >= COVERED:
            self._signal_mode = True
        else:
            self._signal_mode = False
            if now - self._last_signal_sample >= WINDOW_S:
                trigger.disarm()  # the main thread does not run Python: the thread samples
                self._retry_at = now + RETRY_S

    def _woken(self, calls: int, expected: float, length: float) -> bool:
        """Whether the handler ran although the main thread was idle, in this window and the previous."""
        share = self._main_share(length)
        woken = calls >= WOKEN_SHARE * expected and share < IDLE_MAIN and share * length < WOKEN_CPU_S * calls
        self._woken_windows = self._woken_windows + 1 if woken else 0
        return self._woken_windows >= 2

    def _main_share(self, length: float) -> float:
        """The share of the window's ``length`` seconds the main thread spent on a CPU (1.0 if unknown)."""
        main = threading.main_thread().native_id
        started = self._main_cpu
        now = thread_cpu_ns(main) if main is not None else None
        if started is None or now is None or length <= 0:
            return 1.0
        return (now - started) / 1e9 / length

    def _arm_trigger(self) -> None:
        """Set up the SIGPROF trigger (on the calling thread, which must be the main one)."""
        if self._trigger is None:
            reason = ProfSignalTrigger.unusable_reason()
            if reason is not None:
                logger.debug("greenflame: sampling from the sampler thread only: %s", reason)
                return
            self._trigger = ProfSignalTrigger(self._period, self._on_signal)
        self._retry_at = None
        self._last_signal_sample = time.monotonic()  # the handler gets a whole window to show up
        self._trigger.retime(self._period)
        if not self._trigger.arm():
            self._retire_trigger(self._trigger, "SIGPROF or ITIMER_PROF is in use")

    def _retire_trigger(self, trigger: ProfSignalTrigger, why: str) -> None:
        trigger.disarm()
        self._retired_signal_ns += trigger.cpu_ns()
        self._retired_calls += trigger.calls
        self._trigger = None
        self._signal_mode = False
        self._use_signal = False
        logger.debug("greenflame: SIGPROF trigger off: %s", why)

    # -- one sample ----------------------------------------------------------------------

    def _take(self, now: float, recheck: bool = True) -> None:
        """Sample every thread now (the sampler thread), unless ``recheck`` and the SIGPROF handler has
        just taken the sample that was due."""
        with self._tick_lock:
            if recheck and now < self._due:
                return
            self._schedule(now)
            now_ns = time.monotonic_ns()
            active = _active_count()
            frames = sys._current_frames()
            self._refresh_if_due(frames, now_ns, active)
            skip = self._skip
            threads = [(ident, frame) for ident, frame in frames.items() if ident not in skip]
            del frames
            if len(threads) > self._max_threads:
                threads = self._rotate(threads)
            self.probe.begin_tick(now_ns)
            observations = self._observe(threads, now_ns)
            del threads
            self.aggregator.add(observations)

    def _observe(self, threads: List[Tuple[int, FrameType]], now_ns: int) -> List[Observation]:
        """One observation per thread: stack, labels, on a CPU, idle."""
        native, on_cpu, read, is_idle = self._native, self.probe.on_cpu, self._stacks.read, self._idle.is_idle_known
        tasks = threadlabels.running_tasks() if "asyncio" in sys.modules else _NO_TASKS
        by_thread = threadlabels.by_thread()
        observations: List[Observation] = []
        append = observations.append
        main = self._main_ident if self._trigger is not None else None
        for ident, frame in threads:
            if ident == main:
                frame = _interrupted(frame)
            cpu = on_cpu(native.get(ident), now_ns)
            labels = self._labels_of(ident, by_thread.get(ident, ()), tasks.get(ident) if tasks else None)
            append((read(frame, ident), labels, cpu, 0 if cpu else int(is_idle(frame))))
        return observations

    def _labels_of(self, ident: int, raw: LabelKey, task: Optional[object]) -> LabelKey:
        """The labels of a sample of thread ``ident``: its recorded set ``raw`` (or its running asyncio
        ``task``'s), with the automatic ones."""
        if task is not None:
            return self._label_key(ident, raw, task)
        # Fast path: the merged labels of a thread outside tasks, until its label set changes.
        entry = self._thread_labels.get(ident)
        if entry is None or entry[0] is not raw:
            entry = self._thread_labels[ident] = (raw, self._label_key(ident, raw, None))
        return entry[1]

    def _label_key(self, ident: int, labels: LabelKey, task: Optional[object]) -> LabelKey:
        """Thread ``ident``'s ``labels`` (or its running asyncio ``task``'s), automatic ones included."""
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

    def _check_budget(self, now: float) -> None:
        self._budget_at = now + CHECK_INTERVAL_S
        budget = self.budget
        if budget is not None:
            rate = budget.check()
            if rate != self.rate_hz:
                self.set_rate(rate)

    def _count_drop(self, reason: str, count: int) -> None:
        if count > 0:
            pending = self._pending_drops
            pending[reason] = pending.get(reason, 0) + count

    def _flush_pending_drops(self) -> None:
        pending, self._pending_drops = self._pending_drops, {}
        for reason, count in pending.items():
            self._drops.add(reason, count)

    def _rotate(self, threads: List[Tuple[int, FrameType]]) -> List[Tuple[int, FrameType]]:
        """At most ``max_threads`` threads, starting at a different one each tick so none is starved."""
        self._ticks += 1
        self._count_drop("max_threads", len(threads) - self._max_threads)
        start = self._ticks % len(threads)
        rotated = threads[start:] + threads[:start]
        return rotated[: self._max_threads]

    def _refresh_if_due(self, frames: Dict[int, FrameType], now_ns: int, active: int) -> None:
        """:meth:`_refresh` when asked for, once a second, or when the number of threads changed."""
        if self._refresh_wanted or now_ns >= self._refresh_at_ns or len(frames) != self._thread_count:
            self._refresh(frames, now_ns, active)

    def _refresh_now(self) -> None:
        active = _active_count()
        self._refresh(sys._current_frames(), time.monotonic_ns(), active)

    def _refresh(self, frames: Dict[int, FrameType], now_ns: int, active: int) -> None:
        """Once a second, or when the number of threads changed: kernel ids, names, the threads to skip,
        whether the main thread is alone (``active``: the length of threading's table, read before
        ``frames``, so that a thread registered in between makes the two disagree, not agree)."""
        known = [t for t in threading.enumerate() if t.ident is not None]
        self._native = {t.ident: t.native_id for t in known if t.native_id is not None}  # type: ignore[misc]
        self._names = {t.ident: t.name for t in known}  # type: ignore[misc]
        self._thread_labels = {}  # thread names may have changed
        self._skip = self._excluded() | {self._worker.ident}  # the agent's threads, this sampler's own
        self._thread_count = len(frames)
        main = self._main_ident = threading.main_thread().ident
        alone = all(ident == main or ident in self._skip for ident in frames)
        self._solo_active = active if alone and active >= 0 else -1
        self._refresh_at_ns = now_ns + _NATIVE_REFRESH_NS
        self._refresh_wanted = False
        self.probe.forget_others(self._native.values())
        self._stacks.forget_others(set(frames))
