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

:class:`ThreadSampler` composes its parts, each in its own module: the timing policy
(:mod:`.trigger_policy`, pure), the thread table (:mod:`.thread_table`), the label merge
(:mod:`.label_merge`), the SIGPROF handler (:mod:`.signal_handler`) and the buffer of what it
recorded (:mod:`.handler_buffer`), the stack reader (:mod:`.stacks`).
"""

from __future__ import annotations

import random
import sys
import threading
import time

from . import frame_guard, thread_imports, threadlabels
from .aggregator import Aggregator
from .budget import CpuBudget
from .cpuprobe import CpuProbe, thread_cpu_ns
from .drops import DropCounter
from .guard import logger, report
from .handler_buffer import HandlerBuffer
from .idle import IdleClassifier
from .label_merge import LabelMerger
from .signal_handler import NO_TASKS, ThreadCapture, build_handler
from .sigprof import ProfSignalTrigger
from .stacks import TRUNCATED, StackReader
from .thread_table import ACTIVE, ThreadTable, active_count
from .trigger_policy import ARM, PAUSE, RETIRE, TriggerPolicy
from .wake_meter import DEFAULT_WAKE_NS
from .wall_timer import WallTimer
from .worker import PeriodicWorker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Callable, Dict, List, Optional, Set, Tuple

    from .aggregator import Observation

__all__ = ["ENGINE", "TRUNCATED", "StackReader", "ThreadSampler"]

ENGINE = "thread"

#: Recorded samples (the handler's and the thread's own) waiting at most before a window's end
#: aggregates them.
PROCESS_AT = 200
#: A restart is measured across a due time at most this far ahead, and this long after it; tried
#: this often while one is wanted (the cheap mode), at most so many times in a sampler's life.
RESTART_LOOK_S = 0.02
RESTART_AFTER_S = 0.002
RESTART_EVERY_S = 0.1
MAX_RESTART_ATTEMPTS = 300

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


def _main_cpu_ns() -> Optional[int]:
    """The main thread's CPU clock, None when unknown."""
    main = threading.main_thread().native_id
    return thread_cpu_ns(main) if main is not None else None


class ThreadSampler:
    """Samples all threads but the agent's own at ``rate_hz`` into an :class:`Aggregator`.

    Samples are taken by the sampler thread, or, with ``signal_trigger``, by the main thread from
    a SIGPROF handler while it runs Python code (:mod:`.sigprof`): whoever finds a sample due
    first takes it. At the end of each window the sampler thread asks the
    :class:`~.trigger_policy.TriggerPolicy` what the handler's coverage of the window means:

    - it covered at least :data:`~.trigger_policy.COVERED` of the window: the thread stops waking
      for each sample and only checks again at the end of the next window (the cheap mode; the
      handler then samples the main thread alone, without ``sys._current_frames()`` or a lock,
      while it is the only thread to sample);
    - it took no sample for :data:`~.trigger_policy.WINDOW_S`: the timer stops, to be tried again
      :data:`~.trigger_policy.RETRY_S` later;
    - it ran although the main thread was mostly idle (each signal woke it through a wake-up fd),
      or the program took SIGPROF over: the timer stops for good;
    - otherwise the thread samples on its own schedule, the handler taking what it finds due.

    ``clock`` (monotonic seconds) and ``draw`` (uniform in [0, 1)) drive the schedule; tests may
    inject their own.
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
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.aggregator = aggregator
        self.probe = probe
        self.budget = budget
        self._drops = drops
        self._clock = clock
        self._tick_lock = threading.Lock()  # one sample at a time, whichever thread takes it
        self._stacks = StackReader(max_depth)
        self._idle = IdleClassifier()
        self._labels = LabelMerger(auto_labels)
        self._buffer = HandlerBuffer(aggregator, self._stacks, self._labels, self._idle, self._tick_lock)
        self._table = ThreadTable(max_threads, excluded, self._buffer.count_drop)
        self._policy = TriggerPolicy(1.0 / rate_hz, draw)
        self._lateness_since = self._clock()  # see take_lateness
        self._restart_attempts = 0  # see _measure_restart
        self._restart_wait_seen = False  # ... one of whose looks found the main thread blocked at a wait
        self._use_signal = signal_trigger
        self._trigger: Optional[ProfSignalTrigger] = None
        self._retired_signal_ns = 0
        self._retired_calls = 0
        self._wall_wanted = True  # until a wall-clock timer could not be had
        self._wall_used = False  # the trigger has counted wall-clock time (see signal_clock)
        self._lambda = False  # invocations are marked: the wall clock stays, whatever the threads
        # The waits the wall-clock handler interrupted: how many were counted, and their cost (each at
        # the trigger's measured wake-up cost when counted, see .wake_meter).
        self._wall_waits_seen = 0
        self._wall_wakes = 0
        self._wall_lock = threading.Lock()
        self._worker = PeriodicWorker(
            "greenflame-sampler", self._thread_tick, self._next_delay, lambda: thread_imports.SAMPLER
        )

    @property
    def rate_hz(self) -> float:
        """The rate sampled at now (lower than configured while over the CPU budget)."""
        return 1.0 / self._policy.period

    def set_rate(self, rate_hz: float) -> None:
        """Sample at ``rate_hz`` from the next sample on."""
        period = 1.0 / rate_hz
        self._policy.set_period(period)
        trigger = self._trigger
        if trigger is not None and trigger.armed:
            trigger.retime(period)

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
        if trigger is not None and trigger.wall_clock:
            cpu += self._wall_wakes_ns()
        return {"calls": calls, "cpu_ns": cpu, "samples": self._buffer.samples()}

    def signal_clock(self) -> Optional[str]:
        """What the SIGPROF handler's timer counted since the last :meth:`take_signal_clock`: ``"wall"`` if
        wall-clock time at any moment (also after :meth:`stop`, for the last report), else ``"cpu"``;
        None when the handler does not sample (not set up, or retired)."""
        trigger = self._trigger
        if trigger is None:
            return None
        return "wall" if trigger.wall_clock or self._wall_used else "cpu"

    def take_signal_clock(self) -> Optional[str]:
        """:meth:`signal_clock`, for a report: the next one starts from the clock counted now."""
        clock = self.signal_clock()
        trigger = self._trigger
        self._wall_used = trigger is not None and trigger.wall_clock
        return clock

    def take_lateness(self) -> float:
        """Due samples per second since the last call that went untaken because the sampler thread woke
        late by more than a period (see ``TriggerPolicy.count_late_wake``)."""
        now = self._clock()
        with self._tick_lock:
            skipped = self._policy.take_late_skipped()
        span, self._lateness_since = now - self._lateness_since, now
        return skipped / span if span > 0 else 0.0

    def wake_cost(self) -> Tuple[int, int]:
        """What a wall-clock signal costs the main thread it wakes from a wait (ns), and from how many
        measured wake-ups (0: the default of :mod:`.wake_meter`)."""
        trigger = self._trigger
        if trigger is None:
            return DEFAULT_WAKE_NS, 0
        return trigger.wake_ns(), trigger.wakes_measured()

    def is_alive(self) -> bool:
        """Whether the sampler thread runs."""
        return self._worker.is_alive()

    def invocation(self, active: bool) -> bool:
        """A Lambda invocation starts (``active``) or ends: see ``TriggerPolicy.invocation_started``.
        Whether the process was between invocations before an ``active`` call (always True otherwise).

        Called from the main thread, whose first invocation moves the SIGPROF trigger to a wall-clock
        timer (:mod:`.wall_timer`): the handler then samples the handler's waits too, on time."""
        trigger = self._trigger
        self._lambda = True
        if not active:
            self._policy.invocation_ended(self._clock())
            if trigger is not None:
                trigger.park()
            return True
        if trigger is not None and not trigger.wall_clock and self._wall_wanted:
            self._use_wall_clock(trigger)
        delay = self._policy.invocation_started(self._clock())
        if trigger is not None and trigger.wall_clock:
            if delay is not None:
                trigger.restart(delay)
        elif trigger is not None and delay is not None and self._policy.signal_mode:
            # Its timer waited far away between invocations. Only in the cheap mode: in the thread
            # mode the timer keeps the CPU time it counted, which short invocations need (a restart
            # at each start took 2 ms invocations from 0.65-0.87 to 0.43-0.63 of 100 Hz). Should
            # the mode turn to the thread's during a wait, the parked timer is rearmed by the
            # window's pause and retry, within RETRY_S.
            trigger.restart(delay)
        return delay is not None

    def _use_wall_clock(self, trigger: ProfSignalTrigger) -> None:
        """Move the armed trigger to a wall-clock timer that signals the main thread, when one can be had
        (``ctypes`` imported by the sampler thread, Linux); otherwise it keeps counting CPU time."""
        if not trigger.armed or sys.modules.get("ctypes") is None:
            return  # tried again at the next invocation (the sampler thread imports it first)
        native = threading.main_thread().native_id
        timer = WallTimer.create(native) if native is not None else None
        if timer is None:
            self._wall_wanted = False
            logger.debug("greenflame: no wall-clock timer: the SIGPROF timer keeps counting CPU time")
            return
        with self._tick_lock:
            trigger.use_wall_clock(timer)
            self._policy.use_wall_clock(True)
            with self._wall_lock:
                self._wall_waits_seen, self._wall_wakes = self._waits_woken(trigger), 0
            self._wall_used = True
        trigger.restart(self._policy.restart_delay(self._clock()))

    def start(self) -> None:
        """Start sampling (harmless when already started); arms SIGPROF when allowed and possible."""
        now = self._clock()
        self._policy.start(now)
        self._table.invalidate()  # refresh at the first tick: the sampler's own thread is new
        self._start_window(now)
        self._worker.start()
        if self._use_signal:
            # The handler needs the thread table (which threads are the agent's) before the sampler
            # thread's first sample: behind a main thread that releases the GIL often and briefly
            # (I/O), the sampler thread can wait seconds for it (the GIL's convoy effect).
            with self._tick_lock:
                self._look_at_threads(force=True)
            self._arm_trigger()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop sampling, waiting up to ``timeout`` seconds for the thread; release the frames held."""
        if self._trigger is not None:
            self._leave_wall_clock(self._trigger)
            self._trigger.disarm()
        self._policy.signal_mode = False
        self._worker.stop(timeout)
        self.process_pending()
        self._buffer.flush_drops(self._drops)
        if not self._worker.is_alive():
            self._stacks.clear()

    def sample(self) -> None:
        """Take one sample of every thread now (the sampler thread's way; also for benchmarks)."""
        self._take(self._clock(), recheck=False)

    def process_pending(self) -> None:
        """Aggregate the samples the handler recorded (the sampler thread, or before a report)."""
        self._buffer.process(self._policy.count_signal_sample)

    # -- who samples when ----------------------------------------------------------------

    def _armed(self) -> bool:
        trigger = self._trigger
        return trigger is not None and trigger.armed

    def _thread_tick(self) -> None:
        woke = self._clock()
        policy = self._policy
        if policy.window_over(woke):
            self.process_pending()  # first: the window's coverage counts the handler's samples
            self._end_window(woke)
        elif len(self._buffer.pending) >= PROCESS_AT:
            self.process_pending()
        # The time again: that work reads files, which lets the main thread run (and its handler take
        # the sample due); judged by the time of waking, a due time the handler took since looked
        # missed, and the main thread was sampled where it went next (a wait).
        now = self._clock()
        if policy.thread_samples(now) and not policy.owe_to_handler(woke, self._armed(), self._main_alone()):
            self._take(now)
        else:
            trigger = self._restart_wanted()
            if trigger is not None:
                self._restart_attempts += 1
                self._measure_restart(trigger)

    def _next_delay(self) -> float:
        delay = self._policy.next_delay(self._clock())
        # In the cheap mode the thread wakes once a window; while a restart is wanted and a look has
        # found the main thread blocked at a wait, more often. (Each wake-up takes the GIL from a
        # busy main thread: a program that never waits must not pay for them.)
        wanted = self._restart_wait_seen and self._restart_wanted() is not None
        return min(delay, RESTART_EVERY_S) if wanted else delay

    def _restart_wanted(self) -> Optional[ProfSignalTrigger]:
        """The trigger, while a restart is to be measured (see :meth:`_measure_restart`)."""
        trigger = self._trigger
        wanted = self._restart_attempts < MAX_RESTART_ATTEMPTS and self._policy.signal_mode
        return trigger if wanted and trigger is not None and trigger.wants_restarts() else None

    def _main_alone(self) -> bool:
        """Whether the main thread is the only thread to sample (the handler's own test)."""
        solo = self._table.solo_active
        return solo >= 0 and ACTIVE is not None and len(ACTIVE) == solo

    def _start_window(self, now: float) -> None:
        trigger = self._trigger
        calls = trigger.calls if trigger is not None else 0
        self._policy.start_window(now, calls, _main_cpu_ns(), self._armed(), self._table.solo_active >= 0)

    def _end_window(self, now: float) -> None:
        """The sampler thread's periodic look: the trigger's errors and coverage, drops, the budget."""
        trigger = self._trigger
        if trigger is not None:
            for where, error in trigger.take_errors():
                report(where, error)
            self._judge_trigger(trigger, now)
        self._buffer.flush_drops(self._drops)
        # In the cheap mode no sample of the thread's does it; a thread that threading does not know
        # (started from C) only shows in the count of frames.
        with self._tick_lock:
            self._look_at_threads(force=False)
        if self._trigger is not None and not self._lambda:
            self._fit_clock(self._trigger)
        if self._policy.budget_due(now):
            self._check_budget()
        self._start_window(now)

    def _measure_restart(self, trigger: ProfSignalTrigger) -> None:
        """While the main thread, alone, is blocked at a wait and a sample is due within
        :data:`RESTART_LOOK_S`: its CPU clock across the due time, if it is still blocked at the same
        wait after it and the handler did not run (the kernel restarted the call after the signal,
        as it does a ``recv`` on a blocking socket). That is what the signal cost it, which the
        handler, running once the call returns, cannot see. Where the signal interrupted a wait that
        Python resumes itself, the handler runs and nothing is measured (the wake meter's pairs do)."""
        main, policy = self._table.main_ident, self._policy
        native = self._table.native.get(main) if main is not None else None
        if main is None or native is None or not policy.signal_mode or not self._main_alone():
            return  # (outside the cheap mode the thread keeps a schedule of its own)
        frame = self._main_frame(main)
        if frame is None or not self._idle.is_idle(frame):
            return
        self._restart_wait_seen = True
        delay = policy.due - self._clock()
        if not 0 < delay < RESTART_LOOK_S:
            return
        offset, calls, before = frame.f_lasti, trigger.calls, thread_cpu_ns(native)
        time.sleep(delay + RESTART_AFTER_S)
        after = thread_cpu_ns(native)
        blocked = self._main_frame(main) is frame and frame.f_lasti == offset and trigger.calls == calls
        if blocked and before is not None and after is not None and policy.due < self._clock():
            trigger.add_restart(after - before)

    def _main_frame(self, main: int) -> Optional[FrameType]:
        """The main thread's frame, the program's (not the SIGPROF handler's, whose lock and timer calls
        would look like waits)."""
        paused = frame_guard.pause()  # another thread's frame is read: see frame_guard
        try:
            frame = sys._current_frames().get(main)
            return _interrupted(frame) if frame is not None else None
        finally:
            frame_guard.resume(paused)

    def _judge_trigger(self, trigger: ProfSignalTrigger, now: float) -> None:
        installed = trigger.installed()
        decision, reason = self._policy.judge(
            now, installed, trigger.armed, trigger.calls, _main_cpu_ns(), self._buffer.main_loop_running
        )
        if decision == RETIRE:
            self._retire_trigger(trigger, reason)
        elif decision == ARM:
            self._arm_trigger()
        elif decision == PAUSE:
            trigger.disarm()

    def _arm_trigger(self) -> None:
        """Set up the SIGPROF trigger (on the calling thread, which must be the main one)."""
        policy = self._policy
        if self._trigger is None:
            reason = ProfSignalTrigger.unusable_reason()
            if reason is not None:
                logger.debug("greenflame: sampling from the sampler thread only: %s", reason)
                return
            capture = ThreadCapture(policy, self._table, self._buffer, self.probe, self._tick_lock)
            handler = build_handler(policy, self._table, self._buffer, capture.record, self._clock)
            self._trigger = ProfSignalTrigger(policy.period, handler, self._idle.known_idle_at)
        policy.armed_at(self._clock())
        self._trigger.retime(policy.period)
        if not self._trigger.arm():
            self._retire_trigger(self._trigger, "SIGPROF or ITIMER_PROF is in use")

    def _fit_clock(self, trigger: ProfSignalTrigger) -> None:
        """Outside Lambda: the wall clock while the main thread is the only thread to sample (its waits
        are then sampled by the main thread itself, on time), the CPU clock while other threads are:
        the sampler thread samples them all in one wake-up, the main thread's waits included."""
        if not trigger.armed:
            return
        solo = self._main_alone()
        if solo and not trigger.wall_clock and self._wall_wanted:
            self._use_wall_clock(trigger)
        elif not solo and trigger.wall_clock:
            self._leave_wall_clock(trigger)
            self._arm_trigger()

    def _leave_wall_clock(self, trigger: ProfSignalTrigger) -> None:
        """Back to the CPU-time timer (stopped or retired): the wall-clock timer is deleted, its cost
        kept; the next invocation may set up a new one."""
        if trigger.wall_clock:
            self._retired_signal_ns += self._wall_wakes_ns()
            trigger.close()
            self._policy.use_wall_clock(False)

    def _wall_wakes_ns(self) -> int:
        """What the waits the wall-clock handler interrupted cost the main thread since the wall clock
        started: each new one at the trigger's wake-up cost (measured in the process, see .wake_meter)."""
        with self._wall_lock:
            trigger = self._trigger
            if trigger is None:
                return self._wall_wakes
            waits = self._waits_woken(trigger)
            if waits > self._wall_waits_seen:
                self._wall_wakes += (waits - self._wall_waits_seen) * trigger.wake_ns()
                self._wall_waits_seen = waits
            return self._wall_wakes

    def _waits_woken(self, trigger: ProfSignalTrigger) -> int:
        """How many times the handler's signals woke the main thread from a wait so far: its idle
        samples, and the probes that found it waiting."""
        return self._buffer.idle_taken + trigger.probe_wakes()

    def _retire_trigger(self, trigger: ProfSignalTrigger, why: str) -> None:
        self._leave_wall_clock(trigger)
        trigger.disarm()
        self._retired_signal_ns += trigger.cpu_ns()
        self._retired_calls += trigger.calls
        self._trigger = None
        self._policy.signal_mode = False
        self._use_signal = False
        logger.debug("greenflame: SIGPROF trigger off: %s", why)

    def _check_budget(self) -> None:
        budget = self.budget
        if budget is not None:
            rate = budget.check()
            if rate != self.rate_hz:
                self.set_rate(rate)

    # -- one sample ----------------------------------------------------------------------

    def _take(self, now: float, recheck: bool = True) -> None:
        """Sample every thread now (the sampler thread), unless ``recheck`` and the SIGPROF handler has
        just taken the sample that was due."""
        with self._tick_lock:
            policy = self._policy
            if recheck:
                if now < policy.due:
                    return
                policy.count_late_wake(now)
            policy.schedule(now)
            paused = frame_guard.pause()
            try:
                observations = self._read_threads(now)
            finally:
                frame_guard.resume(paused)
            if observations:
                self.aggregator.add(observations)

    def _read_threads(self, now: float) -> Optional[List[Observation]]:
        """Read the threads' frames (the tick lock held, the collector paused: see :mod:`.frame_guard`):
        their observations, or None when the main thread alone was recorded for the next batch."""
        now_ns = time.monotonic_ns()
        active = active_count()
        frames = sys._current_frames()
        self._refresh_if_due(frames, now_ns, active)
        self.probe.begin_tick(now_ns)
        if self._main_alone() and not (threadlabels.running_tasks() if "asyncio" in sys.modules else NO_TASKS):
            # (A task's labels may be gone by the time a batch is aggregated: those are aggregated now.)
            main = self._table.main_ident
            frame = frames.get(main) if main is not None else None
            if frame is not None and main is not None:
                self._record_solo(now, now_ns, main, _interrupted(frame) if self._trigger is not None else frame)
                return None
        threads = self._table.select(frames)
        del frames
        return self._observe(threads, now_ns)

    def _record_solo(self, now: float, now_ns: int, main: int, frame: FrameType) -> None:
        """Record a sample of the main thread, the only thread to sample, for the next batch (as the
        SIGPROF handler does): a record costs a few microseconds, an aggregated sample tens."""
        native = self._table.native.get(main)
        if self._idle.is_idle(frame):
            self.probe.off_cpu(native, now_ns)
            cpu = 0
        else:
            cpu = self.probe.on_cpu(native, now_ns)
        codes = []
        walk: Optional[FrameType] = frame
        while walk is not None:
            codes.append(walk.f_code)
            walk = walk.f_back
        record = (main, codes, cpu, frame.f_code, frame.f_lasti, threadlabels.by_thread().get(main, ()), None)
        self._buffer.pending.append((now, [record], 0))

    def _observe(self, threads: List[Tuple[int, FrameType]], now_ns: int) -> List[Observation]:
        """One observation per thread: stack, labels, on a CPU, idle."""
        native, on_cpu, off_cpu, read = self._table.native, self.probe.on_cpu, self.probe.off_cpu, self._stacks.read
        is_idle, labels_of = self._idle.is_idle, self._labels.labels_of
        tasks = threadlabels.running_tasks() if "asyncio" in sys.modules else NO_TASKS
        by_thread = threadlabels.by_thread()
        observations: List[Observation] = []
        append = observations.append
        main = self._table.main_ident if self._trigger is not None else None
        for ident, frame in threads:
            if ident == main:
                frame = _interrupted(frame)
            # Idle first: a thread waiting in sleep or recv is off a CPU, although its clock moved
            # since its previous sample (it ran before the wait).
            if is_idle(frame):
                off_cpu(native.get(ident), now_ns)
                cpu, idle = 0, 1
            else:
                cpu, idle = on_cpu(native.get(ident), now_ns), 0
            labels = labels_of(ident, by_thread.get(ident, ()), tasks.get(ident) if tasks else None)
            append((read(frame, ident), labels, cpu, idle))
        return observations

    # -- the thread table -----------------------------------------------------------------

    def _refresh_if_due(self, frames: Dict[int, FrameType], now_ns: int, active: int) -> None:
        if self._table.due(frames, now_ns):
            self._refresh(frames, now_ns, active)

    def _look_at_threads(self, force: bool) -> None:
        """Refresh the thread table from a fresh look at the threads, if due or ``force`` (the
        collector paused while their frames are made: see :mod:`.frame_guard`)."""
        active = active_count()  # before the frames: see ThreadTable.refresh
        paused = frame_guard.pause()
        try:
            frames, now_ns = sys._current_frames(), time.monotonic_ns()
            if force or self._table.due(frames, now_ns):
                self._refresh(frames, now_ns, active)
        finally:
            frame_guard.resume(paused)

    def _refresh(self, frames: Dict[int, FrameType], now_ns: int, active: int) -> None:
        table = self._table
        table.refresh(frames, now_ns, active, self._worker.idents())
        self._labels.rename(table.names)  # thread names may have changed
        self.probe.forget_others(table.native.values())
        self._stacks.forget_others(set(frames))
