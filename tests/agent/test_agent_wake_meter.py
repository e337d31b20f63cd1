"""The wake-up meter: a known stretch of the main thread's CPU between two calls at the same wait is
measured as such, anything else is not measured, and the default stands until enough are."""

from __future__ import annotations

import sys
import time
from types import CodeType, FrameType
from typing import Iterator, List, Optional

from greenflame.agent.wake_meter import DEFAULT_WAKE_NS, MAX_PROBES, MAX_WAKE_NS, MIN_MEASURED, PROBE_S, WakeMeter


def burn_cpu(ns: int) -> None:
    end = time.thread_time_ns() + ns
    while time.thread_time_ns() < end:
        pass


def waits_everywhere(code: CodeType, offset: int) -> bool:
    return True


def end_call(meter: WakeMeter, frame: Optional[FrameType], delay: float = 0.0) -> float:
    """What the handler does as a call ends: the delay to set (a probe's or ``delay``), then the end."""
    delay = meter.probe_delay(frame, delay)
    meter.call_ended(frame)
    return delay


def here() -> FrameType:
    """A frame that stands still at one instruction, as a thread's frame waiting in a call does: a
    suspended generator's."""

    def suspended() -> Iterator[None]:
        yield

    generator = suspended()
    next(generator)
    frame = generator.gi_frame
    assert frame is not None
    _KEPT.append(generator)
    return frame


_KEPT: List[Iterator[None]] = []


def test_the_cpu_between_two_calls_at_the_same_wait_is_the_wake_up() -> None:
    meter = WakeMeter(waits_everywhere)
    frame = here()
    for _ in range(MIN_MEASURED):
        end_call(meter, frame)
        burn_cpu(300_000)  # the truth: 300 us of this thread's CPU between the two calls
        meter.call_started(frame)
    assert meter.measured() == MIN_MEASURED
    assert 300_000 <= meter.wake_ns() <= 450_000


def test_the_default_stands_until_enough_are_measured() -> None:
    meter = WakeMeter(waits_everywhere)
    frame = here()
    for _ in range(MIN_MEASURED - 1):
        end_call(meter, frame)
        meter.call_started(frame)
    assert meter.wake_ns() == DEFAULT_WAKE_NS
    end_call(meter, frame)
    meter.call_started(frame)
    assert meter.wake_ns() < DEFAULT_WAKE_NS  # nearly nothing ran between the calls


def test_the_delivery_counted_apart_is_taken_off() -> None:
    meter = WakeMeter(waits_everywhere, extra_ns=200_000)
    frame = here()
    for _ in range(MIN_MEASURED):
        end_call(meter, frame)
        burn_cpu(300_000)
        meter.call_started(frame)
    assert 100_000 <= meter.wake_ns() <= 250_000
    cheap = WakeMeter(waits_everywhere, extra_ns=MAX_WAKE_NS)
    for _ in range(MIN_MEASURED):
        end_call(cheap, frame)
        cheap.call_started(frame)
    assert cheap.wake_ns() == 0  # a wake-up cheaper than the delivery: nothing more, not the default


def test_nothing_is_measured_away_from_a_wait_or_between_two_places() -> None:
    frame = here()
    not_waiting = WakeMeter(lambda code, offset: False)
    moved = WakeMeter(waits_everywhere)
    dropped = WakeMeter(waits_everywhere)
    for _ in range(MIN_MEASURED):
        end_call(not_waiting, frame)
        not_waiting.call_started(frame)
        end_call(moved, frame)
        moved.call_started(sys._getframe())  # another frame: the thread left the wait
        moved.call_started(frame)  # a call in between forgets the first one
        end_call(dropped, frame)
        dropped.forget()  # the timer stopped (between invocations)
        dropped.call_started(frame)
    assert not_waiting.measured() == moved.measured() == dropped.measured() == 0


def test_a_gap_longer_than_a_wake_up_is_work_not_a_wake_up() -> None:
    meter = WakeMeter(waits_everywhere)
    frame = here()
    end_call(meter, frame)
    burn_cpu(MAX_WAKE_NS + 200_000)
    meter.call_started(frame)
    assert meter.measured() == 0


def test_a_probe_is_asked_for_at_a_wait_until_enough_wake_ups_are_measured() -> None:
    meter = WakeMeter(waits_everywhere)
    frame = here()
    assert end_call(meter, None, 0.010) == 0.010  # no frame: no wait, no probe
    assert end_call(WakeMeter(lambda code, offset: False), frame, 0.010) == 0.010  # not a wait
    assert end_call(meter, frame, PROBE_S / 2) == PROBE_S / 2  # the signal comes sooner anyway
    for _ in range(MIN_MEASURED):
        assert end_call(meter, frame, 0.010) == PROBE_S
        meter.call_started(frame)  # the probe finds the thread at the same wait: one measured
    assert meter.measured() == MIN_MEASURED and meter.probes == MIN_MEASURED
    assert end_call(meter, frame, 0.010) == 0.010  # enough measured: no more probes
    assert meter.probe_wakes == MIN_MEASURED  # each probe found the wait: each woke the thread


def test_a_process_gets_at_most_so_many_probes() -> None:
    meter = WakeMeter(waits_everywhere)
    frame, elsewhere = here(), here()
    for _ in range(MAX_PROBES):
        assert end_call(meter, frame, 0.010) == PROBE_S
        meter.call_started(elsewhere)  # the wait ended before the probe: nothing measured
        end_call(meter, None, 0.010)  # ... and the probe found the thread running: no wake-up
    assert meter.measured() == 0 and meter.probe_wakes == 0
    assert end_call(meter, frame, 0.010) == 0.010 and meter.probes == MAX_PROBES


def test_restarts_measured_stand_only_where_no_wake_up_pairs() -> None:
    meter = WakeMeter(waits_everywhere)
    assert meter.wants_restarts()
    for ns in (20_000, 25_000, 30_000, 35_000):
        meter.add_restart(ns)
    meter.add_restart(MAX_WAKE_NS + 1)  # longer than any wake-up: not one
    meter.add_restart(-5)
    assert meter.wake_ns() == DEFAULT_WAKE_NS and meter.measured() == 0  # four: not enough
    meter.add_restart(40_000)
    assert meter.wake_ns() == 30_000 and meter.measured() == 5 and not meter.wants_restarts()
    frame = here()
    for _ in range(MIN_MEASURED):  # pairs measured too: a full wake-up, which they measure, wins
        end_call(meter, frame)
        burn_cpu(300_000)
        meter.call_started(frame)
    assert meter.wake_ns() >= 300_000 and meter.measured() == MIN_MEASURED
