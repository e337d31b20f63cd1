"""The thread engine's timing policy, driven by a fake clock and a fixed random source: no threads,
no signals. Each test names the threshold it checks (see greenflame.agent.trigger_policy)."""

from __future__ import annotations

import random
from typing import List, Optional

import pytest

from greenflame.agent.budget import CHECK_INTERVAL_S
from greenflame.agent.trigger_policy import (
    ARM,
    COUNT_COVERED,
    HANDLER_STEP,
    LATE_S,
    MAIN_LOOP,
    MAX_OWED,
    OWN_HANDLER,
    PAUSE,
    RETIRE,
    RETRY_S,
    SIGNAL_MODE,
    SOLO_WINDOW_S,
    THREAD_MODE,
    THREAD_WINDOW_S,
    WAIT,
    WALL_GRACE,
    WINDOW_S,
    WOKEN,
    WOKEN_CPU_S,
    TriggerPolicy,
)

PERIOD = 0.01  # 100 Hz


class FakeClock:
    """Monotonic seconds that only move when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def policy_at(clock: FakeClock, draw: float = 0.5, armed: bool = True, solo: bool = False) -> TriggerPolicy:
    """A policy started at the clock's time, its first window open (the draw fixed: intervals of 1 period)."""
    policy = TriggerPolicy(PERIOD, lambda: draw)
    policy.start(clock())
    policy.armed_at(clock())
    policy.start_window(clock(), calls=0, main_cpu_ns=None, armed=armed, solo=solo)
    return policy


def handler_samples(policy: TriggerPolicy, clock: FakeClock, until: float) -> int:
    """The handler samples every period from now until ``until`` seconds later; its calls."""
    calls = 0
    end = clock() + until
    while clock() + PERIOD <= end + 1e-9:
        policy.count_signal_sample(clock.advance(PERIOD))
        calls += 1
    return calls


def judge(policy: TriggerPolicy, clock: FakeClock, calls: int = 0, main_cpu_ns: Optional[int] = None) -> str:
    decision, _ = policy.judge(clock(), True, True, calls, main_cpu_ns, False)
    return decision


# -- the schedule ---------------------------------------------------------------------------


def test_the_first_sample_is_due_within_half_to_one_and_a_half_periods() -> None:
    clock = FakeClock()
    for draw, expected in ((0.0, 0.5), (0.5, 1.0), (0.999, 1.499)):
        policy = TriggerPolicy(PERIOD, lambda: draw)  # noqa: B023 - called at once
        policy.start(clock())
        assert policy.due == pytest.approx(clock() + expected * PERIOD)


def test_each_due_time_follows_the_previous_one_by_a_random_interval() -> None:
    clock = FakeClock()
    source = random.Random(7)
    policy = TriggerPolicy(PERIOD, source.random)
    policy.start(clock())
    intervals: List[float] = []
    for _ in range(2000):
        previous = policy.due
        clock.now = previous  # sampled exactly on time
        policy.schedule(clock())
        intervals.append(policy.due - previous)
    assert min(intervals) >= 0.5 * PERIOD and max(intervals) < 1.5 * PERIOD
    assert sum(intervals) / len(intervals) == pytest.approx(PERIOD, rel=0.03)  # the mean rate holds


def test_a_late_sample_brings_the_next_closer_but_carries_at_most_one_period() -> None:
    clock = FakeClock()
    policy = policy_at(clock, draw=0.5)
    due = policy.due
    clock.now = due + 0.4 * PERIOD  # a little late: the next is due one period after the old due time
    policy.schedule(clock())
    assert policy.due == pytest.approx(due + PERIOD)
    clock.now = policy.due + 10 * PERIOD  # very late (a frozen process): one period of lateness kept
    policy.schedule(clock())
    assert policy.due == pytest.approx(clock() - PERIOD + PERIOD)


def test_what_a_late_wake_skips_is_counted_but_not_what_the_thread_slept_through_by_plan() -> None:
    clock = FakeClock()
    policy = policy_at(clock, draw=0.5)  # every interval one period
    for _ in range(10):  # planned to wake at the due time and did: nothing skipped
        policy.next_delay(clock())
        clock.now = policy.due
        policy.count_late_wake(clock())
        policy.schedule(clock())
    assert policy.take_late_skipped() == 0.0
    for _ in range(10):  # planned to wake at the due time, woke two periods after it (the GIL)
        policy.next_delay(clock())
        clock.now = policy.due + 2 * PERIOD
        policy.count_late_wake(clock())
        policy.schedule(clock())
    assert policy.take_late_skipped() == pytest.approx(10)  # samples: one period carried each time
    assert policy.take_late_skipped() == 0.0  # taken: reset
    policy.signal_mode = True  # the handler's window: the thread sleeps to its end, past due times
    policy.start_window(clock(), calls=0, main_cpu_ns=None, armed=True, solo=False)
    policy.next_delay(clock())
    clock.now = policy.planned_wake
    policy.signal_mode = False
    policy.count_late_wake(clock())
    assert policy.planned_wake > policy.due + PERIOD and policy.take_late_skipped() == 0.0
    policy.schedule(clock())
    clock.now = policy.due + 3 * PERIOD  # already late as it planned: a zero sleep, then the GIL
    policy.next_delay(clock())
    clock.now += 2 * PERIOD
    policy.count_late_wake(clock())
    assert policy.take_late_skipped() == pytest.approx(4)


def test_the_thread_samples_when_due_unless_the_handler_covers_the_windows() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    assert not policy.thread_samples(clock.advance(policy.due - clock() - 1e-6))
    assert policy.thread_samples(clock.advance(1e-6))
    policy.signal_mode = True  # the cheap mode: the thread takes no sample at all
    assert not policy.thread_samples(clock())


def _woken(policy: TriggerPolicy, clock: FakeClock, late_s: float) -> float:
    """The thread plans to wake at the due time and wakes ``late_s`` after it; the time then."""
    delay = policy.next_delay(clock())
    return clock.advance(delay + late_s)


@pytest.mark.parametrize(
    ("late_s", "armed", "solo", "owed"),
    [
        (LATE_S * 2, True, True, True),  # the main thread held the GIL at the due time: the handler's
        (LATE_S / 2, True, True, False),  # on time: the GIL was free, the main thread was waiting
        (LATE_S * 2, False, True, False),  # no timer to take it
        (LATE_S * 2, True, False, False),  # another thread may have held the GIL: the thread samples
    ],
)
def test_a_late_thread_leaves_the_sample_to_the_handler_only_when_the_main_thread_held_the_gil(
    late_s: float, armed: bool, solo: bool, owed: bool
) -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    due = policy.due
    now = _woken(policy, clock, late_s)
    assert policy.thread_samples(now)
    assert policy.owe_to_handler(now, armed, solo) == owed
    assert policy.owed == int(owed)
    assert (policy.due > due) == owed  # owed: the schedule moved on; else the thread takes it now


def test_owed_samples_are_bounded_and_forgotten_after_a_window_without_the_handler() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    for _ in range(MAX_OWED + 2):
        policy.owe_to_handler(_woken(policy, clock, LATE_S * 2), True, True)
    assert policy.owed == MAX_OWED
    policy.count_signal_sample(clock())  # the handler took one in this window: the rest stay owed
    policy.owed -= 1
    policy.start_window(clock(), 0, None, True, True)
    assert policy.owed == MAX_OWED - 1
    policy.start_window(clock.advance(THREAD_WINDOW_S), 0, None, True, True)  # a window with none
    assert policy.owed == 0


def test_the_handlers_timer_steps_in_a_quarter_period_outside_the_cheap_mode() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    assert policy.handler_step == pytest.approx(HANDLER_STEP * PERIOD)
    calls = handler_samples(policy, clock, WINDOW_S)
    assert judge(policy, clock, calls) == SIGNAL_MODE and policy.handler_step == float("inf")
    policy.set_period(2 * PERIOD)
    assert policy.handler_step == float("inf")
    clock.advance(WINDOW_S)  # nothing sampled: back to the thread's schedule
    assert judge(policy, clock, 0) != SIGNAL_MODE and policy.handler_step == pytest.approx(HANDLER_STEP * 2 * PERIOD)


def test_the_thread_sleeps_until_its_next_sample_or_the_window_end_never_less_than_zero() -> None:
    clock = FakeClock()
    policy = policy_at(clock, armed=False)
    assert policy.next_delay(clock()) == pytest.approx(policy.due - clock())
    assert policy.planned_wake == pytest.approx(policy.due)
    policy.signal_mode = True
    assert policy.next_delay(clock()) == pytest.approx(WINDOW_S)
    clock.advance(10.0)
    assert policy.next_delay(clock()) == 0.0


def test_the_budget_is_checked_once_per_interval() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    assert not policy.budget_due(clock.advance(CHECK_INTERVAL_S * 0.9))
    assert policy.budget_due(clock.advance(CHECK_INTERVAL_S * 0.1))
    assert not policy.budget_due(clock.advance(CHECK_INTERVAL_S * 0.5))
    assert policy.budget_due(clock.advance(CHECK_INTERVAL_S * 0.5))


# -- window lengths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signal_mode", "armed", "solo", "length"),
    [
        (True, True, True, SOLO_WINDOW_S),  # the cheap mode, the main thread alone
        (True, True, False, WINDOW_S),  # the cheap mode, other threads too
        (False, True, False, THREAD_WINDOW_S),  # the thread samples, the timer armed: look again soon
        (False, False, False, WINDOW_S),  # no timer: nothing to switch to
    ],
)
def test_window_lengths(signal_mode: bool, armed: bool, solo: bool, length: float) -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    policy.signal_mode = signal_mode
    policy.start_window(clock(), 0, None, armed, solo)
    assert policy.window_length(armed, solo) == length
    assert not policy.window_over(clock.advance(length - 1e-6))
    assert policy.window_over(clock.advance(1e-6))


# -- judging a window ---------------------------------------------------------------------------


def test_a_window_the_handler_covered_throughout_is_the_cheap_mode() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    calls = handler_samples(policy, clock, WINDOW_S)
    assert judge(policy, clock, calls) == SIGNAL_MODE and policy.signal_mode


@pytest.mark.parametrize(("sampled_s", "decision"), [(WINDOW_S - 0.04, SIGNAL_MODE), (WINDOW_S - 0.08, THREAD_MODE)])
def test_a_window_is_covered_from_ninety_percent_of_its_time_on(sampled_s: float, decision: str) -> None:
    # Sampled every period for ``sampled_s`` of a 0.5 s window, then nothing: the gap at the end,
    # beyond one and a half periods and the timer's slack, leaves 96% or 88% of the window on time.
    clock = FakeClock()
    policy = policy_at(clock)
    started = clock()
    handler_samples(policy, clock, sampled_s)
    clock.now = started + WINDOW_S
    calls = policy._window_signal
    assert judge(policy, clock, calls) == decision
    assert policy.signal_mode == (decision == SIGNAL_MODE)


@pytest.mark.parametrize(("interval", "decision"), [(1.1, SIGNAL_MODE), (1.25, THREAD_MODE)])
def test_a_window_is_covered_from_85_percent_of_the_samples_due_on(interval: float, decision: str) -> None:
    # The handler samples every ``interval`` periods (short off-CPU periods between): no gap, so only
    # the count decides: 88% or 80% of the samples due.
    clock = FakeClock()
    policy = policy_at(clock)
    started, calls = clock(), 0
    while clock() + interval * PERIOD <= policy._window_end:
        policy.count_signal_sample(clock.advance(interval * PERIOD))
        calls += 1
    clock.now = policy._window_end
    assert (calls * PERIOD / (clock() - started) >= COUNT_COVERED) == (decision == SIGNAL_MODE)
    assert judge(policy, clock, calls) == decision


def test_off_cpu_periods_shorter_than_a_gap_count_against_the_window() -> None:
    # 10 ms of CPU, then 10 ms waiting in recv, over and over: ITIMER_PROF counts CPU time, so the
    # handler samples every other period; no interval is long enough to be a gap, yet half the
    # samples due are missing (the sampler thread must take them).
    clock = FakeClock()
    policy = policy_at(clock)
    calls = 0
    while clock() + 2 * PERIOD <= policy._window_end:
        policy.count_signal_sample(clock.advance(2 * PERIOD))
        calls += 1
    clock.now = policy._window_end
    assert judge(policy, clock, calls) == THREAD_MODE


def test_gaps_inside_the_window_count_against_it_too() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    calls = handler_samples(policy, clock, 0.1)
    clock.advance(0.1)  # a 0.1 s pause in the middle (the main thread waited)
    calls += handler_samples(policy, clock, WINDOW_S - 0.2)
    assert judge(policy, clock, calls) == THREAD_MODE


def test_a_window_needs_a_sample_of_its_own_one_taken_before_it_does_not_count() -> None:
    # A window shorter than one and a half periods shows no gap: only a sample in it covers it.
    clock = FakeClock()
    policy = policy_at(clock)
    before = clock()
    policy.start_window(clock.advance(0.001), 0, None, True, False)
    policy.count_signal_sample(before)  # processed late, but taken in the previous window
    clock.advance(PERIOD)
    assert judge(policy, clock) == THREAD_MODE
    policy.count_signal_sample(clock())
    assert judge(policy, clock) == SIGNAL_MODE


def test_a_window_without_a_sample_for_half_a_second_stops_the_timer_and_retries_after_five() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    handler_samples(policy, clock, 0.05)
    clock.advance(WINDOW_S - 1e-3)  # not quite 0.5 s since the last sample: the thread samples
    assert judge(policy, clock) == THREAD_MODE
    clock.advance(1e-3)  # 0.5 s: the main thread does not run Python
    assert judge(policy, clock) == PAUSE and not policy.signal_mode
    paused_at = clock()
    clock.now = paused_at + RETRY_S - 1e-3
    assert policy.judge(clock(), True, False, 0, None, False) == (WAIT, "")
    clock.now = paused_at + RETRY_S
    assert policy.judge(clock(), True, False, 0, None, False) == (ARM, "")
    policy.armed_at(clock())  # armed again: no retry pending, and a whole window to show up
    assert policy.judge(clock.advance(60.0), True, False, 0, None, False) == (WAIT, "")


def test_a_timer_never_paused_is_never_retried() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    assert policy.judge(clock.advance(3600.0), True, False, 0, None, False) == (WAIT, "")


def woken_window(policy: TriggerPolicy, clock: FakeClock, calls: int, cpu_ns: int) -> str:
    """A window of 0.5 s (50 samples due) in which the handler was called ``calls`` times while the
    main thread used ``cpu_ns`` of CPU."""
    policy.start_window(clock(), 0, 0, True, False)
    clock.advance(WINDOW_S)
    decision, _ = policy.judge(clock(), True, True, calls, cpu_ns, False)
    return decision


def test_signals_that_only_wake_an_idle_main_thread_retire_the_timer_after_two_windows() -> None:
    # 20 calls (at least a quarter of the 50 due), the main thread 1 ms on a CPU: a share of 0.2%
    # (idle, under 20%) and 50 us per call (under 0.5 ms: it only woke for the signal).
    clock = FakeClock()
    policy = policy_at(clock)
    assert woken_window(policy, clock, 20, 1_000_000) != RETIRE  # once is not enough
    policy.start_window(clock(), 0, 0, True, False)
    clock.advance(WINDOW_S)
    assert policy.judge(clock(), True, True, 20, 1_000_000, False) == (RETIRE, WOKEN)


@pytest.mark.parametrize(
    ("calls", "cpu_ns"),
    [
        (12, 1_000_000),  # fewer calls than a quarter of the 50 samples due: not woken by each signal
        (20, 150_000_000),  # the main thread used 30% of a CPU: not idle
        (20, 10_000_000 + int(20 * WOKEN_CPU_S * 1e9)),  # more than 0.5 ms per call: it worked
    ],
)
def test_a_window_short_of_any_woken_threshold_never_retires(calls: int, cpu_ns: int) -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    for _ in range(4):
        assert woken_window(policy, clock, calls, cpu_ns) != RETIRE


def test_a_busy_window_between_two_woken_ones_starts_the_count_again() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    assert woken_window(policy, clock, 20, 1_000_000) != RETIRE
    assert woken_window(policy, clock, 20, 400_000_000) != RETIRE  # the main thread worked
    assert woken_window(policy, clock, 20, 1_000_000) != RETIRE
    assert woken_window(policy, clock, 20, 1_000_000) == RETIRE


def test_an_unknown_main_thread_cpu_clock_never_counts_as_idle() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    for _ in range(4):
        policy.start_window(clock(), 0, None, True, False)
        clock.advance(WINDOW_S)
        assert policy.judge(clock(), True, True, 50, None, False)[0] != RETIRE


def test_an_event_loop_in_the_main_thread_retires_the_timer() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    handler_samples(policy, clock, WINDOW_S)  # even a covered window
    assert policy.judge(clock(), True, True, 50, None, True) == (RETIRE, MAIN_LOOP)


@pytest.mark.parametrize("armed", [True, False])
def test_a_program_that_took_sigprof_over_retires_the_timer(armed: bool) -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    handler_samples(policy, clock, WINDOW_S)
    assert policy.judge(clock(), False, armed, 50, None, False) == (RETIRE, OWN_HANDLER)


# -- Lambda: the wait between invocations -----------------------------------------------------


def test_the_thread_takes_no_sample_between_invocations_and_its_schedule_moves_on() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    policy.invocation_ended(clock())
    clock.advance(5 * PERIOD)
    assert not policy.thread_samples(clock())
    assert policy.due > clock()  # no burst of late samples when the next invocation starts
    policy.invocation_started(clock.advance(PERIOD))
    clock.now = policy.due
    assert policy.thread_samples(clock())


def test_the_schedule_runs_on_invocation_time() -> None:
    # Invocations of 0.3 periods with waits of 2 periods between them: a due time falls in an
    # invocation every 3 or 4 of them, as if the waits did not exist, and none falls in a wait.
    clock = FakeClock()
    policy = policy_at(clock)
    policy.invocation_ended(clock())  # waiting for the first event
    due_in_invocations = 0
    for _ in range(20):
        assert policy.invocation_started(clock()) is not None
        end = clock() + 0.3 * PERIOD
        while clock() < end:
            if policy.thread_samples(clock.advance(0.05 * PERIOD)):
                due_in_invocations += 1
                policy.schedule(clock())
        policy.invocation_ended(clock())
        assert not policy.thread_samples(clock.advance(2 * PERIOD))
        assert policy.next_delay(clock()) <= 1.5 * PERIOD  # the thread wakes no later than the next due
    assert due_in_invocations == 6  # 20 x 0.3 periods of invocation time, a due time each period
    assert policy.invocation_started(clock()) is not None and policy.invocation_started(clock()) is None


def test_samples_owed_to_the_handler_wait_for_the_next_invocation() -> None:
    clock = FakeClock()
    policy = policy_at(clock, armed=True, solo=True)
    policy.planned_wake = clock()
    assert policy.thread_samples(clock.advance(1.2 * PERIOD))
    assert policy.owe_to_handler(clock(), armed=True, solo=True)  # the thread woke late: one owed
    policy.invocation_ended(clock())
    assert policy.owed == 0 and policy.due - clock() > 3600  # the handler takes nothing in the wait
    assert policy.invocation_started(clock.advance(5.0)) == 0.0  # ... and fires at once in the next
    assert policy.owed == 1


def test_the_wait_between_invocations_is_no_gap_in_the_handlers_coverage() -> None:
    # A CPU-bound handler of 40 ms, then 60 ms waiting for the next event, five times a window: the
    # handler samples every period of every invocation, which covers the window.
    clock = FakeClock()
    policy = policy_at(clock)
    calls = 0
    for _ in range(5):
        policy.invocation_started(clock())
        calls += handler_samples(policy, clock, 4 * PERIOD)
        policy.invocation_ended(clock())
        clock.advance(6 * PERIOD)
    assert judge(policy, clock, calls) == SIGNAL_MODE


def test_the_same_window_without_invocation_marks_is_the_thread_mode() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    calls = 0
    for _ in range(5):
        calls += handler_samples(policy, clock, 4 * PERIOD)
        clock.advance(6 * PERIOD)
    assert judge(policy, clock, calls) == THREAD_MODE


def test_a_window_spent_waiting_for_invocations_keeps_the_mode_and_never_pauses_the_timer() -> None:
    clock = FakeClock()
    policy = policy_at(clock)
    calls = handler_samples(policy, clock, WINDOW_S)
    assert judge(policy, clock, calls) == SIGNAL_MODE
    policy.invocation_ended(clock())
    policy.start_window(clock(), calls, None, True, True)
    clock.advance(60.0)  # frozen for a minute: no handler sample, no thread wake until now
    assert judge(policy, clock, calls) == SIGNAL_MODE and policy.signal_mode
    policy.start_window(clock(), calls, None, True, True)
    policy.invocation_started(clock.advance(0.001))
    calls += handler_samples(policy, clock, 3 * PERIOD)
    clock.advance(WINDOW_S)  # the invocation then waits half a second: the timer pauses
    assert judge(policy, clock, calls) == PAUSE


# -- the wall-clock timer (Lambda) ------------------------------------------------------------


def wall_policy_at(clock: FakeClock, solo: bool = True) -> TriggerPolicy:
    """A policy whose handler's timer counts wall-clock time, out of the cheap mode it starts in."""
    policy = policy_at(clock, armed=True, solo=solo)
    policy.use_wall_clock(True)
    policy.signal_mode = False
    policy.handler_step = PERIOD
    return policy


def test_the_wall_clock_starts_in_the_cheap_mode_until_a_window_says_otherwise() -> None:
    clock = FakeClock()
    policy = policy_at(clock, armed=True, solo=True)
    policy.use_wall_clock(True)
    assert policy.signal_mode and not policy.thread_samples(clock.advance(PERIOD))
    clock.advance(THREAD_WINDOW_S)  # no handler sample in the window: the thread samples again
    assert judge(policy, clock) == THREAD_MODE and not policy.signal_mode


def test_on_the_wall_clock_the_thread_takes_only_what_the_handler_left_half_a_period_late() -> None:
    clock = FakeClock()
    policy = wall_policy_at(clock)
    due = policy.due
    clock.now = due  # the handler's signal comes now: the thread leaves the sample to it
    assert not policy.thread_samples(clock())
    assert policy.next_delay(clock()) == pytest.approx(WALL_GRACE * PERIOD)
    clock.now = due + WALL_GRACE * PERIOD  # the handler has not taken it: the main thread is in C code
    assert policy.thread_samples(clock())
    policy.use_wall_clock(False)  # on CPU time the thread samples when due
    clock.now = due
    assert policy.thread_samples(clock())


def test_on_the_wall_clock_nothing_is_owed_and_the_timer_fires_when_due() -> None:
    clock = FakeClock()
    policy = wall_policy_at(clock)
    policy.planned_wake = clock()
    clock.advance(2 * PERIOD)  # the thread woke late: on CPU time the sample would be owed
    assert not policy.owe_to_handler(clock(), armed=True, solo=True) and policy.owed == 0
    assert policy.handler_step == PERIOD  # not a quarter period: the timer is not rounded to a tick
    handler_samples(policy, clock, WINDOW_S)
    assert judge(policy, clock, 50) == SIGNAL_MODE and policy.handler_step == float("inf")
    policy.use_wall_clock(False)
    policy.signal_mode = False
    policy.set_period(PERIOD)
    assert policy.handler_step == HANDLER_STEP * PERIOD


def test_on_the_wall_clock_signals_that_wake_an_idle_main_thread_are_the_point_never_retired() -> None:
    clock = FakeClock()
    policy = wall_policy_at(clock, solo=False)
    for _ in range(4):  # the woken thresholds of CPU time, met in four windows in a row
        assert woken_window(policy, clock, 20, 1_000_000) != RETIRE


def test_on_the_wall_clock_a_main_thread_inside_c_code_never_pauses_the_timer() -> None:
    clock = FakeClock()
    policy = wall_policy_at(clock)
    handler_samples(policy, clock, 0.05)
    clock.advance(WINDOW_S)  # no handler sample for half a second: a long C call, no Python to run
    assert judge(policy, clock) == THREAD_MODE  # the thread samples it; the timer stays armed


def test_on_the_wall_clock_an_invocation_restarts_the_timer_at_the_due_time_not_before() -> None:
    # An early signal would wake a main thread that waits (a CPU-time timer cannot fire early in a wait).
    clock = FakeClock()
    policy = wall_policy_at(clock)
    clock.now = policy.due - 1.4 * PERIOD
    policy.invocation_ended(clock())
    assert policy.invocation_started(clock.advance(5.0)) == pytest.approx(1.4 * PERIOD)
    assert policy.due == pytest.approx(clock() + 1.4 * PERIOD)
