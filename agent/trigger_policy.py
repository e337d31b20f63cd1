"""When the thread engine samples, and whether the SIGPROF trigger is worth keeping: a pure policy.

:class:`TriggerPolicy` holds the schedule (the next due time, drawn at random intervals of 0.5
to 1.5 periods) and the sampler thread's windows (how much of each the SIGPROF handler covered).
It reads no clock and draws no random number of its own: every method is given the current time
(``now``, monotonic seconds) and what was measured (handler calls, the main thread's CPU), and
random draws come from the ``draw`` callable it was built with. It decides; the
:class:`~greenflame.agent.sampler.ThreadSampler` acts (arms, disarms or retires the timer), which
is what lets the thresholds below be tested with a fake clock.

The SIGPROF handler's lone-main-thread path reads and advances :attr:`TriggerPolicy.due` itself,
inlining :meth:`TriggerPolicy.schedule` (see :func:`greenflame.agent.signal_handler.build_handler`).
"""

from __future__ import annotations

from .budget import CHECK_INTERVAL_S

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional, Tuple

#: How often the sampler thread looks at what the SIGPROF handler did (and wakes at least).
WINDOW_S = 0.5
#: ... and while the thread samples itself with the timer armed: the cheap mode starts sooner. Long
#: enough to count the handler's samples (about 25 due at 100 Hz; a window's look costs a wake-up).
THREAD_WINDOW_S = 0.25
#: ... and in the cheap mode while the main thread is the only thread to sample: when it stops
#: running Python, no other thread's samples are lost until the sampler thread looks again.
SOLO_WINDOW_S = 1.0
#: Share of the window the handler must have sampled on time for the thread to stop sampling.
COVERED = 0.9
#: ... and share of the samples due it must have taken: lower, as its count varies by chance (its
#: intervals are random, rounded to the kernel's tick: about 1.5 samples in 25).
COUNT_COVERED = 0.85
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
TIMER_SLACK_S = 0.005
#: ... while the wall-clock timer fires when due: a handler this late was kept from running (the
#: main thread inside a system call restarted after the signal, such as a blocking ``recv``), which
#: counts against the window so that the sampler thread takes over such waits.
WALL_SLACK_S = 0.001
#: A sampler thread that wakes this much later than it planned waited for the GIL: a thread ran
#: Python code at the due time. When that can only be the main thread (the only thread to sample),
#: the sample is owed to the SIGPROF handler rather than taken when the GIL comes free, which is
#: always where the main thread starts to wait (sleep, recv): taking it there would charge the
#: wait with samples that were due while the main thread ran.
LATE_S = 0.0005
#: Lambda: while the process waits between invocations the next sample is due this far away, so
#: that neither the thread nor the handler samples the wait (the schedule resumes with the next one).
OUTSIDE_S = 86400.0
#: Samples owed to the handler at most; what it has not taken by the window's end is forgotten.
MAX_OWED = 4
#: Outside the cheap mode the handler's timer fires at least every this share of a period of CPU
#: time (the kernel rounds it to its tick), so that an owed or due sample waits at most a tick of
#: the main thread's CPU time rather than until the CPU time of a whole period has passed.
HANDLER_STEP = 0.25

#: With the wall-clock timer the handler samples on time whenever the main thread runs Python or
#: waits in an interruptible call; the sampler thread only takes a sample the handler left this
#: share of a period past its due time (the main thread is inside a long C call).
WALL_GRACE = 0.5

# What :meth:`TriggerPolicy.judge` decides for the window that ended.
#: The timer is off and not due for another try: nothing to do.
WAIT = "wait"
#: The timer is off and its retry time came: arm it again.
ARM = "arm"
#: The handler covered the window: the cheap mode (the thread only looks once a window).
SIGNAL_MODE = "signal-mode"
#: The handler covered part of the window: the thread samples, the handler takes what it finds due.
THREAD_MODE = "thread-mode"
#: The handler took no sample for a whole :data:`WINDOW_S`: disarm, try again :data:`RETRY_S` later.
PAUSE = "pause"
#: The timer must stop for good (the reason comes with it).
RETIRE = "retire"

#: Why the trigger retires.
OWN_HANDLER = "the program installed its own SIGPROF handler"
MAIN_LOOP = "an asyncio event loop runs in the main thread (its wake-up fd)"
WOKEN = "SIGPROF wakes the idle main thread (a wake-up fd, as event loops set)"


class TriggerPolicy:
    """The schedule of samples and the judgement of each window; pure (see the module's docstring).

    ``draw`` returns uniform random numbers in [0, 1) (``random.random`` in production).
    """

    def __init__(self, period_s: float, draw: Callable[[], float]) -> None:
        #: Seconds between samples on average (1 / rate).
        self.period = period_s
        #: Monotonic time the next sample is due; the SIGPROF handler advances it too.
        self.due = 0.0
        #: Whether the handler covers the windows (the cheap mode: the thread takes no sample).
        self.signal_mode = False
        #: Samples the thread left to the handler (see :data:`LATE_S`); the handler takes one at each
        #: call while some are owed.
        self.owed = 0
        #: The longest CPU time the handler's timer waits (see :data:`HANDLER_STEP`).
        self.handler_step = HANDLER_STEP * period_s
        #: When the sampler thread planned to wake (monotonic seconds).
        self.planned_wake = 0.0
        self._slept_by_plan = False  # ... past due times, by choice (the handler's window, between invocations)
        #: Whether the handler's timer counts wall-clock time (Lambda): see :meth:`use_wall_clock`.
        self.wall_clock = False
        self.draw = draw
        self._retry_at: Optional[float] = None
        self._budget_at = 0.0
        self._woken_windows = 0
        self._last_signal_sample = 0.0
        self._window_started = 0.0
        self._window_end = 0.0
        self._window_signal = 0  # samples the handler took in this window
        self._window_calls = 0  # the trigger's handler calls at the window's start
        self._window_gaps = 0.0  # seconds of the window between handler samples beyond normal intervals
        self._main_cpu: Optional[int] = None  # the main thread's CPU ns at the window's start
        self._outside_since: Optional[float] = None  # Lambda: when the process left its invocation
        self._due_left = 0.0  # Lambda, between invocations: what was left of the schedule at the end
        self._owed_left = 0  # ... and the samples still owed to the handler
        self._window_outside = 0.0  # seconds of the window spent between invocations
        #: Due samples the sampler thread left untaken because it woke late (see :meth:`count_late_wake`),
        #: since :meth:`take_late_skipped`: seconds of schedule over the period then.
        self.late_skipped = 0.0

    # -- the schedule -------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Sampling starts at ``now``: the first sample is due within 0.5 to 1.5 periods."""
        self.due = now + (0.5 + self.draw()) * self.period
        self._budget_at = now + CHECK_INTERVAL_S
        self.signal_mode = False

    def schedule(self, now: float) -> None:
        """The next due time: a random interval of 0.5 to 1.5 periods after the previous one, so the mean
        rate holds when samples come late (a busy GIL), carrying at most one period of lateness."""
        period = self.period
        self.due = max(self.due, now - period) + (0.5 + self.draw()) * period

    def count_late_wake(self, now: float) -> None:
        """The sampler thread samples at ``now``, before :meth:`schedule`: what :meth:`schedule` is about
        to drop (lateness beyond a period) counts as skipped when the thread meant to be awake then
        (it waited for the GIL behind busy threads), not when it slept through it by plan (the
        handler's windows, the wait between invocations), where the handler sampled or nothing ran."""
        late_from = max(self.due, self.planned_wake) if self._slept_by_plan else self.due
        skipped = now - self.period - late_from
        if skipped > 0:
            self.late_skipped += skipped / self.period  # at the rate of the moment: the budget moves it

    def take_late_skipped(self) -> float:
        """The due samples counted by :meth:`count_late_wake` since the last call; resets."""
        skipped, self.late_skipped = self.late_skipped, 0.0
        return skipped

    def thread_samples(self, now: float) -> bool:
        """Whether the sampler thread takes (or leaves to the handler) a sample at ``now``."""
        return not self.signal_mode and now >= self._thread_due()  # between invocations it is due far away

    def _thread_due(self) -> float:
        """When the sampler thread takes the sample due: at once, or, with the wall-clock timer, once
        the handler is :data:`WALL_GRACE` of a period late."""
        return self.due + WALL_GRACE * self.period if self.wall_clock else self.due

    def use_wall_clock(self, wall: bool) -> None:
        """The handler's timer counts wall-clock time (``wall``) or CPU time from now on. On the wall
        clock the handler also samples the main thread's waits: it is never judged to wake the main
        thread for nothing, never paused, owes no sample, and its timer fires when a sample is due
        (a CPU-time timer must fire more often, see :data:`HANDLER_STEP`). The wall clock starts in the
        cheap mode: the sampler thread sleeps until the window's end judges the handler's coverage."""
        self.wall_clock = wall
        self.owed = self._owed_left = 0
        if wall:
            self.signal_mode = True  # the handler samples waits too: trusted until a window says otherwise
        self.handler_step = self._handler_step()

    def _handler_step(self) -> float:
        if self.signal_mode:
            return float("inf")
        return self.period if self.wall_clock else HANDLER_STEP * self.period

    # -- Lambda invocations ---------------------------------------------------------------

    def invocation_ended(self, now: float) -> None:
        """The process left an invocation at ``now`` (Lambda): until the next starts it waits for an
        event, unbilled, and frozen on Lambda. Neither the thread nor the handler samples that wait,
        and the window's coverage leaves it out (the handler cannot sample a process that does not
        run). The schedule runs on invocation time: what is left of it, and the samples owed to the
        handler, wait for the next invocation, so that invocations shorter than a period get their
        share of samples rather than those that happen to span a due time."""
        if self._outside_since is None:
            self._outside_since = now
            self._due_left = min(max(0.0, self.due - now), 1.5 * self.period)
            self._owed_left, self.owed = self.owed, 0
            self.due = now + OUTSIDE_S

    def invocation_started(self, now: float) -> Optional[float]:
        """An invocation starts at ``now``: the wait since the last one ends, the schedule resumes.
        Returns the seconds (of CPU time) the handler's timer should wait now (in the cheap mode it
        was left far away between invocations), or None when no wait ended."""
        since = self._outside_since
        if since is None:
            return None
        self._outside_since = None
        self._window_outside += max(0.0, now - max(since, self._window_started))
        # The handler gets the invocation's start as a fresh start, as when its timer is armed.
        self._last_signal_sample = max(self._last_signal_sample, now - self.period)
        self.due, self.owed = now + self._due_left, self._owed_left
        if self.wall_clock:
            return self._due_left  # a wall-clock timer fires when due: an early signal would wake a wait
        return 0.0 if self.owed else min(self._due_left, self.period)

    def restart_delay(self, now: float) -> float:
        """Seconds until the sample due (none owed), for a timer started at ``now``."""
        return max(0.0, self.due - now)

    def owe_to_handler(self, now: float, armed: bool, solo: bool) -> bool:
        """Whether the sample due at ``now`` goes to the handler (see :data:`LATE_S`): the timer is
        ``armed``, the main thread is the only thread to sample (``solo``: no other thread can have
        held the GIL) and the thread woke late. The schedule moves on either way."""
        if self.wall_clock or not (armed and solo) or now - self.planned_wake <= LATE_S or self.owed >= MAX_OWED:
            return False
        self.owed += 1
        self.schedule(now)
        return True

    def next_delay(self, now: float) -> float:
        """Seconds the sampler thread may sleep: until its next sample or the window's end (between
        invocations: until the next sample were the next invocation to start now)."""
        until_window = self._window_end - now
        if self.signal_mode:
            delay = max(0.0, until_window)
        elif self._outside_since is not None:
            delay = max(0.0, min(max(self._due_left, 0.5 * self.period), until_window))
        else:
            delay = max(0.0, min(self._thread_due() - now, until_window))
        self.planned_wake = now + delay
        self._slept_by_plan = self.signal_mode or self._outside_since is not None
        return delay

    def set_period(self, period_s: float) -> None:
        """Sample every ``period_s`` seconds on average from the next sample on."""
        self.period = period_s
        self.handler_step = self._handler_step()

    def budget_due(self, now: float) -> bool:
        """Whether the CPU budget is to be checked at ``now`` (then not again for :data:`CHECK_INTERVAL_S`)."""
        if now < self._budget_at:
            return False
        self._budget_at = now + CHECK_INTERVAL_S
        return True

    # -- windows --------------------------------------------------------------------------

    def window_over(self, now: float) -> bool:
        """Whether the current window has ended at ``now``."""
        return now >= self._window_end

    def start_window(self, now: float, calls: int, main_cpu_ns: Optional[int], armed: bool, solo: bool) -> None:
        """A window starts at ``now``: the trigger's handler ``calls`` so far, the main thread's CPU
        clock; its length follows the mode, whether the timer is ``armed`` and whether the main
        thread is the only thread to sample (``solo``)."""
        if not self._window_signal:
            self.owed = 0  # the handler took nothing for a whole window: the main thread stopped running Python
        self._window_started = now
        self._window_end = now + self.window_length(armed, solo)
        self._window_signal = 0
        self._window_calls = calls
        self._main_cpu = main_cpu_ns
        self._window_gaps = 0.0
        self._window_outside = 0.0

    def window_length(self, armed: bool, solo: bool) -> float:
        """Seconds until the sampler thread looks again (see the constants)."""
        if self.signal_mode:
            return SOLO_WINDOW_S if solo else WINDOW_S
        # Without the timer there is no mode to switch to soon: a window's look costs ~0.2 ms here.
        return THREAD_WINDOW_S if armed else WINDOW_S

    def count_signal_sample(self, taken_at: float, weight: int = 1) -> None:
        """Account for a sample the handler took at ``taken_at`` in the window's coverage (the handler
        itself does no bookkeeping, every statement there costs). A ``weight`` above 1 (wall clock)
        stands for the due times of the time before it: no gap."""
        if taken_at >= self._window_started:
            self._window_signal += weight
            if weight == 1:
                self._window_gaps += self._gap(self._last_signal_sample, taken_at)
        if taken_at > self._last_signal_sample:
            self._last_signal_sample = taken_at

    def armed_at(self, now: float) -> None:
        """The timer was armed at ``now``: the handler gets a whole window to show up."""
        self._retry_at = None
        self._last_signal_sample = now

    def judge(
        self, now: float, installed: bool, armed: bool, calls: int, main_cpu_ns: Optional[int], main_loop: bool
    ) -> Tuple[str, str]:
        """What to do with the trigger at the end of the window, ``(decision, reason)``.

        ``installed``: SIGPROF still calls the trigger; ``armed``: its timer runs; ``calls``: its
        handler calls so far; ``main_cpu_ns``: the main thread's CPU clock now (None if unknown);
        ``main_loop``: the handler saw an asyncio loop running in the main thread. The reason is
        only given with :data:`RETIRE`.
        """
        if not installed:
            return RETIRE, OWN_HANDLER
        if not armed:
            return (ARM if self._retry_at is not None and now >= self._retry_at else WAIT), ""
        if main_loop:
            return RETIRE, MAIN_LOOP
        # Time between invocations is left out: the window ends, for the judgement, where it left.
        outside = self._window_outside
        if self._outside_since is not None:
            outside += now - max(self._window_started, self._outside_since)
            now = max(self._window_started, self._outside_since)
        length = now - self._window_started - self._window_outside
        if outside and length < 2 * self.period:
            # Nearly all of the window waited for invocations: nothing to judge, the mode stays.
            return (SIGNAL_MODE if self.signal_mode else THREAD_MODE), ""
        share = self._main_share(main_cpu_ns, length)
        if not self.wall_clock and self._woken(calls - self._window_calls, length / self.period, share, length):
            return RETIRE, WOKEN
        if self._window_signal and self._covered(now, length) >= COVERED:
            self.signal_mode = True
            self.handler_step = self._handler_step()  # the handler keeps the schedule: its timer fires when due
            return SIGNAL_MODE, ""
        self.signal_mode = False
        self.handler_step = self._handler_step()
        if not self.wall_clock and now - self._last_signal_sample >= WINDOW_S:
            self._retry_at = now + RETRY_S  # the main thread does not run Python: the thread samples
            return PAUSE, ""
        return THREAD_MODE, ""

    def _covered(self, now: float, length: float) -> float:
        """The share of the window's samples the handler took: the lower of the share of the time in
        which it sampled on time and the share of the due samples it took. The count matters for
        off-CPU periods shorter than a gap (a 10 ms ``recv`` between 10 ms of CPU): ITIMER_PROF counts
        CPU time, so the handler never samples them, yet they leave no long gap."""
        if length <= 0:
            return 0.0
        on_time = 1.0 - (self._window_gaps + self._gap(self._last_signal_sample, now)) / length
        return min(on_time, self._window_signal * self.period / length * COVERED / COUNT_COVERED)

    def _gap(self, since: float, now: float) -> float:
        """How much of ``since``..``now`` the handler could not have sampled: beyond the longest normal
        interval (1.5 periods) and the timer's own granularity (a few ms of CPU time)."""
        slack = WALL_SLACK_S if self.wall_clock else TIMER_SLACK_S
        return max(0.0, now - max(since, self._window_started) - 1.5 * self.period - slack)

    def _woken(self, calls: int, expected: float, share: float, length: float) -> bool:
        """Whether the handler ran although the main thread was idle (a CPU ``share`` of the window's
        ``length`` seconds), in this window and the previous."""
        woken = calls >= WOKEN_SHARE * expected and share < IDLE_MAIN and share * length < WOKEN_CPU_S * calls
        self._woken_windows = self._woken_windows + 1 if woken else 0
        return self._woken_windows >= 2

    def _main_share(self, main_cpu_ns: Optional[int], length: float) -> float:
        """The share of the window's ``length`` seconds the main thread spent on a CPU (1.0 if unknown)."""
        started = self._main_cpu
        if started is None or main_cpu_ns is None or length <= 0:
            return 1.0
        return (main_cpu_ns - started) / 1e9 / length
