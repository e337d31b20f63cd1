"""The wake-up meter: a known stretch of the main thread's CPU between two calls at the same wait is
measured as such, anything else is not measured, and the default stands until enough are."""

from __future__ import annotations

import sys
import time
from types import CodeType, FrameType
from typing import Iterator, List

from greenflame.agent.wake_meter import DEFAULT_WAKE_NS, MAX_WAKE_NS, MIN_MEASURED, WakeMeter


def burn_cpu(ns: int) -> None:
    end = time.thread_time_ns() + ns
    while time.thread_time_ns() < end:
        pass


def waits_everywhere(code: CodeType, offset: int) -> bool:
    return True


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
        meter.call_ended(frame)
        burn_cpu(300_000)  # the truth: 300 us of this thread's CPU between the two calls
        meter.call_started(frame)
    assert meter.measured() == MIN_MEASURED
    assert 300_000 <= meter.wake_ns() <= 450_000


def test_the_default_stands_until_enough_are_measured() -> None:
    meter = WakeMeter(waits_everywhere)
    frame = here()
    for _ in range(MIN_MEASURED - 1):
        meter.call_ended(frame)
        meter.call_started(frame)
    assert meter.wake_ns() == DEFAULT_WAKE_NS
    meter.call_ended(frame)
    meter.call_started(frame)
    assert meter.wake_ns() < DEFAULT_WAKE_NS  # nearly nothing ran between the calls


def test_the_delivery_counted_apart_is_taken_off() -> None:
    meter = WakeMeter(waits_everywhere, extra_ns=200_000)
    frame = here()
    for _ in range(MIN_MEASURED):
        meter.call_ended(frame)
        burn_cpu(300_000)
        meter.call_started(frame)
    assert 100_000 <= meter.wake_ns() <= 250_000
    cheap = WakeMeter(waits_everywhere, extra_ns=MAX_WAKE_NS)
    for _ in range(MIN_MEASURED):
        cheap.call_ended(frame)
        cheap.call_started(frame)
    assert cheap.wake_ns() == 0  # a wake-up cheaper than the delivery: nothing more, not the default


def test_nothing_is_measured_away_from_a_wait_or_between_two_places() -> None:
    frame = here()
    not_waiting = WakeMeter(lambda code, offset: False)
    moved = WakeMeter(waits_everywhere)
    dropped = WakeMeter(waits_everywhere)
    for _ in range(MIN_MEASURED):
        not_waiting.call_ended(frame)
        not_waiting.call_started(frame)
        moved.call_ended(frame)
        moved.call_started(sys._getframe())  # another frame: the thread left the wait
        moved.call_started(frame)  # a call in between forgets the first one
        dropped.call_ended(frame)
        dropped.forget()  # the timer stopped (between invocations)
        dropped.call_started(frame)
    assert not_waiting.measured() == moved.measured() == dropped.measured() == 0


def test_a_gap_longer_than_a_wake_up_is_work_not_a_wake_up() -> None:
    meter = WakeMeter(waits_everywhere)
    frame = here()
    meter.call_ended(frame)
    burn_cpu(MAX_WAKE_NS + 200_000)
    meter.call_started(frame)
    assert meter.measured() == 0
